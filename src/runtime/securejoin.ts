/**
 * Path resolution inside an untrusted root (a container's rootfs), like Go's
 * filepath-securejoin: symlinks are followed as if `root` were `/`, so an absolute link or a
 * run of `..` can never lead out of `root`. Used to read the image's /etc/passwd and
 * /etc/group, which an image may have replaced with a symlink to the host's files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';

/** Linux's own limit on symlinks followed while resolving one path (MAXSYMLINKS is 40). */
const MAX_SYMLINKS = 40;

/**
 * The host path of `unsafePath` taken relative to `root` with every symlink resolved inside
 * `root`. The result always lies under `root` (or is `root`). Components that do not exist are
 * kept as they are (the result may not exist). Throws E_IO with ELOOP-like wording after 40
 * symlinks, and E_IO for other lstat/readlink errors than ENOENT/ENOTDIR.
 */
export function secureJoin(root: string, unsafePath: string): string {
  const base = path.resolve(root);
  const resolved: string[] = []; // components below base, each free of symlinks
  let pending = splitPath(unsafePath);
  let links = 0;
  while (pending.length > 0) {
    const comp = pending.shift() as string;
    if (comp === '.' || comp === '') continue;
    if (comp === '..') {
      resolved.pop(); // at the root, '..' stays at the root
      continue;
    }
    const candidate = path.join(base, ...resolved, comp);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(candidate);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        resolved.push(comp);
        continue;
      }
      throw new KilnError('E_IO', `resolving ${unsafePath} in ${root}: ${(e as Error).message}`, { cause: e });
    }
    if (!st.isSymbolicLink()) {
      resolved.push(comp);
      continue;
    }
    if (++links > MAX_SYMLINKS) {
      throw new KilnError('E_IO', `resolving ${unsafePath} in ${root}: too many levels of symbolic links`);
    }
    const target = fs.readlinkSync(candidate);
    if (path.isAbsolute(target)) resolved.length = 0;
    pending = [...splitPath(target), ...pending];
  }
  return path.join(base, ...resolved);
}

function splitPath(p: string): string[] {
  return p.split('/').filter((c) => c !== '');
}

/**
 * Reads the file at `unsafePath` inside `root` (resolved with secureJoin) without ever
 * following a symlink out of `root`: the last component is opened with O_NOFOLLOW, so a path
 * swapped for a symlink after resolution fails instead of being followed. Returns undefined if
 * the file does not exist; throws E_IO if it is not a regular file or cannot be read.
 */
export function readFileInRoot(root: string, unsafePath: string, maxBytes = 16 << 20): Buffer | undefined {
  const p = secureJoin(root, unsafePath);
  let fd: number;
  try {
    fd = fs.openSync(p, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw new KilnError('E_IO', `reading ${unsafePath} in ${root}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new KilnError('E_IO', `reading ${unsafePath} in ${root}: not a regular file`);
    if (st.size > maxBytes) throw new KilnError('E_IO', `reading ${unsafePath} in ${root}: larger than ${maxBytes} bytes`);
    return fs.readFileSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}
