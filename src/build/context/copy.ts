/**
 * The COPY/ADD file operation: `copyInto(opts)` writes selected sources into a container
 * rootfs the way Docker (BuildKit's copier) does:
 *
 * - dest is a container path, relative ones against `workdir`. It is resolved inside the
 *   rootfs (rootpath.ts: symlinks followed, `..` clamped), so no symlink in the image can
 *   redirect a write outside `rootfs`.
 * - dest ending in "/" (or being "." / ending in "/." or "/..") is a directory. Several sources
 *   (after glob expansion) need such a dest, else E_BUILD "When using COPY with more than one
 *   source file, the destination must be a directory and end with a /".
 * - A directory source copies its contents into dest (created 0755 if missing), not itself;
 *   with `parents` the source path after its `/./` pivot (all of it without one) is recreated
 *   below dest, parent directories taking the source directories' modes.
 * - A non-directory source goes to dest/<name> when dest is directory-form or an existing
 *   directory, else it is written as dest itself (replacing a non-directory there).
 * - Missing parents are created 0755, owned by --chown's user or root. Existing directories
 *   merge (a copied subdirectory's mode is applied to an existing one, as BuildKit does);
 *   symlinks are copied as symlinks; hard links within the copied set stay hard links; devices
 *   and FIFOs are recreated; permission bits incl. setuid/setgid/sticky, atime/mtime and
 *   xattrs are kept; `chmod` replaces the mode of every copied file and directory.
 * - Ownership: `chown` if given; else the source's uid/gid with `preserveOwnership` (--from),
 *   else 0:0 (build context).
 * - `add`: a local source file that is a tar archive (plain, gzip, bzip2 or xz, by content) is
 *   extracted into dest as a directory, with the archive's own ownership and modes (untar.ts).
 * File data is copied with copyFile + COPYFILE_FICLONE (a reflink where the filesystem can),
 * up to COPY_CONCURRENCY files at a time; files up to 64 KiB by a synchronous read + write,
 * which is several times faster for them (the event loop gets a turn every 256 entries).
 */
import * as fs from 'node:fs';
import { forEachBounded } from '../../util/bounded';
import * as path from 'node:path';
import { KilnError } from '../../errors';
import type { Entry, Selected } from './select';
import { detectArchive, extractArchive } from './untar';
import { relativeTo, resolveInRoot } from '../../util/rootpath';
import { TreeWriter, type Meta, type Owner } from './write';
import { splitDev } from '../../util/rdev';
import { containerPath, fileTarget, isDirForm } from './place';
import { readXattrs } from './xattrs';

export { fetchUrl, type Fetched } from './fetch';
export { writeHeredocFile } from './heredoc';
export { containerPath, isDirForm } from './place';

export interface CopyOptions {
  /** the container's root dir: a mounted rw overlay or a plain dir */
  rootfs: string;
  /** container WORKDIR, for a relative dest */
  workdir: string;
  /** destination as written, variables expanded */
  dest: string;
  /** the directory the sources were selected in */
  srcRoot: string;
  selected: Selected[];
  chown?: Owner;
  /** --chmod, already parsed */
  chmod?: number;
  /** true for --from (ownership kept); false for the build context (0:0) */
  preserveOwnership: boolean;
  parents: boolean;
  /** ADD: extract local tar archives */
  add: boolean;
  /** names the instruction in errors; default "COPY" / "ADD" */
  what?: string;
}

const COPY_CONCURRENCY = 16;
/** Files up to this size are copied with read + write (TreeWriter.smallFile). */
const SMALL_FILE = 64n << 10n;
/** Entries written between two yields to the event loop. */
const YIELD_EVERY = 256;

function secs(ns: bigint): number {
  return Number(ns) / 1e9;
}


