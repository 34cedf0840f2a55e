/**
 * Resolving a container path inside a root directory (an image rootfs or a build source tree)
 * the way the kernel would if that directory were `/`: symlinks are followed component by
 * component, an absolute link target restarts at the root, and `..` never climbs above the
 * root (it stays at the root, as `/..` does). The result is always a path below `root`, so
 * writing to it cannot touch anything outside, whatever symlinks the tree holds.
 *
 * This is the lexical-walk approach of filepath-securejoin / continuity's fs.RootPath. It
 * assumes nothing renames or relinks components concurrently (the tree is ours while we build).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';

/** Most symlinks followed in one resolution (Linux's limit is 40; this is generous). */
const MAX_LINKS = 255;

export interface ResolveOptions {
  /**
   * Follow the last component too when it is a symlink (like stat(2)); default false
   * (like lstat(2): the link itself is the result). A trailing "/", "/." or "/.." always follows.
   */
  followLast?: boolean;
}

/**
 * The host path of container path `p` (absolute or not: both mean "from the root") under
 * `root`. Components that do not exist are kept as written (a non-existent path resolves
 * lexically), so the result can be used to create what is missing.
 */
export function resolveInRoot(root: string, p: string, opts: ResolveOptions = {}): string {
  return path.join(path.resolve(root), ...resolveParts(root, p, opts.followLast ?? false));
}

/** Like resolveInRoot, but the resolved components relative to the root ([] = the root itself). */
export function resolveParts(root: string, p: string, followLast = false): string[] {
  const base = path.resolve(root);
  const queue = p.split('/').filter((c) => c !== '' && c !== '.');
  // A trailing "/", "/." or "/.." means "the directory itself": the last real component is followed.
  const forceLast = /(^|\/)(\.|\.\.)?$/.test(p);
  const out: string[] = [];
  let links = 0;
  while (queue.length > 0) {
    const c = queue.shift() as string;
    if (c === '..') {
      out.pop();
      continue;
    }
    const isLast = queue.length === 0;
    if (isLast && !followLast && !forceLast) {
      out.push(c);
      break;
    }
    const host = path.join(base, ...out, c);
    let st: fs.Stats | undefined;
    try {
      st = fs.lstatSync(host, { throwIfNoEntry: false });
    } catch (e) {
      // ENOTDIR: an earlier component is a file; the rest cannot exist, keep it lexical.
      if ((e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw ioError(root, p, e);
    }
    if (!st?.isSymbolicLink()) {
      out.push(c);
      continue;
    }
    if (++links > MAX_LINKS) {
      throw new KilnError('E_IO', `resolving ${JSON.stringify(p)} in ${root}: too many levels of symbolic links`);
    }
    let target: string;
    try {
      target = fs.readlinkSync(host);
    } catch (e) {
      throw ioError(root, p, e);
    }
    if (target.startsWith('/')) out.length = 0;
    queue.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return out;
}

function ioError(root: string, p: string, e: unknown): KilnError {
  return new KilnError('E_IO', `resolving ${JSON.stringify(p)} in ${root}: ${(e as Error).message}`, { cause: e });
}

/** `p` relative to `root` in "/" form ("" for the root itself); `p` must be at or below root. */
export function relativeTo(root: string, p: string): string {
  const r = path.relative(path.resolve(root), path.resolve(p));
  return r.split(path.sep).join('/');
}
