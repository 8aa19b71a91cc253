// The container store: files on disk under a temporary root, the lock through a stand-in
// for the addon's flock, and /proc through a fake reader (plus one real look at this very
// process).
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { defaultSpec, OCI_VERSION } from '../../src/spec/defaults';
import {
  Store,
  marshalRuncState,
  nowRfc3339Nano,
  parseProcStat,
  rfc3339Nano,
  toRuncState,
  userName,
  type ContainerRecord,
  type Flock,
} from '../../src/runtime/store';

const fixture = (name: string) => fs.readFileSync(path.join(__dirname, 'fixtures', name), 'utf8');

/**
 * flock(2) within one process, keyed by inode like the kernel's: a second exclusive lock on
 * a locked directory "would block". A test cannot block, so a blocking attempt fails loudly.
 */
function fakeFlock(): Flock & { held: Map<number, number> } {
  const held = new Map<number, number>();
  const flock = ((fd, op, nonblock) => {
    const ino = fs.fstatSync(fd).ino;
    if (op === 'un') {
      if (held.get(ino) === fd) held.delete(ino);
      return true;
    }
    const holder = held.get(ino);
    if (holder !== undefined && holder !== fd) {
      if (nonblock) return false;
      throw new Error('test would block forever');
    }
    held.set(ino, fd);
    return true;
  }) as Flock & { held: Map<number, number> };
  flock.held = held;
  return flock;
}

/** A /proc/<pid>/stat line with the given state and start time. */
const statLine = (pid: number, state: string, startTime: number, comm = 'sleep') =>
  `${pid} (${comm}) ${state} 1 ${pid} ${pid} 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 ${startTime} 1000000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n`;

let root: string;
let procs: Map<number, string>;
let flock: ReturnType<typeof fakeFlock>;
let store: Store;

beforeEach(() => {
  root = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'husk-store-')), 'root');
  procs = new Map();
  flock = fakeFlock();
  store = new Store(root, { flock, readProcStat: (pid) => procs.get(pid) });
});

afterEach(() => {
  fs.rmSync(path.dirname(root), { recursive: true, force: true });
});

const record = (id = 'c1', over: Partial<ContainerRecord> = {}): ContainerRecord => ({
  ...store.newRecord({
    id,
    bundle: '/bundles/b',
    rootfs: '/bundles/b/rootfs',
    config: defaultSpec(),
    owner: 'root',
    created: '2026-11-27T18:30:15.089122004Z',
  }),
  ...over,
});

const mode = (p: string) => fs.statSync(p).mode & 0o777;

describe('create and read', () => {
  it('makes the root (0700), the container directory (0711) and state.json (0600)', () => {
    const r = record();
    store.create(r);
    expect(mode(root)).toBe(0o700);
    expect(mode(path.join(root, 'c1'))).toBe(0o711);
    expect(mode(path.join(root, 'c1', 'state.json'))).toBe(0o600);
    expect(store.read('c1')).toEqual(r);
    expect(fs.readdirSync(root)).toEqual(['c1']);
  });

  it('fills a new record: creating, no init yet, the exec fifo path, the annotations', () => {
    const config = defaultSpec();
    config.annotations = { a: '1' };
    const r = store.newRecord({ id: 'c1', bundle: '/b', rootfs: '/b/rootfs', config });
    expect(r).toMatchObject({ id: 'c1', pid: 0, initStartTime: 0, status: 'creating', annotations: { a: '1' } });
    expect(r.execFifo).toBe(path.join(root, 'c1', 'exec.fifo'));
    expect(r.created).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
    expect(store.newRecord({ id: 'c2', bundle: '/b', rootfs: '/b/rootfs', config: defaultSpec() }).annotations).toBeUndefined();
  });

  it('refuses a second container with the same id and leaves the first alone', () => {
    store.create(record('c1', { pid: 11 }));
    expect(() => store.create(record('c1', { pid: 22 }))).toThrow('container "c1" already exists');
    expect(store.read('c1').pid).toBe(11);
    expect(fs.readdirSync(root)).toEqual(['c1']);
  });

  it('refuses invalid ids before touching the disk', () => {
    expect(() => store.create(record('../escape'))).toThrow('container id "../escape" is invalid');
    expect(() => store.read('a/b')).toThrow('container id "a/b" is invalid');
    expect(fs.existsSync(root)).toBe(false);
  });

  it('reports a missing container in runc words with the id', () => {
    expect(() => store.read('nope')).toThrow('container "nope" does not exist');
    expect(store.exists('nope')).toBe(false);
  });

  it('reports a corrupt state.json with its path', () => {
    store.create(record());
    fs.writeFileSync(store.statePath('c1'), '{"id": ');
    expect(() => store.read('c1')).toThrow(`${store.statePath('c1')}: invalid JSON: Unexpected end of JSON input`);
  });
});

