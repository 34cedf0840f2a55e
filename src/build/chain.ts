/**
 * Questions about a layer chain answered from the layer dirs themselves (overlay form:
 * whiteouts are 0/0 character devices, opaque dirs carry trusted.overlay.opaque=y), without
 * mounting it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../native';
import type { Store } from '../store/store';

export const OPAQUE = 'trusted.overlay.opaque';

/** An overlay whiteout: a 0/0 character device. */
export function isWhiteout(st: fs.Stats): boolean {
  return st.isCharacterDevice() && st.rdev === 0;
}

/** Whether the dir `p` is marked opaque (hides the lower layers' entries below it). */
export function isOpaque(p: string): boolean {
  return native().lgetxattr(p, OPAQUE)?.toString('latin1') === 'y';
}

/**
 * Whether the container path `p` exists in the filesystem the layers (`dirs`, top first) make
 * up. Symlinks on the way are not followed: a path through a symlink counts as absent.
 */
export function existsInChain(dirs: string[], p: string): boolean {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.length === 0) return true;
  for (const d of dirs) {
    // walk down this layer; it decides if it has the entry, a whiteout, or an opaque ancestor
    let cur = d;
    for (let i = 0; i < parts.length; i++) {
      cur = path.join(cur, parts[i]);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(cur);
      } catch {
        break; // not in this layer: look below, unless an ancestor here was opaque (checked next)
      }
      if (isWhiteout(st)) return false;
      if (i === parts.length - 1) return true;
      if (!st.isDirectory()) return false;
      if (isOpaque(cur)) {
        // an opaque dir hides the layers below: the rest of the path must be in this layer
        try {
          return !isWhiteout(fs.lstatSync(path.join(cur, ...parts.slice(i + 1))));
        } catch {
          return false;
        }
      }
    }
  }
  return false;
}

/** existsInChain for a stage's layers (bottom first, as StageState keeps them), their dirs made first if deferred. */
export async function existsInLayers(store: Store, layers: readonly { id: string }[], p: string): Promise<boolean> {
  if (layers.length > 0) await store.layers.ensureChain(layers[layers.length - 1].id);
  return existsInChain(layers.map((l) => store.layers.diffDir(l.id)).reverse(), p);
}
