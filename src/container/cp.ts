/**
 * `kiln cp SRC DEST`: files between a container and the host, between two containers, or a tar
 * stream on stdin/stdout (`-`), with podman 4.3's rules:
 *
 * - `CONTAINER:PATH` names a container path; an argument starting with "/" or "." (or without
 *   ":") is a host path. Container paths are absolute, or relative to the container's working
 *   directory (podman's code, whatever its man page says); host ones relative to the cwd.
 * - Container paths are resolved inside the container with symlinks followed as if its root
 *   were "/" (secureJoin: nothing outside the rootfs is ever reached through a symlink). A path
 *   under a volume's or bind mount's destination (the longest one wins, also after symlinks
 *   led there) is resolved inside the volume's data dir or the bind source instead, as
 *   podman's resolvePath does; /etc/hosts, /etc/hostname and /etc/resolv.conf of a running
 *   container are its bundle's files. Paths under a tmpfs mount cannot be reached (E_UNSUPPORTED).
 * - The source's last component is followed too: a container symlink is copied as what it
 *   points to under the target's name, a host symlink under the link's name. SRC ending in "/."
 *   copies the directory's contents; otherwise a directory is copied as itself.
 * - DEST an existing directory: the source goes into it (its contents with "/."). DEST missing:
 *   its parent must exist; a file is written under DEST's name, a directory is created there.
 *   DEST an existing file: replaced by a file source; a directory source is an error
 *   ("destination must be a directory when copying a directory"). DEST ending in "/" must be
 *   an existing directory. `-` as SRC: a (gzip/zstd) tar extracted into DEST, a directory;
 *   as DEST: a tar of the source (named by its basename, or its contents for "/.").
 * - Inside the copied tree directories merge; entries replace non-directories; a directory never
 *   replaces a non-directory or the other way round unless `overwrite`. Symlinks stay symlinks,
 *   hard links within the tree stay hard links, modes, times and xattrs are kept.
 * - Ownership: into a container with `archive` (the default) everything belongs to the
 *   container's user (its --user resolved in its /etc/passwd, root by default); without it the
 *   source's ids are kept. Onto the host everything belongs to the caller; a tar keeps ids.
 * - The rootfs of a container that is not running is mounted for the copy and unmounted after
 *   (only if this call mounted it and the container has not been started meanwhile).
 * Not guarded: a process of a running container that swaps a directory for a symlink while it
 * is being copied (podman's copier chroots; kiln resolves paths, then opens the last component
 * with O_NOFOLLOW).
 *
 * Errors (exit 125): E_CONTAINER_UNKNOWN `container "X" does not exist`; E_INVALID_ARGUMENT
 * for a missing source/destination (podman's `"P" could not be found on …`) and the rules
 * above; E_HOSTILE_TAR / E_BAD_ARCHIVE for stdin; E_IO.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { KilnError } from '../errors';
import type { EngineContext } from '../engine/context';
import { TreeWriter, type Meta, type Owner } from '../build/context/write';
import { readXattrs } from '../build/context/xattrs';
import { secureJoin } from '../runtime/securejoin';
import { resolveUser } from '../runtime/spec';
import { isMountPoint } from '../store/mounts';
import { splitDev } from '../util/rdev';
import { relativeTo } from '../util/rootpath';
import { lookup } from './lifecycle';
import { bundleDir, mergedDir, mountRootfs, unmountRootfs } from './rootfs';
import { volumePath } from './volume-mounts';
import type { ContainerRecord } from './types';
import { memberName, tarEntries, writeTar, type Entry } from './cp-tar';

export interface CopyOptions {
  /** `CONTAINER:PATH`, a host path, or `-` (a tar on `io.stdin`) */
  source: string;
  /** `CONTAINER:PATH`, a host path, or `-` (a tar on `io.stdout`) */
  dest: string;
  /** default true: files copied into a container belong to its user */
  archive?: boolean;
  overwrite?: boolean;
}

type Location = { kind: 'stdio' } | { kind: 'host'; path: string } | { kind: 'container'; ref: string; path: string };
interface Place { root: string; host: string }
interface MountPoint { dest: string; source: string; readonly: boolean; kind: 'volume' | 'bind' | 'tmpfs' | 'file' }


const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;

export function parseLocation(arg: string): Location {
  if (arg === '-') return { kind: 'stdio' };
  const i = arg.indexOf(':');
  if (arg.startsWith('/') || arg.startsWith('.') || i < 0) return { kind: 'host', path: arg };
  if (i === 0) throw new KilnError('E_INVALID_ARGUMENT', `${JSON.stringify(arg)}: the container name or ID before ":" is empty`);
  return { kind: 'container', ref: arg.slice(0, i), path: arg.slice(i + 1) };
}

