/**
 * RUN --mount=type=cache directories: persistent dirs under <root>/build-cache-mounts/, one per
 * id (default: the target), kept across builds and never part of a layer or a cache key.
 * Every user holds an flock on the dir's `.lock` file for as long as its step runs (polled,
 * so the event loop never blocks), which is also what keeps `kiln system prune` away:
 *   - shared (default): a shared lock; every step that asks uses the same dir at once;
 *   - locked: an exclusive lock; one step at a time, across kiln processes too;
 *   - private: an exclusive lock; a step that finds the dir in use gets another instance of
 *     it (id#1, id#2…).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { native, LOCK_EX, LOCK_NB, LOCK_SH, LOCK_UN } from '../../native';
import type { Store } from '../../store/store';


export interface CacheMountSpec {
  id: string;
  sharing: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
}

export function cacheMountsDir(store: Store): string {
  return path.join(store.paths.root, 'build-cache-mounts');
}

function dirFor(store: Store, id: string): string {
  return path.join(cacheMountsDir(store), createHash('sha256').update(id).digest('hex').slice(0, 32));
}

/** Creates the dir (its parent exists) unless it exists (mkdir never replaces: a racing creator's dir is kept). */
function ensure(dir: string, spec: CacheMountSpec): void {
  try {
    fs.mkdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return;
    throw e;
  }
  fs.chmodSync(dir, spec.mode ?? 0o755); // explicit: mkdir's mode is filtered by the umask
  if (spec.uid !== undefined || spec.gid !== undefined) fs.chownSync(dir, spec.uid ?? 0, spec.gid ?? 0);
}

/** Tries a non-blocking flock on `dir`'s lock file; returns the fd, or undefined if it is held. */
export function tryLock(dir: string, op: number): number | undefined {
  const fd = fs.openSync(`${dir}.lock`, 'a', 0o600);
  if (native().flock(fd, op | LOCK_NB)) return fd;
  fs.closeSync(fd);
  return undefined;
}

function unlocker(fd: number): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    native().flock(fd, LOCK_UN);
    fs.closeSync(fd);
  };
}

/** The host dir to mount for `spec`, and what to call when the step is done. */
export async function acquireCacheMount(store: Store, spec: CacheMountSpec, signal: AbortSignal): Promise<{ dir: string; release(): void }> {
  fs.mkdirSync(cacheMountsDir(store), { recursive: true, mode: 0o700 });
  for (let n = 0; ; ) {
    const dir = dirFor(store, spec.sharing === 'private' && n > 0 ? `${spec.id}#${n}` : spec.id);
    const fd = tryLock(dir, spec.sharing === 'shared' ? LOCK_SH : LOCK_EX);
    if (fd !== undefined) {
      ensure(dir, spec); // under the lock: prune cannot remove it between creation and mount
      return { dir, release: unlocker(fd) };
    }
    if (spec.sharing === 'private') {
      n++;
      continue;
    }
    // shared waits for a locked user or a prune; locked waits for anyone
    signal.throwIfAborted();
    await new Promise((r) => setTimeout(r, 50));
  }
}
