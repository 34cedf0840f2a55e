/**
 * Layer directory → OCI layer tar (the reverse of apply.ts), typically from an overlay upperdir.
 *
 * Contract of `writeLayerTar(dir, out)`:
 * - Writes one complete tar (POSIX ustar + PAX extended headers, ending with two zero blocks) of
 *   everything below `dir` (no entry for `dir` itself, except `.wh..wh..opq` first when `dir`
 *   is opaque) to `out`, respecting its backpressure, then ends `out` and waits for it to
 *   finish. Resolves with the number of tar bytes written.
 * - Deterministic: entries in depth-first order, names sorted (JS string order) within each
 *   directory, every directory before its contents; names without "./", directories with a
 *   trailing "/"; no user/group names; mtimes in whole seconds (sub-second parts and atimes are
 *   dropped, negative times become 0). The same tree always gives the same bytes.
 * - Kept: uid, gid, permission bits incl. setuid/setgid/sticky, mtime, symlink targets, char/block
 *   devices and FIFOs, xattrs as PAX `SCHILY.xattr.<name>` with the raw value bytes (sorted by
 *   name). Not kept: `trusted.overlay.*` and `user.overlay.*` (overlay's own bookkeeping) and
 *   `security.selinux` (a label of the build host, as podman/buildah do). Sockets are skipped.
 * - Hardlinks: non-directories with nlink > 1 sharing (dev, ino) become 'link' entries pointing
 *   at the first path written (overlay whiteouts are never linked: the kernel shares one whiteout
 *   inode between them).
 * - Overlay → OCI: a char device 0/0 becomes an empty regular file `.wh.NAME` (mode 0, same
 *   owner and mtime, as containers/storage writes it); a directory whose `trusted.overlay.opaque`
 *   (or `user.overlay.opaque`) is "y" is followed right away by `DIR/.wh..wh..opq` (an empty
 *   file with the directory's owner, permission bits and mtime). Overlay redirect/metacopy
 *   xattrs mean the upper dir alone does not describe the change: E_UNSUPPORTED (mount overlays
 *   with redirect_dir=off,metacopy=off).
 * - Names are what readdir returns as UTF-8 strings: non-UTF-8 file names are not preserved.
 *   Non-ASCII or long names/link targets and ids ≥ 2^21 go into PAX records.
 * - A regular file that shrinks while being read fails with E_IO; one that grows is cut at the
 *   size seen by lstat. Errors: E_IO (filesystem or `out`), E_UNSUPPORTED.
 *
 * The tar is encoded here (`encodeHeader`) rather than with tar-stream's pack, which writes PAX
 * values as UTF-8 text (corrupting binary xattrs such as security.capability) and silently
 * writes uids/gids ≥ 2^18 as 777777.
 */
import { splitDev } from '../util/rdev';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { KilnError } from '../errors';
import { native } from '../native';

type TypeFlag = '0' | '1' | '2' | '3' | '4' | '5' | '6';

interface TarHeader {
  name: string;
  type: TypeFlag;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname?: string;
  devmajor?: number;
  devminor?: number;
  xattrs?: [string, Buffer][];
}

const CHUNK = 1 << 20;
const ZERO = Buffer.alloc(1024);
const NON_ASCII = /[^\x00-\x7f]/;

/** Writes `v` into the numeric field b[off, off+len): octal if it fits, else base-256 (GNU). */
function putNum(b: Buffer, off: number, len: number, v: number): void {
  const oct = Math.max(0, Math.floor(v)).toString(8);
  if (oct.length <= len - 1) {
    b.write(oct.padStart(len - 1, '0'), off, 'latin1');
    return;
  }
  let n = BigInt(Math.floor(v));
  for (let i = len - 1; i > 0; i--, n >>= 8n) b[off + i] = Number(n & 0xffn);
  b[off] = 0x80;
}

function fitsOctal(v: number, len: number): boolean {
  return v >= 0 && v.toString(8).length <= len - 1;
}

