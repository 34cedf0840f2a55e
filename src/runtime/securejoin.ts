/**
 * Path resolution inside an untrusted root (a container's rootfs), like Go's
 * filepath-securejoin: symlinks are followed as if `root` were `/`, so an absolute link or a
 * run of `..` can never lead out of `root`. Used to read the image's /etc/passwd and
 * /etc/group, which an image may have replaced with a symlink to the host's files.
 */
import * as fs from 'node:fs';
import { KilnError } from '../errors';
import { resolveInRoot } from '../util/rootpath';

/**
 * The host path of `unsafePath` taken relative to `root` with every symlink resolved inside
 * `root` (the last component too). The result always lies under `root` (or is `root`).
 * Components that do not exist are kept as they are (the result may not exist). One
 * implementation serves the whole engine: src/util/rootpath.ts.
 */
export function secureJoin(root: string, unsafePath: string): string {
  return resolveInRoot(root, unsafePath, { followLast: true });
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
