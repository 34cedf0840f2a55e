/**
 * Writing entries into a container rootfs for COPY/ADD: `TreeWriter`.
 *
 * Contract:
 * - Every path it is handed is a host path already resolved inside `rootfs` (rootpath.ts);
 *   the writer itself never follows a symlink at the last component, except where a directory
 *   is wanted and the image has a symlink to an in-root directory there (Debian's /bin ->
 *   usr/bin): then the directory it points to is used, as buildah does. A symlink to anything
 *   else, or a file, where a directory is wanted fails with E_BUILD ("cannot copy to
 *   non-directory", BuildKit's wording).
 * - A non-directory replaces whatever non-directory is at its name; it never replaces a
 *   directory (E_BUILD). Directories merge.
 * - Metadata order per entry: lchown, chmod (after chown, which would clear setuid/setgid),
 *   xattrs, times. Directory times are applied by finish(), deepest first, after all children
 *   are written.
 * - Hard links: file(…, inode) remembers the first copy of each source inode; later ones call
 *   linkTo().
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../../errors';
import { native } from '../../native';
import { relativeTo, resolveInRoot } from '../../util/rootpath';
import { writeXattrs, type Xattrs } from './xattrs';

export interface Owner {
  uid: number;
  gid: number;
}

export interface Meta extends Owner {
  /** permission bits incl. setuid/setgid/sticky */
  mode: number;
  /** seconds since the epoch (fractions allowed) */
  atime: number;
  mtime: number;
  xattrs?: Xattrs;
}

const { S_IFCHR, S_IFBLK, S_IFIFO } = fs.constants;

