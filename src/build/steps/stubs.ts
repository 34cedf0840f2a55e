/**
 * Mount points the runtime creates: when a RUN mounts something (a secret, a cache dir,
 * /etc/hosts, /proc…) at a path the image does not have, runc creates an empty file or dir
 * there, in the upper dir — so it would end up in the layer. As buildah does, kiln notes which
 * mount destinations were missing before the step and removes what is still an empty stub
 * afterwards; anything the command itself put there stays.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** For each destination that does not exist in `rootfs`, the topmost missing ancestor (container paths). */
export function missingMountPoints(rootfs: string, destinations: string[]): string[] {
  const out = new Set<string>();
  for (const d of destinations) {
    const parts = d.split('/').filter((p) => p !== '' && p !== '.');
    let cur = '';
    for (const p of parts) {
      cur = `${cur}/${p}`;
      let exists = true;
      try {
        fs.lstatSync(path.join(rootfs, cur));
      } catch {
        exists = false;
      }
      if (!exists) {
        out.add(cur);
        break;
      }
    }
  }
  return [...out];
}

/** Removes each path (inside `rootfs`) if it is an empty file or a tree of empty dirs/files. */
export function removeStubs(rootfs: string, stubs: string[]): void {
  for (const s of stubs) prune(path.join(rootfs, s));
}

function prune(p: string): boolean {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch {
    return true;
  }
  if (st.isDirectory()) {
    let empty = true;
    for (const c of fs.readdirSync(p)) if (!prune(path.join(p, c))) empty = false;
    if (!empty) return false;
    fs.rmdirSync(p);
    return true;
  }
  if (st.isFile() && st.size === 0) {
    fs.unlinkSync(p);
    return true;
  }
  return false;
}
