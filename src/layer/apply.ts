/**
 * Extracts one OCI layer tar into its own, initially empty directory (the layer's "diff" dir,
 * later an overlayfs lowerdir), translating OCI whiteouts into overlay whiteouts.
 *
 * Contract of `applyLayerTar(tar, dest, opts)`:
 * - `dest` must be an existing, empty, real directory (else E_INVALID_ARGUMENT). The whole of
 *   `tar` is consumed (also any zero padding after the end-of-archive marker, so a hash of the
 *   stream taken by the caller is complete). On failure `tar` is destroyed with the returned
 *   error and `dest` is left half-written: the caller removes it.
 * - Nothing is ever written, chowned, chmodded, linked or removed outside `dest`, whatever the
 *   tar holds. Hostile input is refused with E_HOSTILE_TAR naming the entry, the rule and
 *   `opts.what`: absolute names, `..` components, NUL bytes, a parent component that is a
 *   symlink (checked with lstat, never followed; missing parents are created 0755), relative
 *   symlink targets that climb above the layer root (absolute ones are fine: they are resolved
 *   at container root), hardlink targets that are absolute, contain `..`, do not exist in this
 *   layer yet, are directories or lie behind a symlink, device nodes when `allowDevices` is
 *   false (char 0/0 — a whiteout — is always allowed), whiteouts of "", "." or "..", oversized
 *   entries / totals / entry counts, unknown entry types. Malformed tars (bad checksums,
 *   truncation, corrupt gzip, invalid numbers) fail with E_BAD_ARCHIVE; filesystem errors with E_IO.
 * - Semantics follow containers/storage's overlay driver: later entries for a path replace
 *   earlier ones (a directory over a directory only updates metadata); `dir/.wh.NAME` becomes a
 *   char device 0/0 at dir/NAME (mode 0, owner and mtime of the whiteout entry) replacing whatever this layer
 *   had there; `dir/.wh..wh..opq` sets trusted.overlay.opaque="y" on dir; other `.wh..wh.*` AUFS
 *   metadata entries (and anything below them) are skipped; a `.wh.*` name used as a directory
 *   is E_BAD_ARCHIVE. Ownership, permission bits (incl. setuid/setgid/sticky) and mtimes (PAX
 *   uid/gid/mtime/atime win over the ustar fields) are applied; directory times last.
 *   Hardlink entries get no metadata of their own (they share the target's inode).
 * - xattrs come from PAX `SCHILY.xattr.*` (raw bytes) or `LIBARCHIVE.xattr.*` records.
 *   `trusted.overlay.*` / `user.overlay.*` from the tar are ignored (overlay's own metadata is
 *   ours to write). lsetxattr failing with ENOTSUP or EPERM (filesystem without xattrs, user.*
 *   on a symlink, no privilege for trusted.*) skips that attribute; other errors fail.
 *
 * Uses synchronous syscalls per entry (fast; only file data is awaited, with backpressure):
 * run it in a worker when the event loop must stay responsive.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { KilnError } from '../errors';
import { native } from '../native';
import { PaxRecorder, isSameOrBelow, resolveLinkTarget, splitEntryPath } from './paths';

export interface ApplyOptions {
  /** Create char/block device nodes. Default: running as root (uid 0). */
  allowDevices?: boolean;
  /** Largest entry data size in bytes. Default 64 GiB. */
  maxEntrySize?: number;
  /** Largest sum of entry data sizes. Default 1 TiB. */
  maxTotalSize?: number;
  /** Most entries. Default 10 million. */
  maxEntries?: number;
  /** For messages, e.g. "layer sha256:abcd… of docker-archive:/x.tar". */
  what?: string;
}

export interface ApplyResult {
  /** Sum of the sizes of the regular files written (hardlinks not counted again). */
  size: number;
  /** Number of tar entries processed (including whiteouts and skipped metadata). */
  entries: number;
}

/** What tar-stream gives us for an entry (its typings lack `pax`). */
interface Hdr {
  name: string;
  type: string | null;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  pax: Record<string, string> | null;
}

interface Meta {
  uid: number;
  gid: number;
  mode: number;
  atime: number;
  mtime: number;
}

const GiB = 1024 ** 3;
const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, S_IFCHR, S_IFBLK, S_IFIFO } = fs.constants;
const OPAQUE = '.wh..wh..opq';
const OPAQUE_XATTR = 'trusted.overlay.opaque';
const HINT = 'the layer tar is malformed or malicious; nothing was written outside the layer directory';

