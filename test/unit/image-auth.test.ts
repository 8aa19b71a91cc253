// Registry credentials (Docker's config.json) and WWW-Authenticate challenges.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { authKey, credentialsFor, parseChallenges, removeCredentials, saveCredentials } from '../../src/image/auth';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

function configFile(doc?: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-auth-'));
  dirs.push(dir);
  const file = path.join(dir, 'config.json');
  if (doc !== undefined) fs.writeFileSync(file, JSON.stringify(doc));
  return file;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('parseChallenges', () => {
  it('reads Bearer and Basic challenges with quoted and bare values', () => {
    expect(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/redis:pull"')).toEqual([
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/redis:pull' } },
    ]);
    expect(parseChallenges('Basic realm="husk test"')).toEqual([{ scheme: 'basic', params: { realm: 'husk test' } }]);
    expect(parseChallenges('Basic realm=x, Bearer realm="a\\"b", error=invalid_token')).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: { realm: 'a"b', error: 'invalid_token' } },
    ]);
  });
});

describe('credentials', () => {
  it('finds auths by host, with or without scheme and path; Docker Hub under its v1 URL', () => {
    const file = configFile({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
        'http://127.0.0.1:5000': { auth: b64('u:p:with:colons') },
        'ghcr.io': { username: 'g', password: 'h' },
        'quay.io': { identitytoken: 'refresh' },
      },
    });
    expect(credentialsFor('docker.io', file)).toEqual({ username: 'hubuser', password: 'hubpass' });
    expect(credentialsFor('127.0.0.1:5000', file)).toEqual({ username: 'u', password: 'p:with:colons' });
    expect(credentialsFor('ghcr.io', file)).toEqual({ username: 'g', password: 'h' });
    expect(credentialsFor('quay.io', file)).toEqual({ username: undefined, identityToken: 'refresh' });
    expect(credentialsFor('other.io', file)).toBeUndefined();
    expect(credentialsFor('docker.io', configFile())).toBeUndefined();
  });

  it('says which file is broken', () => {
    const file = configFile();
    fs.writeFileSync(file, '{ not json');
    expect(() => credentialsFor('docker.io', file)).toThrow(file);
    const bad = configFile({ auths: { 'x.io': { auth: b64('nocolon') } } });
    expect(() => credentialsFor('x.io', bad)).toThrow('"auth" is not base64 of "user:password"');
  });

  it('saves and removes credentials as docker login does, keeping other settings', () => {
    const file = configFile({ auths: { 'http://x.io/v1/': { auth: b64('old:old') } }, detachKeys: 'ctrl-p' });
    saveCredentials('x.io', 'new', 'pw', file);
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(doc.detachKeys).toBe('ctrl-p');
    expect(doc.auths).toEqual({ 'x.io': { auth: b64('new:pw') } });
    expect((fs.statSync(file).mode & 0o777).toString(8)).toBe('600');
    saveCredentials('docker.io', 'a', 'b', file);
    expect(JSON.parse(fs.readFileSync(file, 'utf8')).auths[authKey('docker.io')]).toEqual({ auth: b64('a:b') });
    expect(removeCredentials('x.io', file)).toBe(true);
    expect(removeCredentials('x.io', file)).toBe(false);
    expect(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')).auths)).toEqual(['https://index.docker.io/v1/']);
  });
});
