// Manifests, indexes and image configs: the OCI image-spec documents and Docker's schema 2
// equivalents (which have the same shape under other media types), checked field by field
// so a malformed document fails with a message naming the field.
import { HuskError } from '../errors';
import { checkDigest } from './digest';

export const MEDIA = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerTar: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  ociLayerNondistributableGzip: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  dockerForeignLayerGzip: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
  dockerSchema1: 'application/vnd.docker.distribution.manifest.v1+json',
  dockerSchema1Signed: 'application/vnd.docker.distribution.manifest.v1+prettyjws',
} as const;

/** What husk asks a registry for, most specific first. */
export const ACCEPTED_MANIFESTS = [MEDIA.ociIndex, MEDIA.dockerList, MEDIA.ociManifest, MEDIA.dockerManifest];

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  'os.version'?: string;
  'os.features'?: string[];
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
  };
  rootfs: { type: string; diff_ids: string[] };
  history?: unknown[];
}

export type Compression = 'gzip' | 'zstd' | 'none';

/** The compression a layer's media type announces (the bytes are checked again on unpack). */
export function layerCompression(mediaType: string): Compression {
  if (mediaType.endsWith('+gzip') || mediaType.endsWith('.tar.gzip')) return 'gzip';
  if (mediaType.endsWith('+zstd')) return 'zstd';
  if (mediaType.endsWith('.tar') || mediaType === 'application/vnd.docker.image.rootfs.diff.tar') return 'none';
  throw new HuskError(`layer media type ${JSON.stringify(mediaType)} is not supported`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function checkDescriptor(v: unknown, where: string): Descriptor {
  if (!isObject(v)) throw new HuskError(`${where}: not an object`);
  if (typeof v.mediaType !== 'string' || !v.mediaType) throw new HuskError(`${where}.mediaType: missing`);
  checkDigest(v.digest, `${where}.digest`);
  if (typeof v.size !== 'number' || !Number.isSafeInteger(v.size) || v.size < 0) {
    throw new HuskError(`${where}.size: ${JSON.stringify(v.size)} is not a non-negative integer`);
  }
  return v as unknown as Descriptor;
}

function parseJson(data: Buffer, what: string): Record<string, unknown> {
  let doc: unknown;
  try {
    doc = JSON.parse(data.toString('utf8'));
  } catch (err) {
    throw new HuskError(`${what}: not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw new HuskError(`${what}: not a JSON object`);
  return doc;
}

export type ManifestDocument = { kind: 'manifest'; manifest: Manifest } | { kind: 'index'; index: Index };

/**
 * Parses a manifest or an index. The media type comes from the Content-Type (or the
 * descriptor); when it is missing or generic, the document's own mediaType and shape decide.
 */
export function parseManifestDocument(data: Buffer, mediaType: string | undefined, what: string): ManifestDocument {
  const doc = parseJson(data, what);
  let type = mediaType && mediaType !== 'application/json' && mediaType !== 'application/octet-stream' ? mediaType : undefined;
  if (typeof doc.mediaType === 'string') {
    if (type && doc.mediaType !== type) throw new HuskError(`${what}: mediaType ${doc.mediaType} does not match ${type}`);
    type = doc.mediaType;
  }
  if (!type) type = Array.isArray(doc.manifests) ? MEDIA.ociIndex : MEDIA.ociManifest;
  if (type === MEDIA.dockerSchema1 || type === MEDIA.dockerSchema1Signed || doc.schemaVersion === 1) {
    throw new HuskError(`${what}: Docker schema 1 manifests are not supported (re-push the image with a current client)`);
  }
  if (doc.schemaVersion !== 2) throw new HuskError(`${what}: schemaVersion ${JSON.stringify(doc.schemaVersion)} is not 2`);
  if (type === MEDIA.ociIndex || type === MEDIA.dockerList) {
    if (!Array.isArray(doc.manifests)) throw new HuskError(`${what}.manifests: missing`);
    doc.manifests.forEach((m, i) => checkDescriptor(m, `${what}.manifests[${i}]`));
    return { kind: 'index', index: doc as unknown as Index };
  }
  if (type === MEDIA.ociManifest || type === MEDIA.dockerManifest) {
    checkDescriptor(doc.config, `${what}.config`);
    if (!Array.isArray(doc.layers)) throw new HuskError(`${what}.layers: missing`);
    doc.layers.forEach((l, i) => checkDescriptor(l, `${what}.layers[${i}]`));
    return { kind: 'manifest', manifest: doc as unknown as Manifest };
  }
  throw new HuskError(`${what}: media type ${JSON.stringify(type)} is not a manifest or an index`);
}

export function parseImageConfig(data: Buffer, what: string): ImageConfig {
  const doc = parseJson(data, what);
  if (!isObject(doc.rootfs) || !Array.isArray(doc.rootfs.diff_ids)) throw new HuskError(`${what}.rootfs.diff_ids: missing`);
  doc.rootfs.diff_ids.forEach((d, i) => checkDigest(d, `${what}.rootfs.diff_ids[${i}]`));
  if (doc.config !== undefined && doc.config !== null && !isObject(doc.config)) throw new HuskError(`${what}.config: not an object`);
  const c = (doc.config ?? {}) as Record<string, unknown>;
  for (const key of ['Env', 'Entrypoint', 'Cmd']) {
    const v = c[key];
    if (v !== undefined && v !== null && !(Array.isArray(v) && v.every((s) => typeof s === 'string'))) {
      throw new HuskError(`${what}.config.${key}: not an array of strings`);
    }
  }
  for (const key of ['User', 'WorkingDir', 'StopSignal']) {
    if (c[key] !== undefined && typeof c[key] !== 'string') throw new HuskError(`${what}.config.${key}: not a string`);
  }
  return doc as unknown as ImageConfig;
}

// ----------------------------------------------------------------------------- platforms

/** `os/arch[/variant]` as Docker's --platform takes it. */
export function parsePlatform(text: string): Platform {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[a-z0-9._-]+$/.test(p))) {
    throw new HuskError(`--platform ${JSON.stringify(text)}: expected os/arch[/variant], e.g. linux/amd64 or linux/arm/v7`);
  }
  return normalizePlatform({ os: parts[0], architecture: parts[1], variant: parts[2] });
}

/** containerd's normalization: x86_64 is amd64, aarch64 is arm64 (variant v8), arm is v7. */
export function normalizePlatform(p: Platform): Platform {
  let architecture = p.architecture.toLowerCase();
  let variant = p.variant?.toLowerCase();
  switch (architecture) {
    case 'x86_64':
    case 'x86-64':
      architecture = 'amd64';
      break;
    case 'i386':
    case 'i686':
      architecture = '386';
      break;
    case 'aarch64':
      architecture = 'arm64';
      break;
    case 'armhf':
      architecture = 'arm';
      variant = 'v7';
      break;
    case 'armel':
      architecture = 'arm';
      variant = 'v6';
      break;
  }
  if (architecture === 'arm64' && (variant === '8' || variant === 'v8')) variant = undefined;
  if (architecture === 'arm' && !variant) variant = 'v7';
  if (architecture === 'arm' && /^[5-8]$/.test(variant ?? '')) variant = `v${variant}`;
  if (architecture === 'amd64' && variant === 'v1') variant = undefined;
  return { os: p.os.toLowerCase(), architecture, ...(variant ? { variant } : {}) };
}

/** The platform of this host: linux/amd64 on x86-64. */
export function hostPlatform(arch: string = process.arch): Platform {
  const map: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', loong64: 'loong64' };
  return normalizePlatform({ os: 'linux', architecture: map[arch] ?? arch });
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

export function platformMatches(want: Platform, have: Platform | undefined): boolean {
  if (!have) return false;
  const a = normalizePlatform(want);
  const b = normalizePlatform(have);
  return a.os === b.os && a.architecture === b.architecture && (a.variant ?? '') === (b.variant ?? '');
}

/**
 * Picks the manifest for a platform from an index. Attestation manifests (BuildKit's
 * "unknown/unknown") are never candidates. No match is an error listing what there is.
 */
export function selectPlatform(index: Index, want: Platform, what: string): Descriptor {
  const candidates = index.manifests.filter((m) => m.platform && m.platform.os !== 'unknown');
  const found = candidates.find((m) => platformMatches(want, m.platform));
  if (found) return found;
  // An arm64 host runs arm64 images whatever the variant says; an index entry without
  // variant also fits a want with one (as containerd's matcher allows).
  const loose = candidates.find((m) => {
    const a = normalizePlatform(want);
    const b = normalizePlatform(m.platform!);
    return a.os === b.os && a.architecture === b.architecture && !b.variant;
  });
  if (loose) return loose;
  const available = [...new Set(candidates.map((m) => formatPlatform(normalizePlatform(m.platform!))))];
  throw new HuskError(
    `${what}: no image for platform ${formatPlatform(want)}; available: ${available.length ? available.join(', ') : 'none (the index names no platforms)'}`,
  );
}
