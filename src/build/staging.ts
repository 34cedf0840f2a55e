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

/** A fresh staging dir (with an empty `diff/` inside) for about `bytes` of files, or undefined if tmpfs has no room. */
export function tmpfsStagingDir(bytes: number): string | undefined {
  if (bytes > STAGE_LIMIT || process.env.KILN_NO_TMPFS_STAGING) return undefined;
  try {
    const st = fs.statfsSync(SHM);
    if (st.type !== TMPFS_MAGIC || st.bavail * st.bsize < bytes * 1.2 + HEADROOM) return undefined;
    const dir = fs.mkdtempSync(path.join(SHM, `kiln-${selfOwner()}-`));
    trackTemp(dir);
    fs.mkdirSync(path.join(dir, 'diff'), { mode: 0o755 });
    return dir;
  } catch {
    return undefined;
  }
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
