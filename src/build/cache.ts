/**
 * The build cache: a persistent key → layer index in the store (table build_cache), as
 * BuildKit keeps one, so a lookup is one indexed read rather than buildah's scan of every
 * image's history.
 *
 * A step's key is sha256 over its parent's key and its inputs: the instruction as expanded,
 * and named components (the environment it sees, the content hash of the files it copies —
 * mode, owner, size and bytes, never mtimes — and the sources of its mounts). Because the parent
 * key is part of it, a change invalidates that step and every later one, and nothing before.
 * Inputs are kept with each entry so that a miss can be explained by comparing with the
 * entries recorded under the same parent.
 */
import { createHash } from 'node:crypto';
import type { Store } from '../store/store';
import type { Lease } from '../store/lease';
import type { Digest } from '../util/digest';

export type CacheInputs = { op: string } & Record<string, string>;

export interface CacheEntry {
  key: string;
  parentKey: string;
  inputs: CacheInputs;
  layerID: string;
  blobDigest: Digest;
  diffID: Digest;
  createdBy: string;
  /** ms since the epoch when the step first ran */
  created: number;
}

export function cacheKey(parentKey: string, inputs: CacheInputs): string {
  const canon = JSON.stringify([parentKey, Object.keys(inputs).sort().map((k) => [k, inputs[k]])]);
  return createHash('sha256').update(canon).digest('hex');
}

const LABELS: Record<string, string> = {
  op: 'the instruction',
  env: 'the environment (ENV/ARG values, USER, WORKDIR, SHELL)',
  sources: 'the content of the files it copies',
  mounts: 'its --mount sources',
  network: 'its --network',
};

export interface CacheOptions {
  /** --no-cache: never hit (results are still recorded for the next build) */
  disabled?: boolean;
  /** --cache-ttl: entries older than this many ms do not count */
  ttlMs?: number;
}

export class BuildCache {
  constructor(private readonly store: Store, private readonly opts: CacheOptions = {}) {}

  /**
   * The usable entry for `key` on top of the layer `parentLayer` (null: an empty root), its layer
   * and blob held by `lease`; undefined on a miss. Keys chain the steps' inputs, not their
   * results: after an earlier step was run again with a different result, an entry made on
   * its old result has the right key but the wrong parent layer, and does not count.
   */
  lookup(key: string, lease: Lease, parentLayer: string | null): CacheEntry | undefined {
    if (this.opts.disabled) return undefined;
    return this.store.writeTx(() => {
      const row = this.store.db.prepare('SELECT * FROM build_cache WHERE key = ?').get(key) as Row | undefined;
      if (!row || this.expired(row) || !this.store.blobs.has(row.blob_digest as Digest)) return undefined;
      const layer = this.store.layers.get(row.layer_id);
      if (!layer || layer.parent !== parentLayer) return undefined;
      this.store.db.prepare('UPDATE build_cache SET last_used = ? WHERE key = ?').run(Date.now(), key);
      lease.hold('layer', row.layer_id);
      lease.hold('blob', row.blob_digest);
      return fromRow(row);
    });
  }

  /**
   * Records a step's result, replacing an older entry with the same key (after --no-cache or an
   * expired --cache-ttl); the replaced entry's layer and blob, and the parent layers only they
   * held, are garbage-collected when nothing else uses them.
   */
  record(e: CacheEntry): void {
    let freed = false;
    this.store.writeTx(() => {
      const old = this.store.db.prepare('SELECT layer_id, blob_digest FROM build_cache WHERE key = ?').get(e.key) as Pick<Row, 'layer_id' | 'blob_digest'> | undefined;
      this.store.db
        .prepare(`INSERT OR REPLACE INTO build_cache (key, parent_key, op, inputs, layer_id, blob_digest, diff_id, created_by, created, last_used)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(e.key, e.parentKey, e.inputs.op, JSON.stringify(e.inputs), e.layerID, e.blobDigest, e.diffID, e.createdBy, e.created, Date.now());
      if (old && old.layer_id !== e.layerID) freed = this.collectReplacedTx(old.layer_id, old.blob_digest as Digest);
    });
    if (freed) void this.store.emptyTrash().catch(() => undefined);
  }

  /** Inside writeTx: collects a layer no entry holds any more, then each parent it alone held. */
  private collectReplacedTx(layerID: string, blob: Digest): boolean {
    const images = this.store.images;
    let freed = images.collectTx([], [blob]).blobs.length > 0;
    for (let l: string | null = layerID; l !== null; ) {
      const rec = this.store.layers.get(l);
      if (!rec || images.collectTx([l], []).layers.length === 0) break;
      freed = true;
      if (rec.blobDigest) images.collectTx([], [rec.blobDigest]);
      l = rec.parent;
    }
    return freed;
  }

  /**
   * Why `key` missed, in words: --no-cache, an expired entry, an earlier step that was rebuilt,
   * or which inputs differ from the entries recorded after the same parent.
   */
  explainMiss(key: string, parentKey: string, inputs: CacheInputs, parentRebuilt: boolean): string {
    if (this.opts.disabled) return '--no-cache';
    const db = this.store.db;
    const own = db.prepare('SELECT * FROM build_cache WHERE key = ?').get(key) as Row | undefined;
    if (own && this.expired(own)) return `the cached result is older than --cache-ttl (${new Date(own.created).toISOString()})`;
    if (own && this.store.layers.get(own.layer_id) && this.store.blobs.has(own.blob_digest as Digest)) return 'the cached result was made on an earlier result of a step before it, which was rebuilt since';
    if (own) return 'the cached layer is no longer in the store';
    if (parentRebuilt) return 'an earlier step was rebuilt';
    const siblings = db.prepare('SELECT * FROM build_cache WHERE parent_key = ? ORDER BY last_used DESC LIMIT 50').all(parentKey) as Row[];
    if (siblings.length === 0) return 'no step after this parent was built before';
    const same = siblings.find((s) => s.op === inputs.op);
    if (!same) return `the instruction differs from the one cached after the same parent (${JSON.stringify(siblings[0].op)})`;
    const prev = JSON.parse(same.inputs) as CacheInputs;
    const diff = [...new Set([...Object.keys(prev), ...Object.keys(inputs)])].filter((k) => prev[k] !== inputs[k]);
    return `changed: ${diff.map((k) => LABELS[k] ?? k).join('; ')}`;
  }

  private expired(r: Row): boolean {
    return this.opts.ttlMs !== undefined && Date.now() - r.created > this.opts.ttlMs;
  }
}

interface Row {
  key: string;
  parent_key: string;
  op: string;
  inputs: string;
  layer_id: string;
  blob_digest: string;
  diff_id: string;
  created_by: string;
  created: number;
}

function fromRow(r: Row): CacheEntry {
  return {
    key: r.key,
    parentKey: r.parent_key,
    inputs: JSON.parse(r.inputs) as CacheInputs,
    layerID: r.layer_id,
    blobDigest: r.blob_digest as Digest,
    diffID: r.diff_id as Digest,
    createdBy: r.created_by,
    created: r.created,
  };
}
