/**
 * Test helpers that build layer tars: `buildTar` with tar-stream's pack (an independent
 * writer, so apply.ts is not only tested against diff.ts), and raw ustar/PAX blocks for what
 * tar-stream refuses to write (absurd sizes, unknown types, NUL bytes in names, broken headers).
 */
import { Readable, Writable } from 'node:stream';
import * as tarStream from 'tar-stream';

export type EntryType = 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';

export interface E {
  name: string;
  type?: EntryType;
  data?: string | Buffer;
  mode?: number;
  uid?: number;
  gid?: number;
  /** seconds since the epoch; default 1700000000 */
  mtime?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** extra PAX records (string values only: tar-stream writes them as UTF-8) */
  pax?: Record<string, string>;
}

export const T0 = 1_700_000_000;

/** A tar of `entries`, in order, written by tar-stream. Deterministic. */
export async function buildTar(entries: readonly E[]): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => {
      chunks.push(Buffer.from(c as Buffer));
    });
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const header = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: new Date((e.mtime ?? T0) * 1000),
      linkname: e.linkname,
      devmajor: e.devmajor ?? 0,
      devminor: e.devminor ?? 0,
      pax: e.pax,
    } as tarStream.Header;
    await new Promise<void>((resolve, reject) => {
      const cb = (err?: Error | null) => (err ? reject(err) : resolve());
      if (type === 'file') pack.entry(header, e.data ?? '', cb);
      else pack.entry(header, cb);
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** A stream of `buf` in chunks of `chunk` bytes (small chunks exercise the parser's buffering). */
export function streamOf(buf: Buffer, chunk = 65536): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += chunk) parts.push(buf.subarray(i, i + chunk));
  return Readable.from(parts, { objectMode: false });
}

/** Collects everything written to it. */
export class Collect extends Writable {
  readonly chunks: Buffer[] = [];
  override _write(c: Buffer, _e: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.chunks.push(c);
    cb();
  }
  get buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

export interface Raw {
  name: string;
  /** typeflag character */
  type: string;
  size?: number;
  /** 12 raw bytes for the size field (e.g. base-256), overriding `size` */
  sizeField?: Buffer;
  mode?: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  /** corrupt the checksum */
  badChecksum?: boolean;
}

function oct(b: Buffer, off: number, len: number, v: number): void {
  b.write(v.toString(8).padStart(len - 1, '0'), off, 'latin1');
}

/** One 512-byte ustar header block, built by hand. */
export function rawHeader(h: Raw): Buffer {
  const b = Buffer.alloc(512);
  b.write(h.name, 0, 100, 'utf8');
  oct(b, 100, 8, h.mode ?? 0o644);
  oct(b, 108, 8, 0);
  oct(b, 116, 8, 0);
  if (h.sizeField) h.sizeField.copy(b, 124, 0, 12);
  else oct(b, 124, 12, h.size ?? 0);
  oct(b, 136, 12, T0);
  b.fill(0x20, 148, 156);
  b.write(h.type, 156, 1, 'latin1');
  b.write(h.linkname ?? '', 157, 100, 'utf8');
  b.write('ustar\x0000', 257, 8, 'latin1');
  oct(b, 329, 8, h.devmajor ?? 0);
  oct(b, 337, 8, h.devminor ?? 0);
  let sum = 0;
  for (const x of b) sum += x;
  if (h.badChecksum) sum += 1;
  b.write(sum.toString(8).padStart(6, '0') + '\x00 ', 148, 8, 'latin1');
  return b;
}

export function padded(data: Buffer): Buffer {
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([data, Buffer.alloc(pad)]);
}

/** A PAX extended header ('x') carrying `records` (values as raw bytes), to precede an entry. */
export function paxBlock(records: ReadonlyArray<[string, string | Buffer]>): Buffer {
  const recs = records.map(([k, v]) => {
    const body = Buffer.concat([Buffer.from(` ${k}=`), Buffer.isBuffer(v) ? v : Buffer.from(v, 'utf8'), Buffer.from('\n')]);
    let digits = 1;
    while (String(body.length + digits).length > digits) digits++;
    return Buffer.concat([Buffer.from(String(body.length + digits)), body]);
  });
  const data = Buffer.concat(recs);
  return Buffer.concat([rawHeader({ name: 'PaxHeaders.0/x', type: 'x', size: data.length }), padded(data)]);
}

export const END = Buffer.alloc(1024);
