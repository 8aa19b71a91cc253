// The cgroup filesystem as the managers use it: a narrow seam, so that the unit tests can
// stand a fake hierarchy in a temporary directory (test/unit/cgroups-fakefs.ts) where the
// kernel would populate the files of each new cgroup.
//
// Files are opened O_WRONLY without O_CREAT or O_TRUNC, as runc and crun do: a controller
// file that does not exist is an error (ENOENT) rather than a new regular file, and each
// value is one write(2), which is what the kernel parses (one device rule, one io.max line).
import * as fs from 'fs';
import * as path from 'path';
import { HuskError, reason } from '../errors';
import { trace } from '../host/trace';

export interface CgroupFs {
  /** The whole file; throws the errno error (ENOENT...). */
  read(file: string): string;
  /** One write(2) of `data` into an existing file. */
  write(file: string, data: string): void;
  exists(p: string): boolean;
  /** mkdir(2) of one directory; false when it already existed. */
  mkdir(dir: string): boolean;
  rmdir(dir: string): void;
  /** The names of the sub-directories (child cgroups). */
  subdirs(dir: string): string[];
}

export const realFs: CgroupFs = {
  read(file) {
    return fs.readFileSync(file, 'utf8');
  },
  write(file, data) {
    const fd = fs.openSync(file, fs.constants.O_WRONLY);
    try {
      fs.writeSync(fd, data);
    } finally {
      fs.closeSync(fd);
    }
  },
  exists(p) {
    return fs.existsSync(p);
  },
  mkdir(dir) {
    try {
      fs.mkdirSync(dir, 0o755);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
  },
  rmdir(dir) {
    fs.rmdirSync(dir);
  },
  subdirs(dir) {
    return fs.readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  },
};

export function errnoOf(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}

/** A cgroup directory and the filesystem it lives in, with traced, well-named reads and writes. */
export class CgroupDir {
  /**
   * `v2`: a cgroup2 directory, where a missing controller file usually means the controller
   * is not enabled for it, which a failed write then says (as crun does).
   */
  constructor(
    readonly fs: CgroupFs,
    readonly dir: string,
    readonly v2 = false,
  ) {}

  path(file: string): string {
    return path.posix.join(this.dir, file);
  }

  has(file: string): boolean {
    return this.fs.exists(this.path(file));
  }

  /** The file's text; throws a HuskError naming the file. */
  read(file: string): string {
    try {
      return this.fs.read(this.path(file));
    } catch (err) {
      throw new HuskError(`read ${this.path(file)}: ${reason(err)}`, { code: errnoOf(err), cause: err });
    }
  }

  /** The file's text, or undefined when it does not exist. */
  readOptional(file: string): string | undefined {
    try {
      return this.fs.read(this.path(file));
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') return undefined;
      throw new HuskError(`read ${this.path(file)}: ${reason(err)}`, { code: errnoOf(err), cause: err });
    }
  }

  /**
   * Writes `value` into `file`. `what` names the resource it applies (linux.resources.memory.limit),
   * so that a failure says which part of the config the kernel refused.
   */
  write(file: string, value: string, what?: string): void {
    const p = this.path(file);
    try {
      this.fs.write(p, value);
      trace('husk', `write ${p} ${JSON.stringify(value)} = 0`, { kind: 'cgroupWrite', file: p, value });
    } catch (err) {
      const code = errnoOf(err);
      trace('husk', `write ${p} ${JSON.stringify(value)} = -1 ${code ?? ''}`,
        { kind: 'cgroupWrite', file: p, value, errno: code ?? 'an error' });
      const prefix = what ? `${what}: ` : '';
      const controller = file.split('.')[0];
      if (this.v2 && (code === 'ENOENT' || code === 'EACCES' || code === 'EPERM') && controller !== 'cgroup') {
        const available = this.readOptional('cgroup.controllers');
        if (available !== undefined && !available.split(/\s+/).includes(controller)) {
          throw new HuskError(`${prefix}the ${controller} controller is not available in ${this.dir} (its cgroup.controllers: ${available.trim() || 'none'})`, { code, cause: err });
        }
      }
      throw new HuskError(`${prefix}write ${JSON.stringify(value)} to ${p}: ${reason(err)}`, { code, cause: err });
    }
  }
}
