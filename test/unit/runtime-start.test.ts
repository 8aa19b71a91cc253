// `start` releasing the init through the exec fifo (releaseInit), with a real fifo and a
// stand-in for the store's view of the init: the order of "is the init gone?" and "is its
// byte there?" decides whether a process that ran and exited at once is taken for one that
// never started.
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { releaseInit } from '../../src/runtime/container';
import type { ContainerRecord } from '../../src/runtime/store';
import type { ContainerStatus } from '../../src/spec/types';

let dir: string;
let fifo: string;
let keepOpen: number | undefined;

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'husk-start-'));
  fifo = path.join(dir, 'exec.fifo');
  execFileSync('mkfifo', ['-m', '0600', fifo]);
  // A reader of our own keeps the pipe (and a byte written into it) alive between opens.
  keepOpen = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
});

afterEach(() => {
  if (keepOpen !== undefined) fs.closeSync(keepOpen);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** What the init does right before execve: one byte into the fifo. */
function initWritesByte() {
  const fd = fs.openSync(fifo, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  fs.writeSync(fd, Buffer.from([0]));
  fs.closeSync(fd);
}

function storeWhere(refresh: () => ContainerStatus) {
  return { execFifoPath: () => fifo, refresh };
}

const record = { id: 'c1', pid: 4242 } as ContainerRecord;

describe('releaseInit', () => {
  it('reads the byte and removes the fifo when the init is waiting', () => {
    initWritesByte();
    releaseInit(storeWhere(() => 'created'), record);
    expect(fs.existsSync(fifo)).toBe(false);
  });

  it('an init that wrote its byte and died while start looked is started, not "stopped"', () => {
    // The init writes, execs and exits in the very moment start asks whether it lives.
    let asked = 0;
    const store = storeWhere(() => {
      asked++;
      initWritesByte();
      return 'stopped';
    });
    releaseInit(store, record);
    expect(asked).toBe(1);
    expect(fs.existsSync(fifo)).toBe(false);
  });

  it('an init that died without writing is refused as stopped, and the fifo stays', () => {
    expect(() => releaseInit(storeWhere(() => 'stopped'), record)).toThrow('cannot start a container that has stopped');
    expect(fs.existsSync(fifo)).toBe(true);
  });

  it('waits for the byte while the init lives', () => {
    let asked = 0;
    releaseInit(
      storeWhere(() => {
        if (++asked === 3) initWritesByte();
        return 'created';
      }),
      record,
    );
    expect(asked).toBe(3);
  });
});