function lstatQuiet(p: string, follow = false): fs.BigIntStats | undefined {
  try {
    return (follow ? fs.statSync : fs.lstatSync)(p, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    if (['ENOTDIR', 'ELOOP'].includes((e as NodeJS.ErrnoException).code ?? '')) return undefined;
    throw new KilnError('E_IO', `cp: ${p}: ${(e as Error).message}`, { cause: e });
  }
}

function notFound(p: string, where: string, why = 'no such file or directory'): KilnError {
  return new KilnError('E_INVALID_ARGUMENT', `${JSON.stringify(p)} could not be found on ${where}: ${why}`);
}

/** A container's filesystem as the container sees it: rootfs plus its volumes and bind mounts. */
class ContainerView {
  private constructor(readonly c: ContainerRecord, readonly rootfs: string, private readonly mounts: MountPoint[], private readonly mountedHere: boolean) {}

  static async open(ctx: EngineContext, ref: string): Promise<ContainerView> {
    if (!ctx.store.containers.find(ref)) throw new KilnError('E_CONTAINER_UNKNOWN', `container "${ref}" does not exist`);
    const c = await lookup(ctx, ref);
    const merged = mergedDir(ctx.store, c.id);
    const mountedHere = !isMountPoint(merged);
    if (mountedHere) await mountRootfs(ctx.store, c.id, c.layerID);
    const norm = (d: string) => path.posix.normalize(`/${d}`).replace(/(.)\/+$/, '$1');
    const mounts: MountPoint[] = c.config.volumes.map((v) => ({ dest: norm(v.destination), source: volumePath(ctx, v.volume), readonly: v.readonly, kind: 'volume' }));
    for (const m of c.config.mounts) {
      if (m.type === 'bind') mounts.push({ dest: norm(m.destination), source: m.source, readonly: m.readonly ?? false, kind: lstatQuiet(m.source, true)?.isDirectory() === false ? 'file' : 'bind' });
      else mounts.push({ dest: norm(m.destination), source: '', readonly: false, kind: 'tmpfs' });
    }
    if (c.state.status === 'running') {
      for (const f of ['hosts', 'hostname', 'resolv.conf']) {
        const src = path.join(bundleDir(ctx.store, c.id), f);
        if (fs.existsSync(src)) mounts.push({ dest: `/etc/${f}`, source: src, readonly: false, kind: 'file' });
      }
    }
    return new ContainerView(c, merged, mounts, mountedHere);
  }

  /** Unmounts the rootfs if open() mounted it and the container has not started since. */
  async release(ctx: EngineContext): Promise<void> {
    if (!this.mountedHere) return;
    const now = ctx.store.containers.get(this.c.id);
    if (now && (await lookup(ctx, now.id)).state.status === 'running') return;
    unmountRootfs(ctx.store, this.c.id);
  }

  /** The absolute, normalised container path of `p` (relative: against the working dir). */
  abs(p: string): string {
    const full = p.startsWith('/') ? p : `${this.c.config.workdir || '/'}/${p}`;
    return path.posix.normalize(`/${full}`).replace(/(.)\/+$/, '$1');
  }

  private mountFor(p: string): MountPoint | undefined {
    let best: MountPoint | undefined;
    for (const m of this.mounts) {
      if ((p === m.dest || p.startsWith(m.dest === '/' ? '/' : `${m.dest}/`)) && (!best || m.dest.length > best.dest.length)) best = m;
    }
    return best;
  }

  /**
   * The mount whose destination is exactly `p`: for writing, checked (E_UNSUPPORTED tmpfs, a
   * read-only mount...); for reading, tmpfs mounts are not reachable and count as none.
   */
  mountAt(p: string, write: boolean): MountPoint | undefined {
    const m = this.mounts.find((x) => x.dest === p);
    if (m && write) this.check(m, p, true);
    return m?.kind === 'tmpfs' ? undefined : m;
  }

  private check(m: MountPoint | undefined, p: string, write: boolean): void {
    const name = this.c.name;
    if (m?.kind === 'tmpfs') throw new KilnError('E_UNSUPPORTED', `"${p}" is on the tmpfs mounted at ${m.dest} in container ${name}, which kiln cp cannot reach`);
    if (!write) return;
    if (m?.readonly) throw new KilnError('E_INVALID_ARGUMENT', `"${p}" is on the read-only mount ${m.dest} of container ${name}`);
    if (m?.kind === 'file') throw new KilnError('E_UNSUPPORTED', `"${p}" is a file bind-mounted into container ${name}; kiln cp does not replace it`, { hint: `write to its source ${m.source} instead` });
    if (!m && this.c.config.readOnly && this.c.state.status === 'running') throw new KilnError('E_INVALID_ARGUMENT', `container ${name} runs with a read-only root filesystem`);
  }

  /** `p` (absolute container path) on the host, symlinks followed inside the container. */
  resolve(p: string, write = false): Place & { ctr: string } {
    for (let hops = 0; ; hops++) {
      const m = this.mountFor(p);
      this.check(m, p, write);
      if (m) {
        const rest = p.slice(m.dest.length);
        if (m.kind === 'file') return { root: path.dirname(m.source), host: m.source + rest, ctr: p };
        return { root: m.source, host: secureJoin(m.source, rest), ctr: p };
      }
      const host = secureJoin(this.rootfs, p);
      const ctr = `/${relativeTo(this.rootfs, host)}`.replace(/(.)\/$/, '$1');
      // a symlink in the rootfs that leads under a mount point is followed into the mount
      if (ctr === p || hops >= 8 || !this.mountFor(ctr)) return { root: this.rootfs, host, ctr };
      p = ctr;
    }
  }

  /** The container's user as uid/gid (the owner of what `cp --archive` writes into it). */
  owner(): Owner {
    const u = resolveUser(this.rootfs, this.c.config.user);
    return { uid: u.uid, gid: u.gid };
  }
}

const secs = (ns: bigint) => Number(ns) / 1e9;

/** Reads up to `size` bytes (all when undefined) of the regular file `host`, never through a symlink. */
async function readFile(host: string, size: number | undefined, put: (b: Buffer) => Promise<void>): Promise<void> {
  const fh = await fs.promises.open(host, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  try {
    if (!(await fh.stat()).isFile()) throw new KilnError('E_IO', `cp: ${host} is no longer a regular file`);
    for (let left = size ?? Infinity; left > 0; ) {
      const buf = Buffer.allocUnsafe(Math.min(left, 1 << 20));
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) {
        if (size !== undefined) throw new KilnError('E_IO', `cp: ${host} shrank while it was copied`);
        break;
      }
      left -= bytesRead;
      await put(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
}

/**
 * The entries of the host tree at `top` (a file or directory, lstat `st`), depth first, names
 * sorted: the top itself as `topName` (left out with `contents`), the rest below it. `mounted`
 * gives the host path of a mount point inside the tree (container sources). Listed in full
 * before anything is written, so a tree copied into itself cannot grow while it is walked.
 */
function treeEntries(top: string, st: fs.BigIntStats, topName: string, contents: boolean, mounted?: (rel: string) => string | undefined): Entry[] {
  const out: Entry[] = [];
  const inodes = new Map<string, string>();
  const add = (name: string, host: string, s: fs.BigIntStats): void => {
    const meta: Meta = { uid: Number(s.uid), gid: Number(s.gid), mode: Number(s.mode) & 0o7777, atime: secs(s.atimeNs), mtime: secs(s.mtimeNs), xattrs: readXattrs(host) };
    const e: Entry = { name, kind: 'file', meta, size: 0 };
    if (s.isDirectory()) e.kind = 'dir';
    else if (s.isSymbolicLink()) Object.assign(e, { kind: 'symlink', linkname: fs.readlinkSync(host) });
    else if (s.isCharacterDevice() || s.isBlockDevice()) Object.assign(e, { kind: s.isCharacterDevice() ? 'char' : 'block', ...splitDev(s.rdev) });
    else if (s.isFIFO()) e.kind = 'fifo';
    else if (s.isFile()) {
      const key = `${s.dev}:${s.ino}`;
      const first = s.nlink > 1n ? inodes.get(key) : undefined;
      if (first !== undefined) Object.assign(e, { kind: 'link', linkname: first });
      else {
        if (s.nlink > 1n) inodes.set(key, name);
        e.size = Number(s.size);
        e.read = (put) => readFile(host, e.size, put);
      }
    } else return; // sockets cannot be copied
    out.push(e);
  };
  const walk = (dir: string, rel: string): void => {
    for (const n of fs.readdirSync(dir).sort()) {
      const r = rel === '' ? n : `${rel}/${n}`;
      const host = mounted?.(r) ?? path.join(dir, n);
      const s = lstatQuiet(host);
      if (!s) continue; // gone meanwhile
      add(contents ? r : `${topName}/${r}`, host, s);
      if (s.isDirectory()) walk(host, r);
    }
  };
  if (!contents || !st.isDirectory()) add(topName, top, st);
  if (st.isDirectory()) walk(top, '');
  return out;
}

interface Target {
  /** where entries named "x" go: the directory they are written into */
  base: Place;
  /** where the directory of entry name `rel` is, for a parent no entry created (tar input) */
  resolve: (rel: string) => Place;
  /** a mount point inside the tree: written into the mount's own root */
  mountAt?: (rel: string) => Place | undefined;
  /** every entry's owner, else the entry's own */
  owner?: Owner;
  overwrite: boolean;
}

/** Writes entries below `t.base` (TreeWriter: nothing is followed out of its root). */
async function writeTree(t: Target, entries: Iterable<Entry> | AsyncIterable<Entry>): Promise<void> {
  const writers = new Map<string, TreeWriter>();
  const writer = (root: string) => writers.get(root) ?? writers.set(root, new TreeWriter(root, 'cp')).get(root)!;
  const dirs = new Map<string, { w: TreeWriter; host: string }>([['', { w: writer(t.base.root), host: t.base.host }]]);
  const files = new Map<string, string>();
  const parentOf = (rel: string) => {
    const known = dirs.get(rel);
    if (known) return known;
    const p = t.resolve(rel);
    const w = writer(p.root);
    const d = { w, host: w.mkdirAll(p.host, t.owner ?? { uid: 0, gid: 0 }) };
    dirs.set(rel, d);
    return d;
  };
  for await (const e of entries) {
    const slash = e.name.lastIndexOf('/');
    const mount = t.mountAt?.(e.name);
    const parent = parentOf(slash < 0 ? '' : e.name.slice(0, slash));
    const w = mount ? writer(mount.root) : parent.w;
    const host = mount ? mount.host : path.join(parent.host, e.name.slice(slash + 1));
    const meta = t.owner ? { ...e.meta, ...t.owner } : e.meta;
    const st = lstatQuiet(host);
    const where = `/${relativeTo(w.rootfs, host)}`;
    if (st && !st.isDirectory() && e.kind === 'dir' && !(st.isSymbolicLink() && lstatQuiet(secureJoin(w.rootfs, where))?.isDirectory())) {
      if (!t.overwrite) throw new KilnError('E_INVALID_ARGUMENT', `cp: cannot replace the non-directory ${where} with a directory`, { hint: 'use --overwrite to replace it' });
      fs.unlinkSync(host);
    }
    if (st?.isDirectory() && e.kind !== 'dir') {
      if (!t.overwrite) throw new KilnError('E_INVALID_ARGUMENT', `cp: cannot replace the directory ${where} with a non-directory`, { hint: 'use --overwrite to replace it' });
      fs.rmSync(host, { recursive: true });
    }
    switch (e.kind) {
      case 'dir':
        dirs.set(e.name, { w, host: w.dir(host, meta, 'all') });
        break;
      case 'file':
        await w.fileFrom(host, meta, (fh) => e.read ? e.read(async (b) => {
          for (let off = 0; off < b.length; ) off += (await fh.write(b, off)).bytesWritten;
        }) : Promise.resolve());
        files.set(e.name, host);
        break;
      case 'symlink':
        w.symlink(host, e.linkname ?? '', meta);
        break;
      case 'link': {
        const first = files.get(memberName(e.linkname ?? '') ?? '');
        if (first === undefined) throw new KilnError('E_HOSTILE_TAR', `cp: hard link ${JSON.stringify(e.name)} points at ${JSON.stringify(e.linkname)}, which is not in the copied tree before it`);
        w.hardlink(host, first);
        files.set(e.name, host);
        break;
      }
      default:
        w.node(host, e.kind === 'char' ? 'c' : e.kind === 'block' ? 'b' : 'p', e.major ?? 0, e.minor ?? 0, meta);
    }
  }
  for (const w of writers.values()) w.finish();
}

/** Copies as `kiln cp` does (see the file comment). */
export async function copyFiles(ctx: EngineContext, o: CopyOptions, io: { stdin: Readable; stdout: Writable }): Promise<void> {
  const src = parseLocation(o.source);
  const dst = parseLocation(o.dest);
  if (src.kind === 'stdio' && dst.kind === 'stdio') throw new KilnError('E_INVALID_ARGUMENT', 'cp: SRC and DEST cannot both be "-"');
  if (src.kind !== 'container' && dst.kind !== 'container') throw new KilnError('E_INVALID_ARGUMENT', `cp: copying between ${o.source} and ${o.dest} involves no container`, { hint: 'name a container path as CONTAINER:PATH' });
  const views = new Map<string, ContainerView>();
  const view = async (ref: string) => {
    const v = views.get(ref) ?? (await ContainerView.open(ctx, ref));
    views.set(ref, v);
    views.set(v.c.id, v);
    return v;
  };
  try {
    // the source: a tree on the host (found through the container for container paths)
    let tree: { host: string; st: fs.BigIntStats; name: string; contents: boolean; mounted?: (rel: string) => string | undefined } | undefined;
    if (src.kind === 'container') {
      const v = await view(src.ref);
      const r = v.resolve(v.abs(src.path));
      const st = lstatQuiet(r.host);
      if (!st) throw notFound(src.path, `container ${src.ref}`);
      if (src.path.endsWith('/') && !st.isDirectory()) throw notFound(src.path, `container ${src.ref}`, 'not a directory');
      const name = path.posix.basename(r.ctr);
      tree = { host: r.host, st, name, contents: /(^|\/)\.$/.test(src.path) || name === '', mounted: (rel) => { const m = v.mountAt(path.posix.join(r.ctr, rel), false); return m?.source; } };
    } else if (src.kind === 'host') {
      const host = path.resolve(src.path);
      const st = lstatQuiet(host)?.isSymbolicLink() ? lstatQuiet(host, true) : lstatQuiet(host);
      if (!st) throw notFound(src.path, 'the host');
      if (src.path.endsWith('/') && !st.isDirectory()) throw notFound(src.path, 'the host', 'not a directory');
      // a symlink is read as what it points to, under its own name
      tree = { host: lstatQuiet(host)?.isSymbolicLink() ? fs.realpathSync(host) : host, st, name: path.basename(host), contents: /(^|\/)\.$/.test(src.path) };
    }
    if (dst.kind === 'stdio') {
      await writeTar(io.stdout, treeEntries(tree!.host, tree!.st, tree!.name, tree!.contents, tree!.mounted));
      return;
    }
    // the destination: the directory entries go into, and the top entry's name there
    const srcIsDir = tree === undefined || tree.st.isDirectory();
    const dirForm = dst.path.endsWith('/') || /(^|\/)\.$/.test(dst.path);
    let target: Target;
    let topName: string | undefined;
    if (dst.kind === 'container') {
      const v = await view(dst.ref);
      const where = `container ${dst.ref}`;
      const r = v.resolve(v.abs(dst.path), true);
      const st = lstatQuiet(r.host);
      let base = r;
      if (!st?.isDirectory()) {
        if (dirForm) throw notFound(dst.path, where, st ? 'not a directory' : undefined);
        if (tree === undefined) throw new KilnError('E_INVALID_ARGUMENT', 'destination must be a directory when copying from stdin');
        if (st && srcIsDir) throw new KilnError('E_INVALID_ARGUMENT', 'destination must be a directory when copying a directory');
        base = v.resolve(path.posix.dirname(r.ctr), true);
        if (!lstatQuiet(base.host)?.isDirectory()) throw notFound(dst.path, where);
        topName = path.posix.basename(r.ctr);
      }
      target = {
        base, overwrite: o.overwrite ?? false,
        resolve: (rel) => v.resolve(path.posix.join(base.ctr, rel), true),
        mountAt: (rel) => { const m = v.mountAt(path.posix.join(base.ctr, rel), true); return m && { root: m.source, host: m.source }; },
        ...(o.archive === false ? {} : { owner: v.owner() }),
      };
    } else {
      const host = path.resolve(dst.path);
      const st = lstatQuiet(host, true);
      let base = host;
      if (!st?.isDirectory()) {
        if (dirForm) throw notFound(dst.path, 'the host', st ? 'not a directory' : undefined);
        if (st && srcIsDir) throw new KilnError('E_INVALID_ARGUMENT', 'destination must be a directory when copying a directory');
        base = path.dirname(host);
        if (!lstatQuiet(base, true)?.isDirectory()) throw notFound(dst.path, 'the host');
        topName = path.basename(host);
      }
      const owner = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
      target = { base: { root: '/', host: base }, resolve: (rel) => ({ root: '/', host: path.join(base, rel) }), owner, overwrite: o.overwrite ?? false };
    }
    if (tree === undefined) {
      await writeTree(target, tarEntries(io.stdin));
      return;
    }
    // a missing destination takes the source's place under its own name (a directory's contents too)
    const entries = treeEntries(tree.host, tree.st, topName ?? tree.name, topName === undefined && tree.contents, tree.mounted);
    await writeTree(target, entries);
  } catch (e) {
    if (e instanceof KilnError && e.code === 'E_BUILD') throw new KilnError('E_INVALID_ARGUMENT', e.message, { ...(e.hint ? { hint: e.hint } : {}) });
    throw e;
  } finally {
    for (const v of new Set(views.values())) await v.release(ctx);
  }
}