/** Splits an ASCII name into ustar (prefix, name), or null when it does not fit. */
function splitUstar(name: string): [string, string] | null {
  if (name.length <= 100) return ['', name];
  for (let i = name.indexOf('/'); i !== -1 && i <= 155; i = name.indexOf('/', i + 1)) {
    const rest = name.slice(i + 1);
    if (rest.length > 0 && rest.length <= 100) return [name.slice(0, i), rest];
  }
  return null;
}

function paxRecord(key: string, value: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from(` ${key}=`, 'utf8'), value, Buffer.from('\n')]);
  let digits = 1;
  while (String(body.length + digits).length > digits) digits++;
  return Buffer.concat([Buffer.from(String(body.length + digits), 'latin1'), body]);
}

function ustarBlock(f: { name: string; prefix: string; type: string; mode: number; uid: number; gid: number; size: number; mtime: number; linkname: string; devmajor: number; devminor: number }): Buffer {
  const b = Buffer.alloc(512);
  b.write(f.name, 0, 100, 'latin1');
  putNum(b, 100, 8, f.mode);
  putNum(b, 108, 8, f.uid);
  putNum(b, 116, 8, f.gid);
  putNum(b, 124, 12, f.size);
  putNum(b, 136, 12, f.mtime);
  b.fill(0x20, 148, 156);
  b.write(f.type, 156, 1, 'latin1');
  b.write(f.linkname, 157, 100, 'latin1');
  b.write('ustar\x0000', 257, 8, 'latin1');
  putNum(b, 329, 8, f.devmajor);
  putNum(b, 337, 8, f.devminor);
  b.write(f.prefix, 345, 155, 'latin1');
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += b[i]!;
  b.write(sum.toString(8).padStart(6, '0') + '\x00 ', 148, 8, 'latin1');
  return b;
}

/** An ASCII stand-in for a name that lives in a PAX record (for readers without PAX). */
function asciiStandIn(s: string, max: number): string {
  const a = s.replace(/[^\x20-\x7e]/g, '_');
  return a.length <= max ? a : a.slice(a.length - max);
}

/** Header blocks for one entry: an optional PAX header + its data, then the ustar header. */
export function encodeHeader(h: TarHeader): Buffer {
  const recs: Buffer[] = [];
  const split = NON_ASCII.test(h.name) ? null : splitUstar(h.name);
  if (!split) recs.push(paxRecord('path', Buffer.from(h.name, 'utf8')));
  const link = h.linkname ?? '';
  const linkFits = !NON_ASCII.test(link) && link.length <= 100;
  if (!linkFits) recs.push(paxRecord('linkpath', Buffer.from(link, 'utf8')));
  if (!fitsOctal(h.uid, 8)) recs.push(paxRecord('uid', Buffer.from(String(h.uid))));
  if (!fitsOctal(h.gid, 8)) recs.push(paxRecord('gid', Buffer.from(String(h.gid))));
  if (!fitsOctal(h.size, 12)) recs.push(paxRecord('size', Buffer.from(String(h.size))));
  for (const [k, v] of h.xattrs ?? []) recs.push(paxRecord(`SCHILY.xattr.${k}`, v));
  const [prefix, name] = split ?? ['', asciiStandIn(h.name, 100)];
  const main = ustarBlock({
    name,
    prefix,
    type: h.type,
    mode: h.mode,
    uid: h.uid,
    gid: h.gid,
    size: h.size,
    mtime: h.mtime,
    linkname: linkFits ? link : asciiStandIn(link, 100),
    devmajor: h.devmajor ?? 0,
    devminor: h.devminor ?? 0,
  });
  if (recs.length === 0) return main;
  const data = Buffer.concat(recs);
  const paxName = `PaxHeaders.0/${asciiStandIn(path.posix.basename(h.name) || 'x', 80)}`;
  const ph = ustarBlock({ name: paxName, prefix: '', type: 'x', mode: 0o644, uid: 0, gid: 0, size: data.length, mtime: h.mtime, linkname: '', devmajor: 0, devminor: 0 });
  return Buffer.concat([ph, data, Buffer.alloc(pad(data.length)), main]);
}

