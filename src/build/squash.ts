/**
 * --squash and --squash-all: several layers become one. The layers' dirs are in overlay form
 * (whiteouts as 0/0 character devices, opaque dirs marked by trusted.overlay.opaque), so
 * merging them is a walk from the top layer down: the topmost entry for a path wins, a
 * whiteout hides the path below, an opaque dir hides the lower layers' children. Regular files
 * are hard-linked from the source layers (layer dirs never change once stored), so squashing
 * costs metadata operations, not data copies.
 *
 * With `dropWhiteouts` (squash-all: nothing lies below the result) whiteouts and opaque marks
 * are left out; otherwise they are kept so that they still hide the base image's files.
 */
import { splitDev } from '../util/rdev';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../native';
import type { Store } from '../store/store';
import type { Lease } from '../store/lease';
import type { StageState } from './state';
import { isOpaque, isWhiteout, OPAQUE } from './chain';


function copyXattrs(src: string, dest: string): void {
  const n = native();
  for (const k of n.llistxattr(src)) {
    if (k.startsWith('trusted.overlay.') || k.startsWith('user.overlay.')) continue;
    const v = n.lgetxattr(src, k);
    if (v !== null) n.lsetxattr(dest, k, v);
  }
}

function setMeta(dest: string, st: fs.Stats, isLink: boolean): void {
  fs.lchownSync(dest, st.uid, st.gid);
  if (!isLink) fs.chmodSync(dest, st.mode & 0o7777);
  fs.lutimesSync(dest, st.atime, st.mtime);
}

/** Merges `layers` (overlay-form dirs, bottom first) into the empty dir `dest`. */
export function mergeLayerDirs(layers: string[], dest: string, dropWhiteouts: boolean): void {
  mergeDir(layers.slice().reverse(), '', dest, dropWhiteouts);
}

/** `dirs`: the layers (top first) in which `rel` is a directory that is visible. */
function mergeDir(dirs: string[], rel: string, dest: string, dropWhiteouts: boolean): void {
  const names = new Set<string>();
  for (const d of dirs) for (const n of fs.readdirSync(path.join(d, rel))) names.add(n);
  const dirMtimes: [string, fs.Stats][] = [];
  for (const name of [...names].sort()) {
    const r = rel === '' ? name : `${rel}/${name}`;
    const out = path.join(dest, r);
    let top: fs.Stats | undefined;
    let topDir = '';
    const below: string[] = []; // layers (top first) where r is a dir that stays visible
    let lowestOpaque = false; // the last of `below` is opaque (it hid whatever lies below it)
    for (const d of dirs) {
      let st: fs.Stats;
      try {
        st = fs.lstatSync(path.join(d, r));
      } catch {
        continue;
      }
      if (top === undefined) {
        top = st;
        topDir = d;
      }
      if (!st.isDirectory()) break; // the top entry, or a file or whiteout under the top dir: nothing below shows
      below.push(d);
      if (isOpaque(path.join(d, r))) {
        lowestOpaque = true;
        break;
      }
    }
    if (top === undefined) continue;
    const src = path.join(topDir, r);
    if (isWhiteout(top)) {
      if (!dropWhiteouts) native().mknod(out, 0o20000, 0, 0);
    } else if (top.isDirectory()) {
      fs.mkdirSync(out);
      copyXattrs(src, out);
      if (!dropWhiteouts && lowestOpaque) native().lsetxattr(out, OPAQUE, Buffer.from('y'));
      mergeDir(below, r, dest, dropWhiteouts);
      dirMtimes.push([out, top]);
    } else if (top.isFile()) {
      fs.linkSync(src, out);
    } else if (top.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(src), out);
      setMeta(out, top, true);
      copyXattrs(src, out);
    } else if (top.isCharacterDevice() || top.isBlockDevice() || top.isFIFO()) {
      const { major, minor } = splitDev(top.rdev);
      native().mknod(out, top.mode, major, minor);
      setMeta(out, top, false);
      copyXattrs(src, out);
    }
  }
  // directory metadata last: creating entries inside would change the mtime again
  for (const [out, st] of dirMtimes) setMeta(out, st, false);
}


/**
 * The state with its layers from index `keep` on merged into one (keep = 0: --squash-all).
 * History entries of the merged layers become empty-layer entries, followed by one entry for
 * the squashed layer, so history and layers still correspond.
 */
export async function squashState(store: Store, lease: Lease, s: StageState, keep: number, opts: { clampMtime?: number; created: string }): Promise<StageState> {
  const merged = s.layers.slice(keep);
  if (merged.length === 0) return s;
  await store.layers.ensureChain(s.layers[s.layers.length - 1].id);
  const tmp = store.tempDir('squash');
  try {
    fs.mkdirSync(path.join(tmp, 'diff'));
    mergeLayerDirs(merged.map((l) => store.layers.diffDir(l.id)), path.join(tmp, 'diff'), keep === 0);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const parent = keep > 0 ? s.layers[keep - 1].id : null;
  const { layer, blob } = await store.layers.commitDir(tmp, parent, lease, { clampMtime: opts.clampMtime, compress: 'none', what: 'the squashed layer' });
  let nonEmpty = 0;
  const history = s.history.map((h) => {
    if (h.empty_layer) return h;
    nonEmpty++;
    return nonEmpty > keep ? { ...h, empty_layer: true } : h;
  });
  history.push({ created: opts.created, created_by: `/bin/sh -c #(nop) squashed ${merged.length} layer${merged.length === 1 ? '' : 's'}` });
  return {
    ...s,
    layers: [...s.layers.slice(0, keep), { id: layer.id, diffID: layer.diffID, blobDigest: blob.digest, blobSize: blob.size, mediaType: blob.mediaType ?? 'application/vnd.oci.image.layer.v1.tar', uncompressedSize: layer.uncompressedSize }],
    history,
  };
}