function errno(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

export class TreeWriter {
  readonly rootfs: string;
  private readonly what: string;
  private readonly dirTimes: { p: string; atime: number; mtime: number }[] = [];
  private readonly inodes = new Map<string, string>();

  constructor(rootfs: string, what: string) {
    this.rootfs = path.resolve(rootfs);
    this.what = what;
  }

  private fail(p: string, msg: string): KilnError {
    return new KilnError('E_BUILD', `${this.what}: ${msg}: /${relativeTo(this.rootfs, p)}`);
  }

  /**
   * Makes the resolved host path `dir` a directory, creating missing components with mode
   * 0755 owned by `owner` (times: now). Returns `dir`.
   */
  mkdirAll(dir: string, owner: Owner): string {
    const rel = relativeTo(this.rootfs, dir);
    if (rel === '..' || rel.startsWith('../') || path.isAbsolute(rel)) {
      throw new KilnError('E_INTERNAL', `${this.what}: ${dir} is not inside the rootfs ${this.rootfs}`);
    }
    let cur = this.rootfs;
    for (const c of rel === '' ? [] : rel.split('/')) {
      cur = path.join(cur, c);
      const st = fs.lstatSync(cur, { throwIfNoEntry: false });
      if (st?.isDirectory()) continue;
      if (st) {
        // resolveInRoot left a symlink only if it was the (unfollowed) last component.
        const real = st.isSymbolicLink() ? this.followDir(cur) : null;
        if (real === null) throw this.fail(cur, 'cannot copy to non-directory');
        cur = real;
        continue;
      }
      fs.mkdirSync(cur, 0o755);
      fs.lchownSync(cur, owner.uid, owner.gid);
      fs.chmodSync(cur, 0o755);
    }
    return cur;
  }

  /** The in-root directory a symlink at `p` leads to, or null when it leads to no directory. */
  private followDir(p: string): string | null {
    const real = resolveInRoot(this.rootfs, relativeTo(this.rootfs, p), { followLast: true });
    return fs.lstatSync(real, { throwIfNoEntry: false })?.isDirectory() ? real : null;
  }

  /**
   * A directory at `p`. Missing: created with `meta`. Existing: merged into; `existing` says
   * what happens to its metadata: 'keep', 'mode' (BuildKit: a copied directory's mode) or
   * 'all' (tar extraction). Returns the host path children go to.
   */
  dir(p: string, meta: Meta, existing: 'keep' | 'mode' | 'all'): string {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (st && !st.isDirectory()) {
      const real = st.isSymbolicLink() ? this.followDir(p) : null;
      if (real === null) throw this.fail(p, 'cannot copy to non-directory');
      return real;
    }
    if (!st) {
      fs.mkdirSync(p, 0o700);
    } else if (existing === 'keep') {
      return p;
    } else if (existing === 'mode') {
      fs.chmodSync(p, meta.mode);
      return p;
    }
    fs.lchownSync(p, meta.uid, meta.gid);
    fs.chmodSync(p, meta.mode);
    writeXattrs(p, meta.xattrs ?? []);
    this.dirTimes.push({ p, atime: meta.atime, mtime: meta.mtime });
    return p;
  }

  /** Removes a non-directory at `p` so that a new entry can take its name. */
  clear(p: string): void {
    const st = fs.lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isDirectory()) throw this.fail(p, 'cannot replace a directory with a non-directory');
    fs.unlinkSync(p);
  }

  private finishEntry(p: string, meta: Meta, symlink: boolean): void {
    fs.lchownSync(p, meta.uid, meta.gid);
    if (!symlink) fs.chmodSync(p, meta.mode);
    writeXattrs(p, meta.xattrs ?? []);
    fs.lutimesSync(p, meta.atime, meta.mtime);
  }

  /**
   * A regular file at `p` with the bytes of host file `src` (reflinked where the filesystem
   * can). `inode` (dev:ino of a multiply-linked source) makes later copies hard links to it.
   */
  async file(p: string, src: string, meta: Meta, inode?: string): Promise<void> {
    this.clear(p);
    await fs.promises.copyFile(src, p, fs.constants.COPYFILE_FICLONE | fs.constants.COPYFILE_EXCL);
    this.finishEntry(p, meta, false);
    if (inode !== undefined) this.inodes.set(inode, p);
  }

  /**
   * file() for small files: read + write (several times faster than copyFile's clone attempt
   * and copy_file_range at a few KiB), with owner, mode and times set through the open
   * descriptor. Asynchronous, so many run at once on the thread pool: creating files is
   * system time, which two cores share better than one.
   */
  async smallFile(p: string, src: string, meta: Meta, inode?: string): Promise<void> {
    this.clear(p);
    const data = await fs.promises.readFile(src);
    const fh = await fs.promises.open(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      if (data.length > 0) await fh.write(data, 0, data.length, 0);
      await fh.chown(meta.uid, meta.gid);
      await fh.chmod(meta.mode);
      await fh.utimes(meta.atime, meta.mtime);
    } finally {
      await fh.close();
    }
    if (meta.xattrs?.length) writeXattrs(p, meta.xattrs);
    if (inode !== undefined) this.inodes.set(inode, p);
  }

  /** A regular file at `p` whose bytes come from `write(fd)`; used for tar members and heredocs. */
  async fileFrom(p: string, meta: Meta, write: (fh: fs.promises.FileHandle) => Promise<void>): Promise<void> {
    this.clear(p);
    const fh = await fs.promises.open(p, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
    try {
      await write(fh);
    } finally {
      await fh.close();
    }
    this.finishEntry(p, meta, false);
  }

  /** The path a hard link to `inode` should point at, if that inode was copied already. */
  linkedPath(inode: string): string | undefined {
    return this.inodes.get(inode);
  }

  /** A hard link at `p` to the existing host file `existing` (never a directory). */
  hardlink(p: string, existing: string): void {
    const st = fs.lstatSync(existing, { throwIfNoEntry: false });
    if (!st || st.isDirectory()) throw this.fail(existing, 'hard link target is missing or a directory');
    this.clear(p);
    fs.linkSync(existing, p);
  }

  symlink(p: string, target: string, meta: Meta): void {
    this.clear(p);
    fs.symlinkSync(target, p);
    this.finishEntry(p, meta, true);
  }

  /** A device node or FIFO (`kind`: 'c', 'b' or 'p'); `rdev` as stat reports it. */
  node(p: string, kind: 'c' | 'b' | 'p', major: number, minor: number, meta: Meta): void {
    this.clear(p);
    const type = kind === 'c' ? S_IFCHR : kind === 'b' ? S_IFBLK : S_IFIFO;
    try {
      native().mknod(p, type | (meta.mode & 0o7777), major, minor);
    } catch (e) {
      if (errno(e) === 'EPERM') throw this.fail(p, 'creating a device node needs root');
      throw e;
    }
    this.finishEntry(p, meta, false);
  }

  /** Applies the deferred directory times, deepest first. */
  finish(): void {
    for (let i = this.dirTimes.length - 1; i >= 0; i--) {
      const { p, atime, mtime } = this.dirTimes[i];
      fs.utimesSync(p, atime, mtime);
    }
    this.dirTimes.length = 0;
  }
}