function pad(n: number): number {
  return (512 - (n % 512)) % 512;
}

class Sink {
  size = 0;
  private error: unknown;
  private readonly onError = (e: unknown) => {
    this.error ??= e;
  };

  constructor(private readonly out: Writable) {
    out.on('error', this.onError);
  }

  private fail(): KilnError {
    const e = this.error;
    return new KilnError('E_IO', `writing the layer tar: ${e instanceof Error ? e.message : 'output stream closed'}`, { cause: e });
  }

  async put(buf: Buffer): Promise<void> {
    if (this.error !== undefined || this.out.destroyed || this.out.writableEnded) throw this.fail();
    this.size += buf.length;
    if (this.out.write(buf)) return;
    await new Promise<void>((resolve, reject) => {
      const done = (err: boolean) => () => {
        this.out.off('drain', ok);
        this.out.off('error', bad);
        this.out.off('close', bad);
        if (err) reject(this.fail());
        else resolve();
      };
      const ok = done(false);
      const bad = done(true);
      this.out.on('drain', ok);
      this.out.on('error', bad);
      this.out.on('close', bad);
    });
  }

  async end(): Promise<void> {
    await this.put(ZERO);
    this.out.end();
    try {
      await finished(this.out, { readable: false });
    } catch (e) {
      this.error ??= e;
      throw this.fail();
    } finally {
      this.out.off('error', this.onError);
    }
  }
}

class Walker {
  private readonly links = new Map<string, string>();

  constructor(private readonly root: string, private readonly sink: Sink, private readonly clampMtime?: number) {}

  /** mtime in whole seconds, never after `clampMtime` when that is set (reproducible builds) */
  private secs(st: fs.BigIntStats): number {
    const s = st.mtimeNs < 0n ? 0 : Number(st.mtimeNs / 1_000_000_000n);
    return this.clampMtime !== undefined && s > this.clampMtime ? this.clampMtime : s;
  }

  private xattrs(p: string): { list: [string, Buffer][]; opaque: boolean } {
    const n = native();
    const list: [string, Buffer][] = [];
    let opaque = false;
    for (const k of n.llistxattr(p).sort()) {
      if (k.startsWith('trusted.overlay.') || k.startsWith('user.overlay.')) {
        const attr = k.slice(k.indexOf('overlay.') + 8);
        if (attr === 'opaque') opaque = n.lgetxattr(p, k)?.toString('latin1') === 'y';
        if (attr === 'redirect' || attr === 'metacopy') {
          throw new KilnError('E_UNSUPPORTED', `${p} carries the overlay xattr ${k}; its layer diff cannot be computed from the upper directory alone`, {
            hint: 'mount the overlay with redirect_dir=off,metacopy=off',
          });
        }
        continue;
      }
      if (k === 'security.selinux') continue;
      const v = n.lgetxattr(p, k);
      if (v !== null) list.push([k, v]);
    }
    return { list, opaque };
  }

