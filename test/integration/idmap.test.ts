// Idmapped bind mounts (mounts[].uidMappings/gidMappings, the "idmap"/"ridmap" options): files
// keep their owners on disk and appear with mapped owners in the container. Debian's runc 1.1
// predates them, so these run against husk only.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, expectNothingLeft, expectStatus, isRunc, makeBundle, newId, rt, tempDir } from './harness';

afterEach(cleanup);

const USERNS = {
  uidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
  gidMappings: [{ containerID: 0, hostID: 100000, size: 65536 }],
};

function hostDir(): string {
  const dir = tempDir('idmap-');
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'owned-by-root'), 'x');
  fs.writeFileSync(path.join(dir, 'owned-by-1000'), 'x');
  fs.chownSync(path.join(dir, 'owned-by-1000'), 1000, 1000);
  return dir;
}

function userNamespaceBundle(args: string[], mounts: any[]) {
  return makeBundle({
    args,
    config: (c) => {
      c.root!.readonly = false;
      c.linux!.namespaces!.push({ type: 'user' });
      Object.assign(c.linux!, USERNS);
      c.mounts!.push(...mounts);
    },
  });
}

describe.skipIf(isRunc)('idmapped mounts', () => {
  it('"idmap" maps the files through the container user namespace: host root appears as root, not nobody', () => {
    const dir = hostDir();
    const bundle = userNamespaceBundle(['stat', '/mapped/owned-by-root', 'then', 'stat', '/plain/owned-by-root', 'then', 'write', '/mapped/new', 'made inside'], [
      { destination: '/mapped', type: 'bind', source: dir, options: ['bind', 'idmap'] },
      { destination: '/plain', type: 'bind', source: dir, options: ['bind'] },
    ]);
    fs.mkdirSync(bundle.path('/mapped'));
    fs.mkdirSync(bundle.path('/plain'));
    const res = expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 0);
    const [mapped, plain] = res.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(mapped).toMatchObject({ uid: 0, gid: 0 });
    expect(plain).toMatchObject({ uid: 65534, gid: 65534 });
    // Written by the container's root (host uid 100000) through the idmapped mount: on disk,
    // it belongs to host root.
    const st = fs.statSync(path.join(dir, 'new'));
    expect([st.uid, st.gid]).toEqual([0, 0]);
  });

  it('explicit uidMappings/gidMappings on a mount apply their own map, even without a user namespace', () => {
    const dir = hostDir();
    const bundle = makeBundle({
      args: ['stat', '/m/owned-by-1000', 'then', 'stat', '/m/owned-by-root'],
      config: (c) => c.mounts!.push({
        destination: '/m', type: 'bind', source: dir, options: ['bind', 'idmap'],
        uidMappings: [{ containerID: 1000, hostID: 2000, size: 1 }, { containerID: 0, hostID: 3000, size: 1 }],
        gidMappings: [{ containerID: 1000, hostID: 2000, size: 1 }, { containerID: 0, hostID: 3000, size: 1 }],
      } as any),
    });
    fs.mkdirSync(bundle.path('/m'));
    const res = expectStatus(rt(['run', '--bundle', bundle.dir, newId()]), 0);
    const [user, root] = res.stdout.trim().split('\n').map((l) => JSON.parse(l));
    expect(user).toMatchObject({ uid: 2000, gid: 2000 });
    expect(root).toMatchObject({ uid: 3000, gid: 3000 });
  });

  it('an idmapped mount without any maps is refused with a clear error, leaving nothing behind', async () => {
    const dir = hostDir();
    const bundle = makeBundle({ config: (c) => c.mounts!.push({ destination: '/m', type: 'bind', source: dir, options: ['bind', 'idmap'] }) });
    const res = rt(['create', '--bundle', bundle.dir, newId()]);
    expectStatus(res, 1);
    expect(res.stderr).toMatch(/^husk: create \S+: config\.json: mounts\[\d+\]: an idmapped mount needs uidMappings and gidMappings/);
    await expectNothingLeft();
  });

  it('shows both host steps in --trace', () => {
    const dir = hostDir();
    const bundle = userNamespaceBundle(['exit', '0'], [{ destination: '/mapped', type: 'bind', source: dir, options: ['bind', 'idmap'] }]);
    fs.mkdirSync(bundle.path('/mapped'));
    const res = expectStatus(rt(['--trace', 'run', '--bundle', bundle.dir, newId()]), 0);
    expect(res.stderr).toContain('mount_setattr(MOUNT_ATTR_IDMAP)');
    expect(res.stderr).toMatch(/move_mount\(\d+ \[idmapped .*\], "\/mapped"\) = 0/);
  });
});
