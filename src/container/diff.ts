/**
 * `kiln diff CONTAINER` / `kiln container diff CONTAINER`: what the container changed relative
 * to its image, read from its overlay upper dir (<root>/containers/<id>/diff) against the
 * image's layer dirs, the way containers/storage's overlay driver does it (OverlayChanges),
 * which is what podman 4.3 prints:
 *
 * - The upper dir is walked depth first, names in byte order within each directory (Go's
 *   filepath.Walk), and each entry is one change, in that order (no other sorting).
 * - D: an overlay whiteout (char device 0/0), or an opaque directory (trusted.overlay.opaque
 *   "y") whose path exists in a lower layer (it was deleted and made again; its new children
 *   then show as A).
 * - C: the path exists in a lower layer (the topmost one that has it, unless a whiteout of it
 *   or of a parent in a layer above hides it). A directory whose size, mode and mtime equal
 *   the lower one's is not a change by itself.
 * - A: everything else.
 * - Each A or D also reports its parent directories as C when they are not reported yet
 *   (outermost first, before the entry).
 * - The mount points the runtime creates (podman's list: /dev, /proc, /sys, /run,
 *   /run/.containerenv, /run/secrets, /run/notify, /run/podman-init, /etc/hostname,
 *   /etc/hosts, /etc/resolv.conf, /etc/mtab) are left out; the parents they changed are not.
 *
 * Images are not compared (podman's `diff IMAGE`): an image name gives E_UNSUPPORTED.
 * Errors: E_CONTAINER_UNKNOWN (podman's "X not found: container not known"), E_IO.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import type { EngineContext } from '../engine/context';
import { native } from '../native';
import { syncState } from './lifecycle';
import { containerDir } from './rootfs';

export type ChangeKind = 'A' | 'C' | 'D';

export interface Change {
  kind: ChangeKind;
  /** absolute container path */
  path: string;
}

/** podman's libpod initInodes: mount points made for every container, never reported. */
const INIT_INODES = new Set(['/dev', '/etc/hostname', '/etc/hosts', '/etc/resolv.conf', '/proc', '/run', '/run/notify', '/run/.containerenv', '/run/secrets', '/run/podman-init', '/sys', '/etc/mtab']);

function lstatOrUndefined(p: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(p, { bigint: true, throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw new KilnError('E_IO', `diff: reading ${p}: ${(e as Error).message}`, { cause: e });
  }
}

function isWhiteout(st: fs.BigIntStats | undefined): boolean {
  return st !== undefined && st.isCharacterDevice() && st.rdev === 0n;
}

function isOpaque(p: string): boolean {
  try {
    return native().lgetxattr(p, 'trusted.overlay.opaque')?.toString('latin1') === 'y';
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTSUP' || code === 'EOPNOTSUPP' || code === 'ENODATA') return false;
    throw new KilnError('E_IO', `diff: reading the overlay xattrs of ${p}: ${(e as Error).message}`, { cause: e });
  }
}

/** Go's sameFsTime: equal, or the same second with either side lacking nanoseconds. */
function sameTime(a: bigint, b: bigint): boolean {
  const s = 1_000_000_000n;
  return a === b || (a / s === b / s && (a % s === 0n || b % s === 0n));
}

/** Whether `layer` has a whiteout at `p` or at one of its parents. */
function whitedOut(layer: string, p: string): boolean {
  for (let q = p; q !== '/' && q !== ''; q = path.posix.dirname(q)) {
    if (isWhiteout(lstatOrUndefined(layer + q))) return true;
  }
  return false;
}

/**
 * The changes of upper dir `upper` over `layers` (the lower layer dirs, topmost first), in
 * containers/storage's order (see the file comment). Exported for tests of odd trees.
 */
export function overlayChanges(upper: string, layers: string[]): Change[] {
  const changes: Change[] = [];
  const changedDirs = new Set<string>();
  const visit = (p: string, st: fs.BigIntStats): void => {
    let kind: ChangeKind | undefined;
    if (isWhiteout(st)) kind = 'D';
    else if (st.isDirectory() && isOpaque(upper + p) && layers.length > 0) {
      // opaque: deleted here only if a lower layer had it (and no whiteout above hid it)
      for (const layer of layers) {
        const lower = lstatOrUndefined(layer + p);
        if (lower) {
          if (!isWhiteout(lower)) kind = 'D';
          break;
        }
        if (whitedOut(layer, path.posix.dirname(p))) break;
      }
    }
    if (kind === undefined) {
      kind = 'A';
      for (const layer of layers) {
        if (whitedOut(layer, p)) break;
        const lower = lstatOrUndefined(layer + p);
        if (!lower) continue;
        // a directory that only holds changes is not a change itself
        if (lower.isDirectory() && st.isDirectory() && lower.size === st.size && lower.mode === st.mode && sameTime(lower.mtimeNs, st.mtimeNs)) return;
        kind = 'C';
        break;
      }
    }
    if (st.isDirectory()) changedDirs.add(p);
    if (kind !== 'C') {
      const tail: Change[] = [];
      for (let parent = path.posix.dirname(p); parent !== '/'; parent = path.posix.dirname(parent)) {
        if (changedDirs.has(parent)) continue;
        tail.unshift({ kind: 'C', path: parent });
        changedDirs.add(parent);
      }
      changes.push(...tail);
    }
    changes.push({ kind, path: p });
  };
  const walk = (dir: string): void => {
    let names: string[];
    try {
      names = fs.readdirSync(upper + dir);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return; // removed while we looked
      throw new KilnError('E_IO', `diff: reading ${upper + dir}: ${(e as Error).message}`, { cause: e });
    }
    names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names) {
      const p = `${dir === '/' ? '' : dir}/${name}`;
      const st = lstatOrUndefined(upper + p);
      if (!st) continue;
      visit(p, st);
      if (st.isDirectory()) walk(p);
    }
  };
  walk('/');
  return changes;
}

/**
 * The changes of container `ref` (name, ID or prefix) over its image, as podman lists them.
 * E_CONTAINER_UNKNOWN, or E_UNSUPPORTED when `ref` names an image instead.
 */
export async function containerDiff(ctx: EngineContext, ref: string): Promise<Change[]> {
  const store = ctx.store;
  const found = store.containers.find(ref);
  if (!found) {
    if (store.images.find(ref)) {
      throw new KilnError('E_UNSUPPORTED', `${ref} is an image: kiln diff compares containers with their image, not images`, { hint: 'kiln history IMAGE lists what each layer of an image did' });
    }
    throw new KilnError('E_CONTAINER_UNKNOWN', `${ref} not found: container not known`);
  }
  const c = await syncState(ctx, found);
  const layers: string[] = [];
  if (c.layerID !== null) {
    await store.layers.ensureChain(c.layerID);
    for (let cur: string | null = c.layerID; cur !== null; cur = store.layers.require(cur).parent) layers.push(store.layers.diffDir(cur));
  }
  return overlayChanges(path.join(containerDir(store, c.id), 'diff'), layers).filter((ch) => !INIT_INODES.has(ch.path));
}
