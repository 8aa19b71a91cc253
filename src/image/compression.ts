// Layer decompression, chosen by the blob's first bytes (the media type only announces it):
// gzip with zlib, zstd with zlib where Node has it (22.15+) and the pure-JS fzstd otherwise,
// anything else read as a plain tar.
import * as fs from 'fs';
import { Transform, type TransformCallback } from 'stream';
import * as zlib from 'zlib';
import type { Compression } from './manifest';

export function sniffCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

export function sniffFile(file: string): Compression {
  const fd = fs.openSync(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const n = fs.readSync(fd, head, 0, 4, 0);
    return sniffCompression(head.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
}

class ZstdTransform extends Transform {
  private readonly decoder: import('fzstd').Decompress;

  constructor() {
    super();
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    const { Decompress } = require('fzstd') as typeof import('fzstd');
    this.decoder = new Decompress((data) => {
      // fzstd may hand out views of its window: copy before they are reused.
      this.push(Buffer.from(data));
    });
  }

  _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback) {
    try {
      this.decoder.push(chunk, false);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }

  _flush(cb: TransformCallback) {
    try {
      this.decoder.push(new Uint8Array(0), true);
      cb();
    } catch (err) {
      cb(err as Error);
    }
  }
}

/** A stream that turns the compressed bytes into the tar. */
export function decompressor(kind: Compression): Transform | undefined {
  switch (kind) {
    case 'gzip':
      return zlib.createGunzip({ chunkSize: 1024 * 1024, readableHighWaterMark: 4 * 1024 * 1024 } as zlib.ZlibOptions);
    case 'zstd': {
      const native = (zlib as unknown as { createZstdDecompress?: () => Transform }).createZstdDecompress;
      return native ? native() : new ZstdTransform();
    }
    case 'none':
      return undefined;
  }
}
