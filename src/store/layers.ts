/**
 * Layers: each one extracted into its own layers/<id>/diff (an overlay lowerdir; whiteouts
 * already translated to overlay form), id = the layer's chainID hex, so the same content on the
 * same parent chain is stored once. l/<link> is a short symlink to the diff dir so that overlay
 * mount options stay under the page-size limit with many layers (as containers/storage does).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { KilnError } from '../errors';
import { sha256, type Digest } from '../util/digest';
import { HashCounter, checkExpected, tempName } from '../util/blobfile';
import { MT } from '../image/oci';
import type { Store } from './store';
import type { Lease } from './lease';
import type { BlobRecord } from './blobs';
import type { ExtractRequest, ExtractResult } from '../layer/extract';

export interface PreparedLayer {
  tmp: string;
  diffID: Digest;
  blob: BlobRecord;
  tarSize: number;
}

export interface LayerRecord {
  id: string;
  parent: string | null;
  diffID: Digest;
  blobDigest: Digest | null;
  compressedSize: number | null;
  uncompressedSize: number;
  link: string;
  created: number;
}

const COLS = `id, parent, diff_id AS diffID, blob_digest AS blobDigest, compressed_size AS compressedSize,
  uncompressed_size AS uncompressedSize, link, created`;

/** The chainID hex of a layer with `diffID` on top of the layer `parent` (a chainID hex). */
export function layerID(parent: string | null, diffID: Digest): string {
  return (parent === null ? diffID : sha256(`sha256:${parent} ${diffID}`)).slice(7);
}

/**
 * Extraction and compression code is loaded on first use: most commands (images, inspect,
 * tag) open the store without touching a layer, and their start-up time matters.
 */
