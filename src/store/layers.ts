/**
 * Layers: each one extracted into its own layers/<id>/diff (an overlay lowerdir; whiteouts
 * already translated to overlay form), id = the layer's chainID hex, so the same content on the
 * same parent chain is stored once. l/<link> is a short symlink to the diff dir so that overlay
 * mount options stay under the page-size limit with many layers (as containers/storage does).
 *
 * A layer may be recorded deferred (extracted = 0): only its blob exists, its l/<link> dangles
 * and layers/<id> does not exist yet. Pulled and loaded layers (recordDeferred) and staged COPY
 * layers (commitDeferred) are; whatever needs a layer's dir calls ensureChain first, which
 * extracts what is missing (and checks the diffID once more). Blobs of deferred layers are held
 * against garbage collection (refs.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KilnError } from '../errors';
import { sha256, type Digest } from '../util/digest';
import { checkExpected, fsyncPath, tempName } from '../util/blobfile';
import { MT } from '../image/oci';
import type { Store } from './store';
import type { Lease } from './lease';
import type { BlobRecord } from './blobs';
import type { ExtractResult, IngestResult } from '../layer/extract';
import type { PackResult } from '../layer/pack';
import type { LayerTask } from '../../workers/layer';
import { runInWorker } from '../util/pool';

export interface LayerRecord {
  id: string;
  parent: string | null;
  diffID: Digest;
  blobDigest: Digest | null;
  compressedSize: number | null;
  uncompressedSize: number;
  link: string;
  created: number;
  /** 0: the layer dir does not exist yet; ensureChain() makes it from the blob on first use */
  extracted: number;
}

const COLS = `id, parent, diff_id AS diffID, blob_digest AS blobDigest, compressed_size AS compressedSize,
  uncompressed_size AS uncompressedSize, link, created, extracted`;

/** The chainID hex of a layer with `diffID` on top of the layer `parent` (a chainID hex). */
export function layerID(parent: string | null, diffID: Digest): string {
  return (parent === null ? diffID : sha256(`sha256:${parent} ${diffID}`)).slice(7);
}

function newLink(): string {
  // 26 chars of [A-Z2-7], like containers/storage's short links.
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  return Array.from(randomBytes(26), (b) => alphabet[b & 31]).join('');
}

export class LayerStore {
  constructor(private readonly store: Store) {}

  get(id: string): LayerRecord | undefined {
    return this.store.db.prepare(`SELECT ${COLS} FROM layers WHERE id = ?`).get(id) as LayerRecord | undefined;
  }

  require(id: string): LayerRecord {
    const l = this.get(id);
    if (!l) throw new KilnError('E_LAYER_UNKNOWN', `layer ${id} is not in the store ${this.store.paths.root}`);
    return l;
  }

  dir(id: string): string {
    return path.join(this.store.paths.layers, id);
  }

  diffDir(id: string): string {
    return path.join(this.store.paths.layers, id, 'diff');
  }

  /**
   * Lower dirs for an overlay mount of `id`, topmost first, as short l/<link> paths relative to
   * root. Every layer of the chain must be extracted (await ensureChain first).
   */
  lowerChain(id: string): string[] {
    const out: string[] = [];
    for (let cur: string | null = id; cur !== null; ) {
      const l = this.require(cur);
      if (!l.extracted) throw new KilnError('E_INTERNAL', `layer ${l.id.slice(0, 12)} is used before it was extracted`);
      out.push(`l/${l.link}`);
      cur = l.parent;
    }
    return out;
  }