export async function copyInto(opts: CopyOptions): Promise<void> {
  const what = opts.what ?? (opts.add ? 'ADD' : 'COPY');
  const verb = opts.add ? 'ADD' : 'COPY';
  const dirForm = isDirForm(opts.dest);
  if (opts.selected.length > 1 && !dirForm) {
    throw new KilnError('E_BUILD', `${what}: When using ${verb} with more than one source file, the destination must be a directory and end with a /`, {
      hint: `write the destination as "${opts.dest}/"`,
    });
  }
  const w = new TreeWriter(opts.rootfs, what);
  const created: Owner = opts.chown ?? { uid: 0, gid: 0 };
  const hostDest = resolveInRoot(opts.rootfs, containerPath(opts.workdir, opts.dest), { followLast: true });
  const seen = new Set<string>();

  const meta = (st: fs.BigIntStats, src: string): Meta => ({
    ...(opts.chown ?? (opts.preserveOwnership ? { uid: Number(st.uid), gid: Number(st.gid) } : { uid: 0, gid: 0 })),
    mode: opts.chmod !== undefined && !st.isSymbolicLink() ? opts.chmod : Number(st.mode) & 0o7777,
    atime: secs(st.atimeNs),
    mtime: secs(st.mtimeNs),
    xattrs: readXattrs(src),
  });

  /**
   * Writes one non-directory. Regular files are queued in
   * `files`, hard links to an already copied inode in `links` (run after `files`).
   */
  const placeOne = (target: string, src: string, st: fs.BigIntStats, link: string | undefined, files: (() => Promise<void>)[], links: (() => void)[]): void => {
    const m = meta(st, src);
    if (st.isFile()) {
      const inode = st.nlink > 1n ? `${st.dev}:${st.ino}` : undefined;
      if (inode !== undefined && seen.has(inode)) {
        links.push(() => w.hardlink(target, w.linkedPath(inode) as string));
        return;
      }
      if (inode !== undefined) seen.add(inode);
      files.push(st.size <= SMALL_FILE ? () => w.smallFile(target, src, m, inode) : () => w.file(target, src, m, inode));
    } else if (st.isSymbolicLink()) {
      w.symlink(target, link ?? fs.readlinkSync(src), m);
    } else if (st.isCharacterDevice() || st.isBlockDevice() || st.isFIFO()) {
      const { major, minor } = splitDev(st.rdev);
      w.node(target, st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : 'p', major, minor, m);
    }
  };

  const flush = async (files: (() => Promise<void>)[], links: (() => void)[]): Promise<void> => {
    await forEachBounded(files, COPY_CONCURRENCY, (task) => task());
    for (const l of links) l();
  };

  /** Copies a directory's entries into the host directory `base`. */
  const copyEntries = async (base: string, entries: Entry[]): Promise<void> => {
    const dirs = new Map<string, string>([['', base]]);
    const files: (() => Promise<void>)[] = [];
    const links: (() => void)[] = [];
    for (const [i, e] of entries.entries()) {
      if (i % YIELD_EVERY === YIELD_EVERY - 1) await new Promise<void>((resolve) => setImmediate(resolve));
      const slash = e.rel.lastIndexOf('/');
      const parent = dirs.get(slash < 0 ? '' : e.rel.slice(0, slash)) as string;
      const target = path.join(parent, e.rel.slice(slash + 1));
      if (e.st.isDirectory()) dirs.set(e.rel, w.dir(target, meta(e.st, e.path), 'mode'));
      else placeOne(target, e.path, e.st, e.link, files, links);
    }
    await flush(files, links);
  };

  try {
    for (const s of opts.selected) {
      const files: (() => Promise<void>)[] = [];
      const links: (() => void)[] = [];
      if (opts.add && s.st.isFile()) {
        const kind = await detectArchive(s.realPath);
        if (kind !== null) {
          await extractArchive(s.realPath, kind, w, w.mkdirAll(hostDest, created), `${what}: ${s.relPath}`);
          continue;
        }
      }
      if (opts.parents && s.parentsRel !== '') {
        const parts = s.parentsRel.split('/');
        const prefix = s.relPath.slice(0, s.relPath.length - s.parentsRel.length);
        let cur = w.mkdirAll(hostDest, created);
        for (let i = 0; i < parts.length - 1; i++) {
          const srcDir = resolveInRoot(opts.srcRoot, `${prefix}${parts.slice(0, i + 1).join('/')}`, { followLast: true });
          const st = fs.lstatSync(srcDir, { bigint: true });
          cur = w.dir(path.join(cur, parts[i]), meta(st, srcDir), 'keep');
        }
        const target = path.join(cur, parts[parts.length - 1]);
        if (s.isDir) await copyEntries(w.dir(target, meta(s.st, s.realPath), 'mode'), s.entries);
        else placeOne(target, s.realPath, s.st, undefined, files, links);
      } else if (s.isDir) {
        await copyEntries(w.mkdirAll(hostDest, created), s.entries);
      } else {
        placeOne(fileTarget(w, hostDest, dirForm, path.posix.basename(s.relPath), created), s.realPath, s.st, undefined, files, links);
      }
      await flush(files, links);
    }
    w.finish();
  } catch (e) {
    if (e instanceof KilnError) throw e;
    const where = `/${relativeTo(path.resolve(opts.rootfs), hostDest)}`;
    throw new KilnError('E_IO', `${what}: copying to ${where}: ${(e as Error).message}`, { cause: e });
  }
}