function layerCode(): { apply: typeof import('../layer/apply'); decompress: typeof import('../layer/decompress'); zlib: typeof import('node:zlib') } {
  return { apply: require('../layer/apply'), decompress: require('../layer/decompress'), zlib: require('node:zlib') };
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

  list(): LayerRecord[] {
    return this.store.db.prepare(`SELECT ${COLS} FROM layers`).all() as LayerRecord[];
  }

  dir(id: string): string {
    return path.join(this.store.paths.layers, id);
  }

  diffDir(id: string): string {
    return path.join(this.store.paths.layers, id, 'diff');
  }

  /** Lower dirs for an overlay mount of `id`, topmost first, as short l/<link> paths relative to root. */
  lowerChain(id: string): string[] {
    const out: string[] = [];
    for (let cur: string | null = id; cur !== null; ) {
      const l = this.require(cur);
      out.push(`l/${l.link}`);
      cur = l.parent;
    }
    return out;
  }

  /**
   * Extracts a stored blob into a private tmp dir on the worker pool and verifies that its
   * uncompressed digest is `diffID`. Safe to run for several layers at once; commit the results
   * bottom-up with commitPrepared (or discard them).
   */
  async prepareFromBlob(blob: BlobRecord, diffID: Digest, what: string): Promise<PreparedLayer> {
    const tmp = this.store.tempDir('layer');
    try {
      const diff = path.join(tmp, 'diff');
      fs.mkdirSync(diff);
      const { runInWorker } = require('../util/pool') as typeof import('../util/pool');
      const r = await runInWorker<ExtractRequest, ExtractResult>('extract-layer', { blobPath: this.store.blobs.path(blob.digest), dest: diff, what });
      checkExpected({ digest: r.diffID, size: r.tarSize }, { digest: diffID, what: `${what} (uncompressed)` });
      return { tmp, diffID, blob, tarSize: r.tarSize };
    } catch (e) {
      fs.rmSync(tmp, { recursive: true, force: true });
      throw e;
    }
  }

  /** Records a prepared layer on `parent` (or returns the one a racing process stored first). */
  commitPrepared(p: PreparedLayer, parent: string | null, lease: Lease): LayerRecord {
    try {
      return this.commit(p.tmp, { id: layerID(parent, p.diffID), parent, diffID: p.diffID, blobDigest: p.blob.digest, compressedSize: p.blob.size, uncompressedSize: p.tarSize }, lease);
    } finally {
      this.discard(p);
    }
  }

  discard(p: PreparedLayer): void {
    fs.rmSync(p.tmp, { recursive: true, force: true });
  }

  /** The layer `id` if the store has it, held by the lease. */
  holdIfPresent(id: string, lease: Lease): LayerRecord | undefined {
    return this.store.writeTx(() => {
      const l = this.get(id);
      if (l) lease.hold('layer', id);
      return l;
    });
  }

  /**
   * One pass over a layer tar (plain or compressed): extracts it on `parent`, computes its
   * diffID, and stores it as a blob — gzip-compressed when `compress` is 'gzip', else as plain
   * tar. Used by import (and build), where no blob exists yet.
   */
  async ingestTar(src: Readable, parent: string | null, compress: 'gzip' | 'none', lease: Lease, what: string): Promise<{ layer: LayerRecord; blob: BlobRecord }> {
    const { apply, decompress, zlib } = layerCode();
    const tmp = this.store.tempDir('layer');
    try {
      const diff = path.join(tmp, 'diff');
      fs.mkdirSync(diff);
      const tar = await decompress.decompressStream(src);
      const diffCounter = new HashCounter();
      const toApply = new PassThrough({ highWaterMark: 1 << 20 });
      const toBlob = new PassThrough({ highWaterMark: 1 << 20 });
      const blobCounter = new HashCounter();
      const blobTmp = tempName(this.store.workDir());
      const out = fs.createWriteStream(blobTmp, { flags: 'wx' });
      const blobDone = compress === 'gzip' ? pipeline(toBlob, zlib.createGzip({ level: 6 }), blobCounter, out) : pipeline(toBlob, blobCounter, out);
      const applied = apply.applyLayerTar(toApply, diff, { what });
      const fanOut = pipeline(tar, diffCounter, async function* (chunks: AsyncIterable<Buffer>) {
        for await (const c of chunks) {
          const a = toApply.write(c);
          const b = toBlob.write(c);
          if (!a) await new Promise((r) => toApply.once('drain', r));
          if (!b) await new Promise((r) => toBlob.once('drain', r));
        }
        toApply.end();
        toBlob.end();
      });
      try {
        await Promise.all([fanOut, applied, blobDone]);
      } catch (e) {
        toApply.destroy();
        toBlob.destroy();
        fs.rmSync(blobTmp, { force: true });
        throw e;
      }
      const fd = fs.openSync(blobTmp, 'r');
      fs.fsyncSync(fd);
      fs.closeSync(fd);
      const mediaType = compress === 'gzip' ? MT.ociLayerGzip : MT.ociLayer;
      const blob = this.store.blobs.commitTemp(blobTmp, blobCounter.digest(), blobCounter.size, lease, mediaType);
      const diffID = diffCounter.digest();
      const id = layerID(parent, diffID);
      const existing = this.holdIfPresent(id, lease);
      if (existing) return { layer: existing, blob };
      const layer = this.commit(tmp, { id, parent, diffID, blobDigest: blob.digest, compressedSize: blob.size, uncompressedSize: diffCounter.size }, lease);
      return { layer, blob };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }


  /** Renames a finished tmp layer dir into place and records it, unless a racing process won. */
  private commit(tmp: string, rec: Omit<LayerRecord, 'link' | 'created'>, lease: Lease): LayerRecord {
    return this.store.writeTx(() => {
      const existing = this.get(rec.id);
      if (existing) {
        lease.hold('layer', rec.id);
        return existing;
      }
      if (rec.parent !== null && !this.get(rec.parent)) {
        throw new KilnError('E_LAYER_UNKNOWN', `parent layer ${rec.parent} of layer ${rec.id} is not in the store`);
      }
      const link = newLink();
      fs.writeFileSync(path.join(tmp, 'link'), link);
      fs.renameSync(tmp, this.dir(rec.id));
      fs.symlinkSync(`../layers/${rec.id}/diff`, path.join(this.store.paths.links, link));
      const full: LayerRecord = { ...rec, link, created: Date.now() };
      this.store.db
        .prepare(
          `INSERT INTO layers (id, parent, diff_id, blob_digest, compressed_size, uncompressed_size, link, created)
           VALUES (@id, @parent, @diffID, @blobDigest, @compressedSize, @uncompressedSize, @link, @created)`,
        )
        .run(full);
      lease.hold('layer', rec.id);
      return full;
    });
  }
}