function errCode(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

function isSysError(e: unknown): boolean {
  return typeof (e as { syscall?: unknown } | null)?.syscall === 'string';
}

class Applier {
  readonly dest: string;
  private readonly what: string;
  private readonly allowDevices: boolean;
  private readonly maxEntrySize: number;
  private readonly maxTotalSize: number;
  private readonly maxEntries: number;
  /** Root-relative paths verified (created or lstat'ed) to be real directories in dest.
   *  Invariant: a member's ancestors are members; removing a directory drops its subtree. */
  private readonly dirs = new Set<string>(['']);
  /** Directory times, applied after all entries (writing children changes them). */
  private readonly dirTimes = new Map<string, [number, number]>();
  size = 0;
  entries = 0;
  private total = 0;

  constructor(dest: string, opts: ApplyOptions) {
    this.dest = path.resolve(dest);
    this.what = opts.what ?? 'layer tar';
    this.allowDevices = opts.allowDevices ?? process.getuid?.() === 0;
    this.maxEntrySize = opts.maxEntrySize ?? 64 * GiB;
    this.maxTotalSize = opts.maxTotalSize ?? 1024 * GiB;
    this.maxEntries = opts.maxEntries ?? 10_000_000;
    const st = fs.lstatSync(this.dest, { throwIfNoEntry: false });
    if (!st?.isDirectory()) {
      throw new KilnError('E_INVALID_ARGUMENT', `${this.what}: layer directory ${this.dest} does not exist or is not a directory`);
    }
    if (fs.readdirSync(this.dest).length > 0) {
      throw new KilnError('E_INVALID_ARGUMENT', `${this.what}: layer directory ${this.dest} is not empty`);
    }
  }

  hostile(name: string, rule: string): KilnError {
    return new KilnError('E_HOSTILE_TAR', `${this.what}: refusing tar entry ${JSON.stringify(name)}: ${rule}`, { hint: HINT });
  }

  bad(name: string, msg: string): KilnError {
    return new KilnError('E_BAD_ARCHIVE', `${this.what}: tar entry ${JSON.stringify(name)}: ${msg}`);
  }

  private abs(rel: string): string {
    return rel === '' ? this.dest : `${this.dest}/${rel}`;
  }

  /**
   * Makes sure every parent component of `parts` is a real directory in dest, creating missing
   * ones (0755) when `create`, and returns the parent's relative path — or null when !create
   * and a parent is missing or not a directory. A symlinked parent is always hostile.
   */
  private parentDir(parts: readonly string[], name: string, create: boolean): string | null {
    const n = parts.length - 1;
    const parent = parts.slice(0, n).join('/');
    if (this.dirs.has(parent)) return parent;
    let rel = '';
    for (let i = 0; i < n; i++) {
      rel = i === 0 ? parts[0]! : `${rel}/${parts[i]}`;
      if (this.dirs.has(rel)) continue;
      const p = this.abs(rel);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (st === undefined) {
        if (!create) return null;
        fs.mkdirSync(p, 0o755);
        fs.chmodSync(p, 0o755); // whatever the umask
      } else if (st.isSymbolicLink()) {
        throw this.hostile(name, `its parent "${rel}" is a symlink in the layer (writing through it could leave the layer directory)`);
      } else if (!st.isDirectory()) {
        if (!create) return null;
        throw this.bad(name, `its parent "${rel}" is not a directory`);
      }
      this.dirs.add(rel);
    }
    return parent;
  }

  /** Removes whatever is at `rel` (a whole tree for a directory) and forgets cached state below it. */
  private remove(rel: string): void {
    const p = this.abs(rel);
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (!st.isDirectory()) {
      fs.unlinkSync(p);
      return;
    }
    fs.rmSync(p, { recursive: true, force: true }); // unlinks symlinks, never follows them
    for (const d of this.dirs) if (isSameOrBelow(d, rel)) this.dirs.delete(d);
    for (const d of this.dirTimes.keys()) if (isSameOrBelow(d, rel)) this.dirTimes.delete(d);
  }

  /** Runs `make` (a create-exclusive syscall); if something is in the way, removes it and retries. */
  private replace<T>(rel: string, make: () => T): T {
    try {
      return make();
    } catch (e) {
      if (errCode(e) !== 'EEXIST') throw e;
    }
    this.remove(rel);
    return make();
  }

  private meta(h: Hdr, name: string): Meta {
    const pax = h.pax ?? {};
    const int = (s: string | undefined, dflt: number, what: string): number => {
      const v = s === undefined ? dflt : Number(s);
      if (!Number.isSafeInteger(v) || v < 0 || v > 0xfffffffe) throw this.bad(name, `invalid ${what} ${s ?? dflt}`);
      return v;
    };
    const time = (s: string | undefined, dflt: number): number => {
      const v = s === undefined ? dflt : Number(s);
      return Number.isFinite(v) ? v : 0;
    };
    const mtime = time(pax.mtime, h.mtime.getTime() / 1000);
    return {
      uid: int(pax.uid, h.uid, 'uid'),
      gid: int(pax.gid, h.gid, 'gid'),
      mode: h.mode & 0o7777,
      mtime,
      atime: time(pax.atime, mtime),
    };
  }

  private xattrs(p: string, name: string, xs: Map<string, Buffer> | null): void {
    if (!xs) return;
    for (const [k, v] of xs) {
      if (k.startsWith('trusted.overlay.') || k.startsWith('user.overlay.')) continue;
      if (k.includes('\0') || k === '') throw this.hostile(name, `xattr name ${JSON.stringify(k)} is invalid`);
      try {
        native().lsetxattr(p, k, v);
      } catch (e) {
        const c = errCode(e);
        if (c === 'ENOTSUP' || c === 'EPERM') continue;
        throw e;
      }
    }
  }

  /** Applies one entry; its data stream is always fully consumed on success. */
  async entry(stream: Readable, h: Hdr, xs: Map<string, Buffer> | null): Promise<void> {
    const name = h.name;
    if (++this.entries > this.maxEntries) throw this.hostile(name, `the tar has more than ${this.maxEntries} entries`);
    const size = h.size;
    if (!Number.isSafeInteger(size) || size > this.maxEntrySize) {
      throw this.hostile(name, `absurd entry size ${size} (the limit is ${this.maxEntrySize} bytes)`);
    }
    this.total += size;
    if (this.total > this.maxTotalSize) throw this.hostile(name, `the layer's data exceeds ${this.maxTotalSize} bytes`);
    // Entries without content must have none: Go's archive/tar reads what follows a link header
    // as the next entry while tar-stream skips it as data, so such a tar shows different files
    // to different tools.
    if (size !== 0 && h.type !== 'file' && h.type !== 'contiguous-file') {
      throw this.hostile(name, `a ${h.type} entry carries ${size} bytes of data (tools disagree on what follows it)`);
    }
    if (h.pax && Object.keys(h.pax).some((k) => k.startsWith('GNU.sparse.'))) {
      throw new KilnError('E_UNSUPPORTED', `${this.what}: tar entry ${JSON.stringify(name)} is a PAX sparse file, which kiln does not expand`, {
        hint: 'recreate the layer without --sparse',
      });
    }
    const split = splitEntryPath(name);
    if (!split.ok) throw this.hostile(name, split.rule);
    if (h.linkname?.includes('\0')) throw this.hostile(name, 'the link target contains a NUL byte');
    const parts = split.parts;
    for (let i = 0; i < parts.length - 1; i++) {
      if (!parts[i]!.startsWith('.wh.')) continue;
      if (parts[i]!.startsWith('.wh..wh.')) return drain(stream); // below AUFS metadata
      throw this.bad(name, `the whiteout "${parts[i]}" is used as a directory`);
    }
    try {
      await this.dispatch(stream, h, parts, xs);
    } catch (e) {
      throw isSysError(e) ? new KilnError('E_IO', `${this.what}: extracting tar entry ${JSON.stringify(name)}: ${(e as Error).message}`, { cause: e }) : e;
    }
  }

  private async dispatch(stream: Readable, h: Hdr, parts: string[], xs: Map<string, Buffer> | null): Promise<void> {
    const name = h.name;
    const base = parts[parts.length - 1];
    if (base === undefined) {
      if (h.type !== 'directory') throw this.hostile(name, `a ${h.type ?? 'unknown'} entry cannot replace the layer root`);
      const m = this.meta(h, name);
      this.setMeta(this.dest, m);
      this.xattrs(this.dest, name, xs);
      this.dirTimes.set('', [m.atime, m.mtime]);
      return drain(stream);
    }
    if (base.startsWith('.wh.')) {
      if (base === OPAQUE) {
        const dir = this.parentDir(parts, name, true)!;
        native().lsetxattr(this.abs(dir), OPAQUE_XATTR, Buffer.from('y'));
      } else if (!base.startsWith('.wh..wh.')) {
        this.whiteout(h, parts, base.slice(4));
      }
      return drain(stream);
    }
    const rel = parts.join('/');
    const p = this.abs(rel);
    switch (h.type) {
      case 'file':
      case 'contiguous-file':
        return this.file(stream, h, parts, rel, xs);
      case 'directory': {
        const m = this.meta(h, name);
        this.parentDir(parts, name, true);
        try {
          fs.mkdirSync(p, 0o700);
        } catch (e) {
          if (errCode(e) !== 'EEXIST') throw e;
          if (!fs.lstatSync(p).isDirectory()) {
            this.remove(rel);
            fs.mkdirSync(p, 0o700);
          }
        }
        this.setMeta(p, m);
        this.xattrs(p, name, xs);
        this.dirs.add(rel);
        this.dirTimes.set(rel, [m.atime, m.mtime]);
        return drain(stream);
      }
      case 'symlink': {
        const target = h.linkname ?? '';
        if (target === '') throw this.bad(name, 'symlink with an empty target');
        if (!target.startsWith('/') && resolveLinkTarget(parts.slice(0, -1), target) === null) {
          throw this.hostile(name, `its relative symlink target "${target}" climbs above the layer root`);
        }
        const m = this.meta(h, name);
        this.parentDir(parts, name, true);
        this.replace(rel, () => fs.symlinkSync(target, p));
        fs.lchownSync(p, m.uid, m.gid);
        this.xattrs(p, name, xs);
        fs.lutimesSync(p, m.atime, m.mtime);
        return drain(stream);
      }
      case 'link':
        this.hardlink(h, parts, rel);
        return drain(stream);
      case 'character-device':
      case 'block-device':
      case 'fifo': {
        const { devmajor: maj, devminor: min } = h;
        if (!Number.isSafeInteger(maj) || !Number.isSafeInteger(min) || maj < 0 || min < 0 || maj > 0xfffff || min > 0xfffff) {
          throw this.bad(name, `invalid device number ${maj}:${min}`);
        }
        const whiteoutDev = h.type === 'character-device' && maj === 0 && min === 0;
        if (h.type !== 'fifo' && !whiteoutDev && !this.allowDevices) {
          throw this.hostile(name, `device node ${maj}:${min} refused (device nodes are not allowed: allowDevices is false)`);
        }
        const fmt = h.type === 'fifo' ? S_IFIFO : h.type === 'block-device' ? S_IFBLK : S_IFCHR;
        const m = this.meta(h, name);
        this.parentDir(parts, name, true);
        this.replace(rel, () => native().mknod(p, fmt | m.mode, h.type === 'fifo' ? 0 : maj, h.type === 'fifo' ? 0 : min));
        this.setMeta(p, m);
        this.xattrs(p, name, xs);
        fs.lutimesSync(p, m.atime, m.mtime);
        return drain(stream);
      }
      default:
        throw this.hostile(name, `unknown or unsupported tar entry type ${JSON.stringify(h.type)} (e.g. GNU sparse or multi-volume)`);
    }
  }

  private setMeta(p: string, m: Meta): void {
    fs.lchownSync(p, m.uid, m.gid);
    fs.chmodSync(p, m.mode); // after chown, which clears setuid/setgid; p is never a symlink here
  }

  private async file(stream: Readable, h: Hdr, parts: string[], rel: string, xs: Map<string, Buffer> | null): Promise<void> {
    const name = h.name;
    const m = this.meta(h, name);
    this.parentDir(parts, name, true);
    const p = this.abs(rel);
    const fd = this.replace(rel, () => fs.openSync(p, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600));
    let written = 0;
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        for (let off = 0; off < chunk.length; ) off += fs.writeSync(fd, chunk, off, chunk.length - off);
        written += chunk.length;
      }
      if (written !== h.size) throw this.bad(name, `expected ${h.size} bytes of data, got ${written}`);
      fs.fchownSync(fd, m.uid, m.gid);
      fs.fchmodSync(fd, m.mode);
      this.xattrs(p, name, xs); // after chown, which clears security.capability
      fs.futimesSync(fd, m.atime, m.mtime);
    } finally {
      fs.closeSync(fd);
    }
    this.size += written;
  }

  private whiteout(h: Hdr, parts: string[], victim: string): void {
    const name = h.name;
    if (victim === '' || victim === '.' || victim === '..') {
      throw this.hostile(name, `a whiteout of "${victim}" would delete the directory itself or its parent`);
    }
    const m = this.meta(h, name);
    const dir = this.parentDir(parts, name, true)!;
    const rel = dir === '' ? victim : `${dir}/${victim}`;
    const p = this.abs(rel);
    this.replace(rel, () => native().mknod(p, S_IFCHR, 0, 0));
    fs.lchownSync(p, m.uid, m.gid);
    fs.lutimesSync(p, m.atime, m.mtime); // so that diff.ts writes the same .wh. entry back
  }

  private hardlink(h: Hdr, parts: string[], rel: string): void {
    const name = h.name;
    const target = h.linkname ?? '';
    if (target === '') throw this.bad(name, 'hardlink with an empty target');
    const t = splitEntryPath(target);
    if (!t.ok) throw this.hostile(name, `hardlink target "${target}": ${t.rule}`);
    if (t.parts.length === 0) throw this.hostile(name, 'hardlink to the layer root');
    const trel = t.parts.join('/');
    if (isSameOrBelow(trel, rel)) throw this.bad(name, `hardlink to itself or to a path below itself ("${target}")`);
    const tdir = this.parentDir(t.parts, name, false);
    const tst = tdir === null ? undefined : fs.lstatSync(this.abs(trel), { throwIfNoEntry: false });
    if (!tst) throw this.hostile(name, `hardlink target "${target}" does not exist in this layer`);
    if (tst.isDirectory()) throw this.hostile(name, `hardlink target "${target}" is a directory`);
    this.parentDir(parts, name, true);
    const p = this.abs(rel);
    this.replace(rel, () => fs.linkSync(this.abs(trel), p)); // link(2) never follows a symlink target
  }

  finish(): void {
    for (const [rel, [a, m]] of this.dirTimes) fs.lutimesSync(this.abs(rel), a, m);
  }
}

