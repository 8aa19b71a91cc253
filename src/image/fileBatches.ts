// The regular files of a layer, made on the libuv pool in batches (native createFiles: open
// with O_EXCL|O_NOFOLLOW, content, owner, mode, xattrs, times) while the unpack reads on: the
// kernel's work of creating files runs beside the reading, hashing and decompressing. A batch
// is one hand-over between threads where a file each would cost many (waking a pool thread,
// then the main loop, is not cheap on a small virtual machine).
//
// The unpack stays in order: before an entry touches a path, it settles that path (waits for
// the files there, or below it, still to be made), and a path still to be made is never walked
// through as a directory (tree.ts asks has()).
import * as fs from 'fs';
import { native } from '../native';

/** Files in a batch, bytes in a batch, and batches on the pool at once. */
const BATCH_FILES = 32;
const BATCH_BYTES = 2 * 1024 * 1024;
const IN_FLIGHT = 2;

/** A node's attributes from its tar header: mode bits, owner, times (seconds), xattrs. */
export interface Attrs {
  mode: number;
  uid: number;
  gid: number;
  atime: number;
  mtime: number;
  xattrs?: [string, Buffer][];
}

/** A file to make (uid and gid -1: left as created, root's). */
export interface PoolFile extends Attrs {
  /** Its path relative to the layer's root (the key the unpack settles by). */
  rel: string;
  /** Its name in the tar, for messages. */
  name: string;
  /** Its absolute path: every directory on the way is a real one the unpack made. */
  path: string;
  content: Buffer;
}

interface Batch {
  files: PoolFile[];
  bytes: number;
  /** Settles once every file of the batch is made or has failed; undefined until sent. */
  done?: Promise<void>;
}

export class FileBatches {
  private current: Batch = { files: [], bytes: 0 };
  private readonly inFlight = new Set<Promise<void>>();
  /** Every file not made yet, by relative path, and its batch. */
  private readonly pending = new Map<string, Batch>();
  /** The first failure, thrown by the next settle(). */
  private failure: unknown;

  /**
   * @param describe turns a file that could not be made into the error to report.
   * @param onXattrRefused a file was made, but the filesystem refused an xattr (as tar, not a failure).
   */
  constructor(
    private readonly describe: (file: PoolFile, err: unknown) => Error,
    private readonly onXattrRefused: (file: PoolFile, refused: string) => void,
  ) {}

  /** The path is a file still to be made (it may not be on disk yet). */
  has(rel: string): boolean {
    return this.pending.has(rel);
  }

  /** Queues a file; sends the batch once full, waiting first when IN_FLIGHT batches are out. */
  async add(file: PoolFile): Promise<void> {
    this.current.files.push(file);
    this.current.bytes += file.content.length;
    this.pending.set(file.rel, this.current);
    if (this.current.files.length >= BATCH_FILES || this.current.bytes >= BATCH_BYTES) await this.send();
  }

  /**
   * Waits for the files still to be made at rel, or below it when `below` (every file when rel
   * is undefined), sending the batch being filled if it holds one; then throws the first
   * failure of any batch.
   */
  async settle(rel: string | undefined, below = false): Promise<void> {
    const waits = new Set<Batch>();
    if (rel === undefined) {
      for (const batch of this.pending.values()) waits.add(batch);
    } else {
      const batch = this.pending.get(rel);
      if (batch) waits.add(batch);
      if (below) {
        const prefix = `${rel}/`;
        for (const [path, other] of this.pending) if (path.startsWith(prefix)) waits.add(other);
      }
    }
    if (waits.has(this.current)) await this.send();
    if (waits.size) await Promise.all([...waits].map((batch) => batch.done));
    if (this.failure !== undefined) throw this.failure;
  }

  private async send(): Promise<void> {
    while (this.inFlight.size >= IN_FLIGHT) await Promise.race(this.inFlight);
    const batch = this.current;
    this.current = { files: [], bytes: 0 };
    const done = this.make(batch).finally(() => {
      for (const file of batch.files) if (this.pending.get(file.rel) === batch) this.pending.delete(file.rel);
      this.inFlight.delete(done);
    });
    batch.done = done;
    this.inFlight.add(done);
  }

  private async make(batch: Batch): Promise<void> {
    try {
      const results = await native.createFiles(batch.files);
      for (let i = 0; i < batch.files.length; i++) {
        const file = batch.files[i];
        let result = results[i];
        if (result instanceof Error && (result as NodeJS.ErrnoException).code === 'EEXIST') {
          // A node an earlier entry left at this path (never a directory: the unpack writes
          // files over directories itself): replaced, as it would be by the unpack.
          fs.unlinkSync(file.path);
          [result] = await native.createFiles([file]);
        }
        if (result instanceof Error) this.failure ??= this.describe(file, result);
        else if (typeof result === 'string') this.onXattrRefused(file, result);
      }
    } catch (err) {
      this.failure ??= this.describe(batch.files[0], err);
    }
  }
}