describe('write', () => {
  it('replaces state.json through a temporary file that does not stay', () => {
    const r = record();
    store.create(r);
    const before = fs.statSync(store.statePath('c1')).ino;
    r.pid = 4242;
    r.status = 'created';
    store.write(r);
    expect(store.read('c1')).toMatchObject({ pid: 4242, status: 'created' });
    expect(fs.statSync(store.statePath('c1')).ino).not.toBe(before);
    expect(fs.readdirSync(path.join(root, 'c1'))).toEqual(['state.json']);
  });

  it('fails on a deleted container instead of recreating it', () => {
    const r = record();
    store.create(r);
    store.remove('c1');
    expect(() => store.write(r)).toThrow('container "c1" does not exist');
    expect(fs.existsSync(path.join(root, 'c1'))).toBe(false);
  });
});

describe('list and remove', () => {
  it('lists containers sorted, ignoring files, dirs without state.json and staging dirs', () => {
    expect(store.list()).toEqual([]);
    for (const id of ['t7', 'a-long.name+x', 's1']) store.create(record(id));
    fs.writeFileSync(path.join(root, 'afile'), '');
    fs.mkdirSync(path.join(root, 'empty'));
    fs.mkdirSync(path.join(root, '~create-1-abcdef'));
    fs.writeFileSync(path.join(root, '~create-1-abcdef', 'state.json'), '{}');
    expect(store.list()).toEqual(['a-long.name+x', 's1', 't7']);
  });

  it('removes a container directory and all in it', () => {
    store.create(record());
    fs.writeFileSync(store.execFifoPath('c1'), '');
    store.remove('c1');
    expect(store.list()).toEqual([]);
    expect(() => store.remove('c1')).not.toThrow();
  });
});

describe('lock', () => {
  it('is exclusive, released once, and then free again', () => {
    store.create(record());
    const unlock = store.lock('c1');
    expect(() => store.lock('c1', { nonblock: true })).toThrow('container "c1" is locked by another husk command');
    unlock();
    unlock();
    const again = store.lock('c1', { nonblock: true });
    again();
    expect(flock.held.size).toBe(0);
  });

  it('refuses a container that does not exist', () => {
    expect(() => store.lock('nope')).toThrow('container "nope" does not exist');
  });

  it('reports the container gone when it was deleted while we waited', () => {
    store.create(record());
    const deleting: Flock = (fd, op) => {
      if (op !== 'un') store.remove('c1'); // another husk deleted it meanwhile
      return true;
    };
    const racing = new Store(root, { flock: deleting, readProcStat: () => undefined });
    expect(() => racing.lock('c1')).toThrow('container "c1" does not exist');
  });

  it('locks the new container when one with the same id replaced the old meanwhile', () => {
    store.create(record('c1', { pid: 1 }));
    let replaced = false;
    const replacing: Flock = (fd, op) => {
      if (op !== 'un' && !replaced) {
        replaced = true;
        store.remove('c1');
        store.create(record('c1', { pid: 2 }));
      }
      return true;
    };
    const racing = new Store(root, { flock: replacing, readProcStat: () => undefined });
    const unlock = racing.lock('c1');
    expect(racing.read('c1').pid).toBe(2);
    unlock();
  });

  it('surfaces other flock errors with the directory', () => {
    store.create(record());
    const failing: Flock = () => {
      throw Object.assign(new Error('EBADF: bad file descriptor, flock'), { code: 'EBADF', syscall: 'flock' });
    };
    expect(() => new Store(root, { flock: failing }).lock('c1')).toThrow(`cannot lock ${path.join(root, 'c1')}: bad file descriptor`);
  });
});