async function drain(stream: Readable): Promise<void> {
  for await (const _ of stream as AsyncIterable<Buffer>) void _;
}

/** Extracts the layer tar `tar` into the empty directory `dest` (see the file comment). */
export async function applyLayerTar(tar: Readable, dest: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const what = opts.what ?? 'layer tar';
  // allowUnknownFormat: old V7 tars, which podman accepts (missing from @types/tar-stream)
  const ex = tarStream.extract({ allowUnknownFormat: true } as Parameters<typeof tarStream.extract>[0]);
  const pax = new PaxRecorder(ex);
  let srcError: unknown;
  // Stays attached after a failure: it also swallows the error we destroy `tar` with.
  const onSrcError = (e: unknown) => {
    srcError ??= e;
    ex.destroy(e as Error);
  };
  tar.on('error', onSrcError);
  let lastName = '';
  try {
    const ap = new Applier(dest, opts);
    tar.pipe(ex as unknown as NodeJS.WritableStream);
    for await (const entry of ex) {
      const h = entry.header as unknown as Hdr;
      lastName = h.name;
      await ap.entry(entry as unknown as Readable, h, pax.take(h.pax));
    }
    if (srcError !== undefined) throw srcError;
    ap.finish();
    tar.off('error', onSrcError);
    return { size: ap.size, entries: ap.entries };
  } catch (e) {
    let err: KilnError;
    if (e instanceof KilnError) err = e;
    else if (isSysError(e) && e !== srcError) err = new KilnError('E_IO', `${what}: ${(e as Error).message}`, { cause: e });
    else if (e === srcError && !String(errCode(e) ?? '').startsWith('Z_')) {
      err = new KilnError('E_IO', `${what}: reading the layer: ${(e as Error).message}`, { cause: e });
    } else {
      const after = lastName ? ` (after entry ${JSON.stringify(lastName)})` : ' (before the first entry)';
      err = new KilnError('E_BAD_ARCHIVE', `${what}: malformed tar${after}: ${(e as Error).message}`, { cause: e });
    }
    tar.unpipe(ex as unknown as NodeJS.WritableStream);
    ex.destroy();
    tar.destroy(err); // our error, not "premature close", reaches whoever pipes into `tar`
    throw err;
  }
}
