/**
 * RUN --mount=type=cache directories: persistent dirs under <root>/build-cache-mounts/, one per
 * id (default: the target), kept across builds and never part of a layer or a cache key.
 * sharing (BuildKit's semantics):
 *   - shared (default): every step that asks uses the same dir at once;
 *   - locked: one step at a time, across kiln processes too (an flock on the dir's lock file,
 *     polled so the event loop never blocks);
 *   - private: a step that finds the dir in use gets another instance of it (id#1, id#2…).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { native, LOCK_EX, LOCK_NB } from '../../native';
import type { Store } from '../../store/store';

const LOCK_UN = 8;

export interface CacheMountSpec {
  id: string;
  sharing: 'shared' | 'private' | 'locked';
  mode?: number;
  uid?: number;
  gid?: number;
}

function dirFor(store: Store, id: string): string {
  return path.join(store.paths.root, 'build-cache-mounts', createHash('sha256').update(id).digest('hex').slice(0, 32));
}

function ensure(dir: string, spec: CacheMountSpec): void {
  if (fs.existsSync(dir)) return;
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o700 });
  const tmp = `${dir}.new-${process.pid}`;
  fs.mkdirSync(tmp, { mode: spec.mode ?? 0o755 });
  if (spec.uid !== undefined || spec.gid !== undefined) fs.chownSync(tmp, spec.uid ?? 0, spec.gid ?? 0);
  try {
    fs.renameSync(tmp, dir);
  } catch {
    fs.rmSync(tmp, { recursive: true, force: true }); // another process made it first
  }
}

/** Tries an exclusive flock on `dir`'s lock file; returns the fd, or undefined if it is held. */
function tryLock(dir: string): number | undefined {
  const fd = fs.openSync(`${dir}.lock`, 'a', 0o600);
  if (native().flock(fd, LOCK_EX | LOCK_NB)) return fd;
  fs.closeSync(fd);
  return undefined;
}

/** The host dir to mount for `spec`, and what to call when the step is done. */
export async function acquireCacheMount(store: Store, spec: CacheMountSpec, signal: AbortSignal): Promise<{ dir: string; release(): void }> {
  if (spec.sharing === 'shared') {
    const dir = dirFor(store, spec.id);
    ensure(dir, spec);
    return { dir, release: () => undefined };
  }
  for (let n = 0; ; n++) {
    const dir = dirFor(store, spec.sharing === 'private' && n > 0 ? `${spec.id}#${n}` : spec.id);
    ensure(dir, spec);
    const fd = tryLock(dir);
    if (fd !== undefined) {
      return {
        dir,
        release: () => {
          native().flock(fd, LOCK_UN);
          fs.closeSync(fd);
        },
      };
    }
    if (spec.sharing === 'locked') {
      n = -1; // wait for the same dir
      signal.throwIfAborted();
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}