  /** Metadata for a `.wh..wh..opq` entry when the directory `p` is opaque, else null. */
  opaque(p: string): { mode: number; uid: number; gid: number; size: number; mtime: number } | null {
    if (!this.xattrs(p).opaque) return null;
    const st = fs.lstatSync(p, { bigint: true });
    return { mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), size: 0, mtime: this.secs(st) };
  }

  async dir(rel: string): Promise<void> {
    const abs = rel === '' ? this.root : `${this.root}/${rel}`;
    for (const name of fs.readdirSync(abs).sort()) {
      const r = rel === '' ? name : `${rel}/${name}`;
      await this.one(r, `${abs}/${name}`);
    }
  }

  private async one(rel: string, p: string): Promise<void> {
    const st = fs.lstatSync(p, { bigint: true });
    const base = { mode: Number(st.mode) & 0o7777, uid: Number(st.uid), gid: Number(st.gid), size: 0, mtime: this.secs(st) };
    if (st.isSocket()) return;
    if (st.isCharacterDevice() && st.rdev === 0n) {
      const slash = rel.lastIndexOf('/');
      const wh = `${rel.slice(0, slash + 1)}.wh.${rel.slice(slash + 1)}`;
      await this.sink.put(encodeHeader({ ...base, name: wh, type: '0', mode: 0 }));
      return;
    }
    if (st.isDirectory()) {
      const { list, opaque } = this.xattrs(p);
      await this.sink.put(encodeHeader({ ...base, name: `${rel}/`, type: '5', xattrs: list }));
      if (opaque) await this.sink.put(encodeHeader({ ...base, name: `${rel}/.wh..wh..opq`, type: '0' }));
      await this.dir(rel);
      return;
    }
    if (st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      const first = this.links.get(key);
      if (first !== undefined) {
        await this.sink.put(encodeHeader({ ...base, name: rel, type: '1', linkname: first }));
        return;
      }
      this.links.set(key, rel);
    }
    const { list } = this.xattrs(p);
    if (st.isSymbolicLink()) {
      await this.sink.put(encodeHeader({ ...base, name: rel, type: '2', linkname: fs.readlinkSync(p), xattrs: list }));
    } else if (st.isCharacterDevice() || st.isBlockDevice()) {
      const { major: devmajor, minor: devminor } = splitDev(st.rdev);
      await this.sink.put(encodeHeader({ ...base, name: rel, type: st.isBlockDevice() ? '4' : '3', devmajor, devminor, xattrs: list }));
    } else if (st.isFIFO()) {
      await this.sink.put(encodeHeader({ ...base, name: rel, type: '6', xattrs: list }));
    } else if (st.isFile()) {
      const size = Number(st.size);
      await this.sink.put(encodeHeader({ ...base, name: rel, type: '0', size, xattrs: list }));
      await this.data(p, size);
    }
  }

  private async data(p: string, size: number): Promise<void> {
    const fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK); // never blocks on a swapped-in FIFO
    try {
      let left = size;
      while (left > 0) {
        const buf = Buffer.allocUnsafe(Math.min(left, CHUNK));
        let got = 0;
        while (got < buf.length) {
          const n = fs.readSync(fd, buf, got, buf.length - got, null);
          if (n === 0) throw new KilnError('E_IO', `${p} shrank while it was being archived`);
          got += n;
        }
        left -= got;
        await this.sink.put(buf);
      }
      const padding = pad(size);
      if (padding) await this.sink.put(ZERO.subarray(0, padding));
    } finally {
      fs.closeSync(fd);
    }
  }
}

/**
 * Writes the OCI layer tar of `dir` to `out` and ends it (see the file comment). With
 * `clampMtime` (seconds since the epoch: --timestamp, SOURCE_DATE_EPOCH) no entry's mtime is
 * later than it, so rebuilding the same content gives the same bytes.
 */
export async function writeLayerTar(dir: string, out: Writable, opts: { clampMtime?: number } = {}): Promise<{ size: number }> {
  const root = path.resolve(dir);
  const sink = new Sink(out);
  try {
    if (!fs.statSync(root).isDirectory()) throw new KilnError('E_INVALID_ARGUMENT', `${root} is not a directory`);
    const w = new Walker(root, sink, opts.clampMtime);
    const rootOpaque = w.opaque(root);
    if (rootOpaque) await sink.put(encodeHeader({ name: '.wh..wh..opq', type: '0', ...rootOpaque }));
    await w.dir('');
    await sink.end();
    return { size: sink.size };
  } catch (e) {
    const err = e instanceof KilnError ? e : new KilnError('E_IO', `writing the layer tar of ${root}: ${(e as Error).message}`, { cause: e });
    if (!out.destroyed) out.destroy(err);
    throw err;
  }
}
