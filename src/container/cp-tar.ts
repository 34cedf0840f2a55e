/**
 * `kiln cp`'s tar side: the entries of a (compressed) tar read from stdin, each consumed before
 * the next (members climbing out of the destination are refused, E_HOSTILE_TAR), and entries
 * written as one tar to stdout with backpressure (the stream is not ended: it may be stdout).
 */
import type { Readable, Writable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { KilnError } from '../errors';
import type { Meta } from '../build/context/write';
import { decompressStream } from '../layer/decompress';
import { encodeHeader } from '../layer/diff';

export type Kind = 'dir' | 'file' | 'symlink' | 'link' | 'char' | 'block' | 'fifo';

/** One thing to copy, named relative to the directory it goes into. */
export interface Entry {
  name: string;
  kind: Kind;
  meta: Meta;
  size: number;
  linkname?: string;
  major?: number;
  minor?: number;
  /** file data, chunk by chunk */
  read?: (put: (b: Buffer) => Promise<void>) => Promise<void>;
}

/** "./a//b/" → "a/b"; null when `..` climbs out of the destination. */
export function memberName(name: string): string | null {
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c !== '..') parts.push(c);
    else if (parts.pop() === undefined) return null;
  }
  return parts.join('/');
}

const TAR_KINDS: Record<string, Kind> = { file: 'file', 'contiguous-file': 'file', directory: 'dir', symlink: 'symlink', link: 'link', 'character-device': 'char', 'block-device': 'block', fifo: 'fifo' };

function notTar(e?: unknown): KilnError {
  return new KilnError('E_BAD_ARCHIVE', `source must be a (compressed) tar archive when copying from stdin${e instanceof Error ? `: ${e.message}` : ''}`);
}

/** The entries of a (compressed) tar on `input`, each to be consumed before the next. */
export async function* tarEntries(input: Readable): AsyncGenerator<Entry> {
  let count = 0;
  try {
    const plain = await decompressStream(input);
    const ex = tarStream.extract();
    plain.on('error', (e) => ex.destroy(e));
    plain.pipe(ex);
    for await (const entry of ex) {
      count++;
      const h = entry.header;
      const name = memberName(h.name);
      if (name === null) throw new KilnError('E_HOSTILE_TAR', `cp: refusing archive member ${JSON.stringify(h.name)}: its path climbs out of the destination directory`);
      const kind = TAR_KINDS[h.type ?? ''];
      if (kind === undefined) throw new KilnError('E_BAD_ARCHIVE', `cp: archive member ${JSON.stringify(h.name)} has an unsupported type ${h.type}`);
      if (name !== '') {
        const t = (h.mtime?.getTime() ?? 0) / 1000;
        yield {
          name, kind, size: h.size ?? 0, meta: { uid: h.uid ?? 0, gid: h.gid ?? 0, mode: (h.mode ?? 0o644) & 0o7777, atime: t, mtime: t },
          ...(kind === 'symlink' || kind === 'link' ? { linkname: h.linkname ?? '' } : {}),
          major: h.devmajor ?? 0, minor: h.devminor ?? 0,
          read: async (put) => {
            for await (const chunk of entry) await put(chunk as Buffer);
          },
        };
      }
      entry.resume();
    }
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw notTar(e);
  }
  if (count === 0) throw notTar();
}

/** Waits until `out` takes `buf` (backpressure). */
function put(out: Writable, buf: Buffer): Promise<void> {
  if (out.write(buf)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (e?: Error) => {
      out.off('drain', done);
      out.off('error', done);
      if (e) reject(new KilnError('E_IO', `cp: writing the tar: ${e.message}`, { cause: e }));
      else resolve();
    };
    out.on('drain', done);
    out.on('error', done);
  });
}

/** Writes entries as one tar to `out` (not ended: it may be stdout). */
export async function writeTar(out: Writable, entries: Iterable<Entry>): Promise<void> {
  for (const e of entries) {
    const type = ({ file: '0', link: '1', symlink: '2', char: '3', block: '4', dir: '5', fifo: '6' } as const)[e.kind];
    const m = e.meta;
    await put(out, encodeHeader({ name: e.kind === 'dir' ? `${e.name}/` : e.name, type, mode: m.mode, uid: m.uid, gid: m.gid, size: e.size, mtime: Math.floor(m.mtime), linkname: e.linkname, devmajor: e.major, devminor: e.minor, xattrs: m.xattrs }));
    if (e.kind !== 'file' || !e.read) continue;
    await e.read((b) => put(out, b));
    if (e.size % 512) await put(out, Buffer.alloc(512 - (e.size % 512)));
  }
  await put(out, Buffer.alloc(1024));
}
