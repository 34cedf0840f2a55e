/**
 * `kiln system prune`: frees what only speeds builds up or is no longer named — the build
 * cache index (its layers and blobs go unless an image, container or mount still uses them),
 * the RUN --mount=type=cache dirs, and dangling images (no name), or with `all` every image
 * no container uses. One write transaction, so a concurrent build either sees the cache as
 * it was or finds it empty; a build running now holds its layers by lease and keeps them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Digest } from '../util/digest';
import type { EngineContext } from './context';
import { LOCK_EX } from '../native';
import { cacheMountsDir, tryLock } from '../build/steps/cache-mounts';

export interface PruneOptions {
  /** remove every image no container uses, not only dangling ones (podman's -a) */
  all: boolean;
}

export interface PruneReport {
  images: string[];
  cacheEntries: number;
  reclaimed: number;
}

export async function prune(ctx: EngineContext, opts: PruneOptions): Promise<PruneReport> {
  const store = ctx.store;
  const db = store.db;
  const report: PruneReport = { images: [], cacheEntries: 0, reclaimed: 0 };
  const sizes = (layers: string[], blobs: Digest[]) =>
    layers.reduce((n, l) => {
      const rec = store.layers.get(l);
      return n + (rec?.extracted ? rec.uncompressedSize : 0);
    }, 0) + blobs.reduce((n, b) => n + (store.blobs.get(b)?.size ?? 0), 0);
  store.writeTx(() => {
    // dangling images first (their layers may be what the cache holds too)
    const unused = store.images.list().filter((i) => (opts.all || i.names.length === 0) && store.images.containersUsing(i.id).length === 0);
    for (const img of unused) {
      const layers = store.images.layerIDs(img.id);
      const blobs = (db.prepare('SELECT digest FROM image_blobs WHERE image_id = ?').all(img.id) as { digest: Digest }[]).map((r) => r.digest);
      const before = sizes(layers, blobs);
      const r = store.images.removeTx(img.id, false);
      report.images.push(img.id);
      report.reclaimed += before - sizes(layers.filter((l) => !r.layers.includes(l)), blobs.filter((b) => !r.blobs.includes(b)));
    }
    const rows = db.prepare('SELECT layer_id AS layer, blob_digest AS blob FROM build_cache').all() as { layer: string; blob: Digest }[];
    db.prepare('DELETE FROM build_cache').run();
    report.cacheEntries = rows.length;
    // removing a layer can free its parent: collect to a fixpoint
    let candidates = [...new Set(rows.map((r) => r.layer))];
    while (candidates.length > 0) {
      const recs = candidates.map((l) => store.layers.get(l)).filter((r) => r !== undefined);
      const gone = new Set(store.images.collectTx(candidates, []).layers);
      for (const r of recs) if (gone.has(r.id) && r.extracted) report.reclaimed += r.uncompressedSize;
      candidates = [...new Set(recs.filter((r) => gone.has(r.id) && r.parent !== null).map((r) => r.parent as string))];
    }
    const blobs = [...new Set(rows.map((r) => r.blob))];
    const blobSizes = new Map(blobs.map((b) => [b, store.blobs.get(b)?.size ?? 0]));
    for (const b of store.images.collectTx([], blobs).blobs) report.reclaimed += blobSizes.get(b) ?? 0;
  });
  await store.emptyTrash();
  // RUN --mount=type=cache dirs: those no step holds (their lock files stay: a lock file
  // removed under a waiting step would let two steps in at once)
  const mounts = cacheMountsDir(store);
  for (const name of fs.existsSync(mounts) ? fs.readdirSync(mounts) : []) {
    if (name.endsWith('.lock')) continue;
    const dir = path.join(mounts, name);
    const fd = tryLock(dir, LOCK_EX);
    if (fd === undefined) continue; // in use by a running build
    try {
      report.reclaimed += duSync(dir);
      fs.rmSync(dir, { recursive: true, force: true });
    } finally {
      fs.closeSync(fd);
    }
  }
  return report;
}

function duSync(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) n += duSync(p);
    else if (e.isFile()) n += fs.lstatSync(p).size;
  }
  return n;
}
