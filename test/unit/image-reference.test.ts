// Image references and sources: Docker's normalization and skopeo's transport syntax.
import { describe, expect, it } from 'vitest';
import { familiarName, formatReference, isLoopbackRegistry, parseReference, apiHost } from '../../src/image/reference';
import { parseSource, sourceName } from '../../src/image/source';

const D = 'sha256:' + 'ab'.repeat(32);

describe('parseReference', () => {
  it.each([
    ['redis', 'docker.io/library/redis:latest'],
    ['redis:7', 'docker.io/library/redis:7'],
    ['library/redis:7', 'docker.io/library/redis:7'],
    ['someone/app', 'docker.io/someone/app:latest'],
    ['docker.io/redis', 'docker.io/library/redis:latest'],
    ['index.docker.io/library/redis:7', 'docker.io/library/redis:7'],
    ['registry-1.docker.io/someone/app:1', 'docker.io/someone/app:1'],
    ['ghcr.io/org/app:2', 'ghcr.io/org/app:2'],
    [`ghcr.io/org/app@${D}`, `ghcr.io/org/app@${D}`],
    [`ghcr.io/org/app:2@${D}`, `ghcr.io/org/app:2@${D}`],
    ['localhost:5000/x', 'localhost:5000/x:latest'],
    ['localhost/x:1', 'localhost/x:1'],
    ['127.0.0.1:5000/a/b/c:v1.2-rc_3', '127.0.0.1:5000/a/b/c:v1.2-rc_3'],
    ['[::1]:5000/x', '[::1]:5000/x:latest'],
    ['Registry/x', 'Registry/x:latest'],
    ['a/b__c/d-e.f', 'docker.io/a/b__c/d-e.f:latest'],
  ])('%s -> %s', (text, canonical) => {
    expect(formatReference(parseReference(text))).toBe(canonical);
  });

  it.each([
    ['', 'it is empty'],
    ['Redis', 'repository name must be lowercase'],
    ['redis:', 'tag "" is not valid'],
    ['redis:-x', 'tag "-x" is not valid'],
    ['redis@sha256:abc', '"sha256:abc" is not a digest'],
    ['a//b', 'repository component "" is not valid'],
    ['a/b_/c', 'repository component "b_" is not valid'],
    ['bad_host.io:x/y', 'registry "bad_host.io:x" is not a valid host[:port]'],
    [`${'a'.repeat(250)}/bbbbbb`, 'longer than 255'],
  ])('rejects %j (%s)', (text, why) => {
    expect(() => parseReference(text)).toThrow(why);
  });

  it('gives the familiar name Docker prints', () => {
    expect(familiarName(parseReference('redis:7'))).toBe('redis');
    expect(familiarName(parseReference('someone/app'))).toBe('someone/app');
    expect(familiarName(parseReference('ghcr.io/org/app'))).toBe('ghcr.io/org/app');
  });

  it('knows loopback registries and Docker Hub\'s API host', () => {
    expect(isLoopbackRegistry('localhost:5000')).toBe(true);
    expect(isLoopbackRegistry('127.0.0.1:45678')).toBe(true);
    expect(isLoopbackRegistry('127.1.2.3')).toBe(true);
    expect(isLoopbackRegistry('[::1]:5000')).toBe(true);
    expect(isLoopbackRegistry('registry.example.com')).toBe(false);
    expect(isLoopbackRegistry('128.0.0.1:5000')).toBe(false);
    expect(apiHost('docker.io')).toBe('registry-1.docker.io');
    expect(apiHost('ghcr.io')).toBe('ghcr.io');
  });
});

describe('parseSource', () => {
  it('reads skopeo transports; a plain reference means a registry', () => {
    expect(parseSource('redis:7')).toEqual({ kind: 'registry', ref: parseReference('redis:7') });
    expect(parseSource('docker://ghcr.io/a/b:1')).toEqual({ kind: 'registry', ref: parseReference('ghcr.io/a/b:1') });
    expect(parseSource('oci:/x/layout:v1')).toEqual({ kind: 'oci', path: '/x/layout', tag: 'v1' });
    expect(parseSource('oci:rel/dir', '/base')).toEqual({ kind: 'oci', path: '/base/rel/dir', tag: undefined });
    expect(parseSource('oci-archive:/a.tar:latest')).toEqual({ kind: 'oci-archive', path: '/a.tar', tag: 'latest' });
    expect(parseSource('docker-archive:/a.tar')).toEqual({ kind: 'docker-archive', path: '/a.tar' });
    expect(parseSource('docker-archive:/a.tar:redis:7')).toEqual({ kind: 'docker-archive', path: '/a.tar', ref: parseReference('redis:7') });
    expect(parseSource('docker-archive:/a.tar:@1')).toEqual({ kind: 'docker-archive', path: '/a.tar', index: 1 });
  });

  it('rejects malformed sources', () => {
    expect(() => parseSource('docker:redis')).toThrow('docker: needs //');
    expect(() => parseSource('oci:')).toThrow('the path is empty');
  });

  it('names images from each source the same way every time', () => {
    expect(sourceName(parseSource('redis'))).toBe('docker.io/library/redis:latest');
    expect(sourceName(parseSource('oci:/x:v1'))).toBe('oci:/x:v1');
    expect(sourceName(parseSource('docker-archive:/a.tar:redis'))).toBe('docker-archive:/a.tar:docker.io/library/redis:latest');
    expect(sourceName(parseSource('docker-archive:/a.tar:@0'))).toBe('docker-archive:/a.tar:@0');
  });
});
