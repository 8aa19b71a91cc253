// Where an image comes from, named with skopeo's transport syntax:
//   oci:DIR[:TAG]               an OCI image layout directory
//   oci-archive:FILE[:TAG]      the same, as a tar file
//   docker-archive:FILE[:REF]   `docker save` output (legacy manifest.json, or the OCI form
//                               newer Docker writes); REF may also be @N, the Nth image
//   docker://REF or plain REF   a registry
import * as path from 'path';
import { HuskError } from '../errors';
import { formatReference, parseReference, type Reference } from './reference';

export type SourceSpec =
  | { kind: 'registry'; ref: Reference }
  | { kind: 'oci'; path: string; tag?: string }
  | { kind: 'oci-archive'; path: string; tag?: string }
  | { kind: 'docker-archive'; path: string; ref?: Reference; index?: number };

export function parseSource(text: string, cwd = process.cwd()): SourceSpec {
  const transport = /^(oci|oci-archive|docker-archive|docker):/.exec(text);
  if (!transport) return { kind: 'registry', ref: parseReference(text) };
  const rest = text.slice(transport[0].length);
  if (transport[1] === 'docker') {
    if (!rest.startsWith('//')) throw new HuskError(`invalid source ${JSON.stringify(text)}: docker: needs //, as in docker://${rest}`);
    return { kind: 'registry', ref: parseReference(rest.slice(2)) };
  }
  // skopeo splits at the first ":" after the transport: the path itself cannot hold one.
  const colon = rest.indexOf(':');
  const file = colon >= 0 ? rest.slice(0, colon) : rest;
  const suffix = colon >= 0 ? rest.slice(colon + 1) : undefined;
  if (!file) throw new HuskError(`invalid source ${JSON.stringify(text)}: the path is empty`);
  const abs = path.resolve(cwd, file);
  if (transport[1] === 'docker-archive') {
    if (suffix === undefined || suffix === '') return { kind: 'docker-archive', path: abs };
    if (/^@[0-9]+$/.test(suffix)) return { kind: 'docker-archive', path: abs, index: Number(suffix.slice(1)) };
    return { kind: 'docker-archive', path: abs, ref: parseReference(suffix) };
  }
  return { kind: transport[1] as 'oci' | 'oci-archive', path: abs, tag: suffix || undefined };
}

/** The name an image from this source is recorded under in the store. */
export function sourceName(source: SourceSpec): string {
  switch (source.kind) {
    case 'registry':
      return formatReference(source.ref);
    case 'oci':
    case 'oci-archive':
      return `${source.kind}:${source.path}${source.tag ? `:${source.tag}` : ''}`;
    case 'docker-archive':
      return `docker-archive:${source.path}${source.ref ? `:${formatReference(source.ref)}` : source.index !== undefined ? `:@${source.index}` : ''}`;
  }
}