describe('refresh', () => {
  const live = (over: Partial<ContainerRecord>) => {
    const r = record('c1', { pid: 100, initStartTime: 5000, status: 'created', ...over });
    store.create(r);
    return r;
  };

  it('creating: before the init exists, and while it lives', () => {
    expect(store.refresh(record('c1', { status: 'creating' }))).toBe('creating');
    procs.set(100, statLine(100, 'S', 5000));
    expect(store.refresh(live({ status: 'creating' }))).toBe('creating');
  });

  it('stopped: a creating container whose init died', () => {
    expect(store.refresh(live({ status: 'creating' }))).toBe('stopped');
  });

  it('created: the init lives and the exec fifo is there', () => {
    const r = live({});
    procs.set(100, statLine(100, 'S', 5000));
    fs.writeFileSync(r.execFifo, '');
    expect(store.refresh(r)).toBe('created');
  });

  it('running: the init lives and the exec fifo is gone', () => {
    procs.set(100, statLine(100, 'S', 5000));
    expect(store.refresh(live({ status: 'running' }))).toBe('running');
  });

  it('paused: recorded, even for a created container', () => {
    const r = live({ status: 'paused' });
    procs.set(100, statLine(100, 'S', 5000));
    fs.writeFileSync(r.execFifo, '');
    expect(store.refresh(r)).toBe('paused');
  });

  it('stopped: no such process', () => {
    expect(store.refresh(live({ status: 'running' }))).toBe('stopped');
  });

  it.each(['Z', 'X', 'x'])('stopped: the init is in state %s', (state) => {
    procs.set(100, statLine(100, state, 5000));
    expect(store.refresh(live({ status: 'running' }))).toBe('stopped');
  });

  it('stopped: the pid was reused by another process (different start time)', () => {
    procs.set(100, statLine(100, 'S', 9999));
    expect(store.refresh(live({ status: 'running' }))).toBe('stopped');
  });

  it('stopped: a paused container whose init is gone', () => {
    expect(store.refresh(live({ status: 'paused' }))).toBe('stopped');
  });

  it('sees this very process through the real /proc', () => {
    const real = new Store(root, { flock });
    const startTime = real.startTimeOf(process.pid);
    expect(startTime).toBeGreaterThan(0);
    const r = record('c1', { pid: process.pid, initStartTime: startTime, status: 'running' });
    expect(real.refresh(r)).toBe('running');
    expect(real.refresh({ ...r, initStartTime: startTime + 1 })).toBe('stopped');
    expect(() => real.startTimeOf(2 ** 22 + 1)).toThrow(`process ${2 ** 22 + 1} does not exist`);
  });
});

describe('parseProcStat', () => {
  it('counts fields from the last ")", whatever the command name holds', () => {
    const s = parseProcStat(statLine(42, 'R', 123456, 'a) (b c) S 9'));
    expect(s).toEqual({ pid: 42, comm: 'a) (b c) S 9', state: 'R', ppid: 1, startTime: 123456 });
  });

  it('refuses what is not a stat line', () => {
    expect(() => parseProcStat('garbage')).toThrow('cannot parse /proc/<pid>/stat');
  });
});

