// Image references as Docker writes them (`redis`, `library/redis:7`,
// `ghcr.io/org/app@sha256:...`, `localhost:5000/x`), normalized the way the distribution
// project's reference package does: a first component is a registry only when it has a "."
// or ":" or is "localhost" (or has upper-case letters, which a repository cannot); otherwise
// the registry is Docker Hub, where one-component names live under "library/".
import { HuskError } from '../errors';
import { isDigest } from './digest';

export const DOCKER_HUB = 'docker.io';
/** The host that serves Docker Hub's registry API. */
export const DOCKER_HUB_API = 'registry-1.docker.io';

export interface Reference {
  /** The registry host (with port), `docker.io` for Docker Hub. */
  registry: string;
  /** The repository path, e.g. `library/redis`. */
  repository: string;
  /** The tag, when given (or `latest` when neither tag nor digest is given). */
  tag?: string;
  /** The manifest digest, when given. */
  digest?: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN_COMPONENT = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const PORT = /^[0-9]+$/;

function bad(text: string, why: string): HuskError {
  return new HuskError(`invalid reference ${JSON.stringify(text)}: ${why}`);
}

function validDomain(domain: string): boolean {
  let host = domain;
  const ipv6 = /^\[([0-9a-fA-F:.]+)\](?::([0-9]+))?$/.exec(domain);
  if (ipv6) return true;
  const colon = domain.lastIndexOf(':');
  if (colon >= 0) {
    if (!PORT.test(domain.slice(colon + 1))) return false;
    host = domain.slice(0, colon);
  }
  return host.split('.').every((c) => DOMAIN_COMPONENT.test(c));
}

/** Parses and normalizes a reference; throws a HuskError naming what is wrong. */
export function parseReference(text: string): Reference {
  if (!text) throw bad(text, 'it is empty');
  let rest = text;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw bad(text, `${JSON.stringify(digest)} is not a digest (sha256:<64 hex digits>)`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw bad(text, `tag ${JSON.stringify(tag)} is not valid`);
  }
  let registry = DOCKER_HUB;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash >= 0) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first) {
      registry = first;
      repository = rest.slice(slash + 1);
      if (!validDomain(registry)) throw bad(text, `registry ${JSON.stringify(registry)} is not a valid host[:port]`);
    }
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API) registry = DOCKER_HUB;
  if (!repository) throw bad(text, 'the repository name is empty');
  if (repository.toLowerCase() !== repository) throw bad(text, 'repository name must be lowercase');
  for (const component of repository.split('/')) {
    if (!COMPONENT.test(component)) throw bad(text, `repository component ${JSON.stringify(component)} is not valid`);
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) repository = `library/${repository}`;
  if ((registry + '/' + repository).length > 255) throw bad(text, 'the name is longer than 255 characters');
  if (!tag && !digest) tag = 'latest';
  return { registry, repository, tag, digest };
}

/** The full name without tag or digest: `docker.io/library/redis`. */
export function repositoryName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The canonical string: `docker.io/library/redis:7`, with `@digest` when there is one. */
export function formatReference(ref: Reference): string {
  return `${repositoryName(ref)}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}

/** The short form Docker prints: `redis:7`, `someone/app:1`, `ghcr.io/org/app:2`. */
export function familiarName(ref: Reference): string {
  let name = repositoryName(ref);
  if (ref.registry === DOCKER_HUB) {
    name = ref.repository.startsWith('library/') ? ref.repository.slice('library/'.length) : ref.repository;
  }
  return name;
}

/** True for registries on the loopback interface, which may be spoken to in plain HTTP. */
export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(1, registry.indexOf(']')) : registry.replace(/:[0-9]+$/, '');
  return host === 'localhost' || /^127\.[0-9]+\.[0-9]+\.[0-9]+$/.test(host) || host === '::1';
}

/** The host the registry API is served from (Docker Hub's differs from its name). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}
