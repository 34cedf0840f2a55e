/**
 * Where a step whose result does not depend on the files below it may build its layer: a
 * directory on tmpfs (/dev/shm), where creating thousands of small files costs microseconds
 * instead of the disk's milliseconds. The layer is then kept only as its blob until something
 * needs its dir (LayerStore.commitDeferred / ensureChain). Dirs are named after their owner
 * process so that repair can remove those of a killed kiln.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { trackTemp } from '../util/cleanup';
import { selfOwner } from '../util/proc';

const SHM = '/dev/shm';
const TMPFS_MAGIC = 0x01021994;
/** room left free on the tmpfs besides what the step needs */
const HEADROOM = 256 << 20;
/** bigger selections go through the disk as usual */
export const STAGE_LIMIT = 1 << 30;

/** Bytes this process's staging dirs have claimed (stages run in parallel check together). */
let reserved = 0;

export interface StagingDir {
  dir: string;
  /** removes the dir and gives its claim back */
  release(): void;
}

/**
 * A fresh staging dir (with an empty `diff/` inside) for about `bytes` of files, or undefined
 * if tmpfs has no room. The estimate can still fall short (other processes use tmpfs too):
 * callers treat ENOSPC as "stage on disk instead" (isNoSpace).
 */
export function tmpfsStagingDir(bytes: number): StagingDir | undefined {
  if (bytes > STAGE_LIMIT || process.env.KILN_NO_TMPFS_STAGING) return undefined;
  try {
    const st = fs.statfsSync(SHM);
    if (st.type !== TMPFS_MAGIC || st.bavail * st.bsize < reserved + bytes * 1.2 + HEADROOM) return undefined;
    const dir = fs.mkdtempSync(path.join(SHM, `kiln-${selfOwner()}-`));
    trackTemp(dir);
    fs.mkdirSync(path.join(dir, 'diff'), { mode: 0o755 });
    reserved += bytes;
    let released = false;
    return {
      dir,
      release: () => {
        if (released) return;
        released = true;
        reserved -= bytes;
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch {
    return undefined;
  }
}

/** Whether `e` (or what it wraps) says a filesystem ran out of space or quota. */
export function isNoSpace(e: unknown): boolean {
  for (let cur: unknown = e; cur instanceof Error; cur = (cur as Error & { cause?: unknown }).cause) {
    const code = (cur as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT' || /\bENOSPC\b|\bEDQUOT\b/.test(cur.message)) return true;
  }
  return false;
}

/** Removes the staging dirs of a dead owner (called by repair for each dead process). */
export function removeStagingOf(owner: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(SHM);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith(`kiln-${owner}-`)) fs.rmSync(path.join(SHM, n), { recursive: true, force: true });
}
