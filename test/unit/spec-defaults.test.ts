// `husk spec` must write what `runc spec` writes. The expected documents are fixtures made
// with Debian 12's runc 1.1.5 (`runc spec`, `runc spec --rootless`, run as root), so this
// test needs no runc. Printed with tabs, husk's output must equal runc's byte for byte
// except for ociVersion.
import * as fs from 'fs';
import * as path from 'path';
import { describe, expect, it } from 'vitest';
import { OCI_VERSION, defaultSpec } from '../../src/spec/defaults';
import { validateConfig } from '../../src/spec/validate';

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8');

/** runc's file with husk's ociVersion, as the text runc would have written. */
const runcWithOurVersion = (name: string) => fixture(name).replace('"ociVersion": "1.0.2-dev"', `"ociVersion": "${OCI_VERSION}"`);

describe('defaultSpec', () => {
  it('is runc spec, field for field and in the same key order', () => {
    expect(JSON.stringify(defaultSpec(), null, '\t')).toBe(runcWithOurVersion('runc-spec.json'));
  });

  it('with rootless is runc spec --rootless (mapping the caller, here uid/gid 0)', () => {
    const spec = defaultSpec({ rootless: true, hostUid: 0, hostGid: 0 });
    expect(JSON.stringify(spec, null, '\t')).toBe(runcWithOurVersion('runc-spec-rootless.json'));
  });

  it('maps the given host ids in rootless mode', () => {
    const linux = defaultSpec({ rootless: true, hostUid: 1000, hostGid: 100 }).linux!;
    expect(linux.uidMappings).toEqual([{ containerID: 0, hostID: 1000, size: 1 }]);
    expect(linux.gidMappings).toEqual([{ containerID: 0, hostID: 100, size: 1 }]);
  });

  it('takes args and terminal', () => {
    const spec = defaultSpec({ args: ['sleep', '10'], terminal: false });
    expect(spec.process!.args).toEqual(['sleep', '10']);
    expect(spec.process!.terminal).toBe(false);
  });

  it('passes husk validation', () => {
    expect(() => validateConfig(defaultSpec())).not.toThrow();
    expect(() => validateConfig(defaultSpec({ rootless: true }))).not.toThrow();
  });

  it('returns a fresh document each time', () => {
    const a = defaultSpec();
    a.process!.capabilities!.bounding!.push('CAP_SYS_ADMIN');
    a.mounts![0].destination = '/x';
    const b = defaultSpec();
    expect(b.process!.capabilities!.bounding).toHaveLength(3);
    expect(b.process!.capabilities!.effective).toHaveLength(3);
    expect(b.mounts![0].destination).toBe('/proc');
  });

  it('implements runtime-spec 1.2.0', () => {
    expect(OCI_VERSION).toBe('1.2.0');
  });
});