  /**
   * Makes sure every layer of the chain ending at `top` has its dir: deferred layers are
   * extracted from their blobs on the worker pool, all at once, each verified against its
   * diffID (E_DIGEST_MISMATCH naming the layer if its blob is not what was recorded), and
   * renamed into place in a short transaction each (a racing process that got there first wins;
   * ours is dropped). When one fails, the others that succeeded are kept and the first error
   * is thrown; a failed one stays deferred (nothing half-made is left).
   */
  async ensureChain(top: string | null): Promise<void> {
    const pending: LayerRecord[] = [];
    for (let cur: string | null = top; cur !== null; ) {
      const l = this.require(cur);
      if (!l.extracted) pending.push(l);
      cur = l.parent;
    }
    if (pending.length === 0) return;
    const settled = await Promise.allSettled(
      pending.map(async (l) => {
        if (!l.blobDigest || !this.store.blobs.has(l.blobDigest)) {
          throw new KilnError('E_STORE_CORRUPT', `layer ${l.id.slice(0, 12)} has no dir and its blob ${l.blobDigest} is missing`, { hint: 'run `kiln system check`' });
        }
        return this.extractToTemp(l.blobDigest, l.diffID, `layer ${l.id.slice(0, 12)} (blob ${l.blobDigest})`);
      }),
    );
    let failed: { reason: unknown } | undefined = settled.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
    let commitFailed = false;
    for (const [i, r] of settled.entries()) {
      if (r.status !== 'fulfilled') continue;
      const tmp = r.value;
      const l = pending[i]!;
      try {
        // after a failed commit the rest are only discarded (the error is thrown below)
        if (!commitFailed) this.store.writeTx(() => {
          const now = this.get(l.id);
          if (!now || now.extracted) return;
          this.install(tmp, l.id, now.link);
          this.store.db.prepare('UPDATE layers SET extracted = 1 WHERE id = ?').run(l.id);
        });
      } catch (e) {
        commitFailed = true;
        failed ??= { reason: e };
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    }
    if (failed) throw failed.reason;
  }

  /**
   * Records `tmp`/diff as a layer on `parent` like commitDir, but keeps only its blob: the
   * layer's dir is made from the blob when something first needs it (ensureChain). For a
   * step whose files were staged where creating them is cheap (tmpfs) and that nothing may
   * ever mount: the files are written once, into the blob, instead of twice.
   */
  async commitDeferred(tmp: string, parent: string | null, lease: Lease, opts: { clampMtime?: number; what: string }): Promise<{ layer: LayerRecord; blob: BlobRecord }> {
    const p = await this.pack(tmp, 'none', lease, opts);
    return { layer: this.recordDeferred(p.blob, p.diffID, p.tarSize, parent, lease), blob: p.blob };
  }

  /**
   * Records the stored blob `blob` as the layer with `diffID` (uncompressed size `tarSize`) on
   * `parent`, deferred: no dir is made now; ensureChain extracts the blob on first use and checks
   * the diffID again then. The caller must have verified that the blob's content has this diffID
   * (commitDeferred computed it; a pull or load hashed it while storing, store/layer-blobs.ts).
   * Returns (and holds) the stored layer when the store already has it.
   */
  recordDeferred(blob: BlobRecord, diffID: Digest, tarSize: number, parent: string | null, lease: Lease): LayerRecord {
    return this.record({ id: layerID(parent, diffID), parent, diffID, blobDigest: blob.digest, compressedSize: blob.size, uncompressedSize: tarSize }, lease, 'deferred');
  }

  /**
   * Extracts the stored blob `blobDigest` into a private tmp dir (returned; its diff/ is the
   * layer) on the worker pool and verifies that its uncompressed digest is `diffID`. Safe to run
   * for several layers at once; the caller installs or removes the dir.
   */
  private async extractToTemp(blobDigest: Digest, diffID: Digest, what: string): Promise<string> {
    const tmp = this.store.tempDir('layer');
    try {
      const diff = path.join(tmp, 'diff');
      fs.mkdirSync(diff);
      const r = await runInWorker<LayerTask, ExtractResult>('layer', { op: 'extract', blobPath: this.store.blobs.path(blobDigest), dest: diff, what });
      checkExpected({ digest: r.diffID, size: r.tarSize }, { digest: diffID, what: `${what} (uncompressed)` });
      return tmp;
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Imports a layer tar file (plain or compressed) on `parent`: on the worker pool it is
   * extracted, its diffID computed and it is stored as a blob — gzip-compressed when
   * `compress` is 'gzip', else as plain tar — in one pass; then blob and layer are recorded.
   */
  async ingestTar(srcPath: string, parent: string | null, compress: 'gzip' | 'none', lease: Lease, what: string): Promise<{ layer: LayerRecord; blob: BlobRecord }> {
    const tmp = this.store.tempDir('layer');
    const blobTmp = tempName(this.store.workDir());
    try {
      const diff = path.join(tmp, 'diff');
      fs.mkdirSync(diff);
      const r = await runInWorker<LayerTask, IngestResult>('layer', { op: 'ingest', srcPath, dest: diff, blobPath: blobTmp, compress, what });
      await fsyncPath(blobTmp);
      const mediaType = compress === 'gzip' ? MT.ociLayerGzip : MT.ociLayer;
      const blob = this.store.blobs.commitTemp(blobTmp, r.blobDigest, r.blobSize, lease, mediaType);
      // record() returns (and holds) the stored layer if the store already has this one
      const layer = this.record({ id: layerID(parent, r.diffID), parent, diffID: r.diffID, blobDigest: blob.digest, compressedSize: blob.size, uncompressedSize: r.tarSize }, lease, tmp);
      return { layer, blob };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
      fs.rmSync(blobTmp, { force: true });
    }
  }

  /**
   * Records `tmp`/diff (a build step's upper dir, already in overlay form) as a layer on
   * `parent`: the worker pool archives it (diffID) and writes the blob (gzip'd unless
   * `compress` is 'none') in one pass, then blob and layer are committed and `tmp` is renamed
   * into place (or removed if the store had this layer already). `tmp` must be a dir inside
   * this store's work dir holding only diff/.
   */
  async commitDir(tmp: string, parent: string | null, lease: Lease, opts: { clampMtime?: number; compress?: 'gzip' | 'none'; what: string }): Promise<{ layer: LayerRecord; blob: BlobRecord }> {
    try {
      const p = await this.pack(tmp, opts.compress ?? 'gzip', lease, opts);
      const layer = this.record({ id: layerID(parent, p.diffID), parent, diffID: p.diffID, blobDigest: p.blob.digest, compressedSize: p.blob.size, uncompressedSize: p.tarSize }, lease, tmp);
      return { layer, blob: p.blob };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }

  /** Archives `tmp`/diff into a blob on the worker pool and commits the blob (held by `lease`). */
  private async pack(tmp: string, compress: 'gzip' | 'none', lease: Lease, opts: { clampMtime?: number; what: string }): Promise<{ blob: BlobRecord; diffID: Digest; tarSize: number }> {
    const blobTmp = tempName(this.store.workDir());
    try {
      const r = await runInWorker<LayerTask, PackResult>('layer', { op: 'pack', dir: path.join(tmp, 'diff'), blobPath: blobTmp, compress, clampMtime: opts.clampMtime, what: opts.what });
      await fsyncPath(blobTmp);
      const blob = this.store.blobs.commitTemp(blobTmp, r.blobDigest, r.blobSize, lease, compress === 'gzip' ? MT.ociLayerGzip : MT.ociLayer);
      return { blob, diffID: r.diffID, tarSize: r.tarSize };
    } finally {
      fs.rmSync(blobTmp, { force: true });
    }
  }

  /**
   * Records a layer and holds it with `lease`, unless a racing process recorded it first: that
   * one is returned (and held). With a tmp dir, its diff/ becomes the layer's dir; 'deferred'
   * records it unextracted (its blob must be in the store).
   */
  private record(rec: Omit<LayerRecord, 'link' | 'created' | 'extracted'>, lease: Lease, dir: string | 'deferred'): LayerRecord {
    return this.store.writeTx(() => {
      const existing = this.get(rec.id);
      if (existing) {
        lease.hold('layer', rec.id);
        return existing;
      }
      if (rec.parent !== null && !this.get(rec.parent)) {
        throw new KilnError('E_LAYER_UNKNOWN', `parent layer ${rec.parent} of layer ${rec.id} is not in the store`);
      }
      if (dir === 'deferred' && !(rec.blobDigest && this.store.blobs.has(rec.blobDigest))) {
        throw new KilnError('E_BLOB_UNKNOWN', `blob ${rec.blobDigest} of layer ${rec.id} is not in the store`);
      }
      const link = newLink();
      if (dir !== 'deferred') this.install(dir, rec.id, link);
      // a deferred layer's link dangles until ensureChain makes its dir
      fs.symlinkSync(`../layers/${rec.id}/diff`, path.join(this.store.paths.links, link));
      const full: LayerRecord = { ...rec, link, created: Date.now(), extracted: dir === 'deferred' ? 0 : 1 };
      this.store.db
        .prepare(
          `INSERT INTO layers (id, parent, diff_id, blob_digest, compressed_size, uncompressed_size, link, created, extracted)
           VALUES (@id, @parent, @diffID, @blobDigest, @compressedSize, @uncompressedSize, @link, @created, @extracted)`,
        )
        .run(full);
      lease.hold('layer', rec.id);
      return full;
    });
  }

  /**
   * Inside a write transaction: renames the finished dir `tmp` into place as layer `id`'s dir.
   * Under the lock a dir already there is debris of a process killed after its rename (store.ts,
   * rule 2) or of a killed extraction of a deferred layer: it makes way, as repair() would
   * have removed it.
   */
  private install(tmp: string, id: string, link: string): void {
    fs.writeFileSync(path.join(tmp, 'link'), link);
    if (fs.existsSync(this.dir(id))) this.store.trash(this.dir(id), 'orphan', `layer-${id}`);
    fs.renameSync(tmp, this.dir(id));
  }
}