describe('runc state JSON', () => {
  const runcLike = (over: Partial<ContainerRecord>) =>
    record('t7', {
      pid: 5211,
      bundle: '/tmp/rs/bb',
      rootfs: '/tmp/rs/bb/rootfs',
      created: '2026-11-27T18:30:15.089122004Z',
      ...over,
    });
  const ours = (text: string) => text.replace(/"ociVersion": ?"1\.0\.2-dev"/g, (m) => m.replace('1.0.2-dev', OCI_VERSION));

  it('has runc keys in runc order, annotations only when present', () => {
    const withAnnotations = toRuncState(runcLike({ annotations: { b: 'two', 'org.example.a': '1' } }), 'created');
    expect(Object.keys(withAnnotations)).toEqual(['ociVersion', 'id', 'pid', 'status', 'bundle', 'rootfs', 'created', 'annotations', 'owner']);
    expect(Object.keys(toRuncState(runcLike({}), 'created'))).toEqual(['ociVersion', 'id', 'pid', 'status', 'bundle', 'rootfs', 'created', 'owner']);
    expect(Object.keys(toRuncState(runcLike({ annotations: {} }), 'created'))).not.toContain('annotations');
  });

  it('prints pid 0 once stopped, and the owner only for list', () => {
    const r = runcLike({});
    expect(toRuncState(r, 'stopped').pid).toBe(0);
    expect(toRuncState(r, 'running').pid).toBe(5211);
    expect(toRuncState(r, 'running').owner).toBe('');
    expect(store.toRuncState(r, 'running', { list: true }).owner).toBe('root');
  });

  it('prints what runc state prints, byte for byte', () => {
    const created = toRuncState(runcLike({ annotations: { 'org.example.a': '1', b: 'two' } }), 'created');
    expect(marshalRuncState(created, '  ')).toBe(ours(fixture('runc-state-created.txt')));
    const stopped = toRuncState(runcLike({ id: 's1', created: '2026-11-27T18:30:15.273426658Z' }), 'stopped');
    expect(marshalRuncState(stopped, '  ')).toBe(ours(fixture('runc-state-stopped.txt')));
  });

  it('prints what runc list --format json prints, byte for byte', () => {
    const section = fixture('runc-list.txt').split('== runc list --format json\n')[1].split('\n')[0];
    const states = [
      toRuncState(runcLike({ id: 'a-long-container-name.with+chars_', pid: 5280, created: '2026-11-27T18:30:15.243393174Z' }), 'running', { list: true }),
      toRuncState(runcLike({ id: 's1', created: '2026-11-27T18:30:15.273426658Z' }), 'stopped', { list: true }),
      toRuncState(runcLike({ annotations: { b: 'two', 'org.example.a': '1' } }), 'created', { list: true }),
    ];
    expect(`[${states.map((s) => marshalRuncState(s)).join(',')}]`).toBe(ours(section));
  });

  it('escapes and orders like Go: HTML characters, byte-sorted annotation keys', () => {
    const s = toRuncState(runcLike({ bundle: '/a<b>&c', annotations: { '9': 'x', '10': 'y', b: 'z' } }), 'created');
    expect(marshalRuncState(s)).toContain('"bundle":"/a\\u003cb\\u003e\\u0026c"');
    expect(marshalRuncState(s)).toContain('"annotations":{"10":"y","9":"x","b":"z"}');
    expect(JSON.parse(marshalRuncState(s, '  '))).toEqual(s);
  });
});

describe('times and owners', () => {
  it('formats RFC 3339 with nanoseconds as Go does, trailing zeros dropped', () => {
    // date -u -d @1798000000 says 2026-12-23T04:26:40Z
    expect(rfc3339Nano(1_798_000_000_123_456_789n)).toBe('2026-12-23T04:26:40.123456789Z');
    expect(rfc3339Nano(1_798_000_000_120_000_000n)).toBe('2026-12-23T04:26:40.12Z');
    expect(rfc3339Nano(1_798_000_000_000_000_000n)).toBe('2026-12-23T04:26:40Z');
  });

  it('gives now with nanosecond digits, close to the wall clock', () => {
    const now = nowRfc3339Nano();
    expect(now).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$/);
    expect(Math.abs(Date.parse(now) - Date.now())).toBeLessThan(1000);
  });

  it('names a uid from a passwd file, or "#<uid>"', () => {
    const passwd = path.join(path.dirname(root), 'passwd');
    fs.writeFileSync(passwd, 'root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1000::/home/bob:/bin/sh\n');
    expect(userName(0, passwd)).toBe('root');
    expect(userName(1000, passwd)).toBe('bob');
    expect(userName(4242, passwd)).toBe('#4242');
    expect(userName(7, path.join(root, 'missing'))).toBe('#7');
  });
});
