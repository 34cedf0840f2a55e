/**
 * Image records: an image is its config digest (id), the exact manifest it came with, its
 * layer chain and the blobs it needs, plus names. A name belongs to at most one image: giving
 * it to another image moves it (podman's tag semantics). Removal deletes the record and then
 * garbage-collects the layers and blobs nothing else holds (see store.ts for the rules).
 */
import * as path from 'node:path';
import { KilnError } from '../errors';
import type { Digest } from '../util/digest';
import { hasExplicitDomain, parseName, formatName, repository } from '../image/reference';
import type { Store } from './store';
import { blobHeldSql, layerHeldSql } from './refs';

export interface ImageRecord {
  id: string;
  manifestDigest: Digest;
  manifestMediaType: string;
  configDigest: Digest;
  topLayer: string | null;
  size: number;
  created: number;
  added: number;
  names: string[];
  /** Every name the image has had: the current ones first, then earlier ones, newest first. */
  namesHistory: string[];
}

export interface NewImage {
  id: string;
  manifestDigest: Digest;
  manifestMediaType: string;
  configDigest: Digest;
  /**
   * Digests of manifests the image arrived as before manifestDigest, recorded first (a pull
   * that adopted stored layers records a manifest of its own; the registry's comes first).
   */
  arrivedAs?: Digest[];
  layers: string[];
  blobs: Digest[];
  size: number;
  created: number;
  names: string[];
}

export interface RemovedImage {
  id: string;
  untagged: string[];
  deleted: boolean;
  layers: string[];
  blobs: Digest[];
}

type Row = Omit<ImageRecord, 'names' | 'namesHistory'> & { names: string | null; namesHistory: string };

const SELECT = `SELECT i.id, i.manifest_digest AS manifestDigest, i.manifest_media_type AS manifestMediaType,
  i.config_digest AS configDigest, i.top_layer AS topLayer, i.size, i.created, i.added, i.names_history AS namesHistory,
  (SELECT group_concat(name, char(10)) FROM (SELECT name FROM image_names n WHERE n.image_id = i.id ORDER BY seq)) AS names
  FROM images i`;

function fromRow(r: Row): ImageRecord {
  const names = r.names ? r.names.split('\n') : [];
  const history = JSON.parse(r.namesHistory) as string[];
  // images stored before migration 2 have no history yet: their names are all it can know
  return { ...r, names, namesHistory: history.length ? history : names };
}

const FULL_ID = /^(?:sha256:)?([a-f0-9]{64})$/;
const ID_PREFIX = /^[a-f0-9]{3,63}$/;

export class ImageStore {
  constructor(private readonly store: Store) {}

  /** All images, most recently created first (podman's order). */
  list(): ImageRecord[] {
    return (this.store.db.prepare(`${SELECT} ORDER BY i.created DESC, i.id`).all() as Row[]).map(fromRow);
  }

  get(id: string): ImageRecord | undefined {
    const r = this.store.db.prepare(`${SELECT} WHERE i.id = ?`).get(id) as Row | undefined;
    return r && fromRow(r);
  }

  /** Looks an image up the way podman does; undefined when nothing matches. */
  find(ref: string): ImageRecord | undefined {
    const full = FULL_ID.exec(ref);
    if (full) return this.get(full[1]!);
    const db = this.store.db;
    let parsed;
    try {
      parsed = parseName(ref);
    } catch (e) {
      if (ID_PREFIX.test(ref)) return this.byPrefix(ref);
      throw e;
    }
    if (parsed.digest !== undefined) {
      // pulled by this digest (stored as repository@digest), else named in the repository and
      // arrived with a manifest of that digest
      const named = db.prepare('SELECT image_id AS id FROM image_names WHERE name = ?').get(formatName(parsed)) as { id: string } | undefined;
      if (named) return this.get(named.id);
      const rows = db
        .prepare(`SELECT DISTINCT i.id FROM images i JOIN image_names n ON n.image_id = i.id JOIN image_digests d ON d.image_id = i.id WHERE d.digest = ? AND (n.name LIKE ? || ':%' OR n.name = ?)`)
        .all(parsed.digest, repository(parsed), repository(parsed)) as { id: string }[];
      const explicit = rows[0] ?? (hasExplicitDomain(ref) ? undefined : this.shortDigestMatch(parsed.path, parsed.digest));
      return explicit && this.get(explicit.id);
    }
    const exact = db.prepare('SELECT image_id AS id FROM image_names WHERE name = ?').get(formatName(parsed)) as { id: string } | undefined;
    if (exact) return this.get(exact.id);
    if (!hasExplicitDomain(ref)) {
      const suffix = `/${parsed.path}:${parsed.tag ?? 'latest'}`;
      const m = db
        .prepare(`SELECT image_id AS id FROM image_names WHERE substr(name, -length(?)) = ? ORDER BY seq LIMIT 1`)
        .get(suffix, suffix) as { id: string } | undefined;
      if (m) return this.get(m.id);
    }
    if (ID_PREFIX.test(ref)) return this.byPrefix(ref);
    return undefined;
  }

  /** find() or E_IMAGE_UNKNOWN with podman's wording ("<ref>: image not known"). */
  resolve(ref: string): ImageRecord {
    const img = this.find(ref);
    if (!img) throw new KilnError('E_IMAGE_UNKNOWN', `${ref}: image not known`);
    return img;
  }

  private byPrefix(prefix: string): ImageRecord | undefined {
    const rows = this.store.db.prepare('SELECT id FROM images WHERE id >= ? AND id < ? LIMIT 2').all(prefix, `${prefix}g`) as { id: string }[];
    if (rows.length > 1) {
      throw new KilnError('E_INVALID_REFERENCE', `image ID prefix ${prefix} is ambiguous: it matches more than one image`, { hint: 'give more digits of the ID' });
    }
    return rows[0] && this.get(rows[0].id);
  }

  private shortDigestMatch(p: string, digest: string): { id: string } | undefined {
    return this.store.db
      .prepare(`SELECT DISTINCT i.id FROM images i JOIN image_names n ON n.image_id = i.id JOIN image_digests d ON d.image_id = i.id WHERE d.digest = ? AND n.name LIKE ?`)
      .get(digest, `%/${p}:%`) as { id: string } | undefined;
  }

  /** Digests of every manifest the image arrived with, first one first. */
  manifestDigests(id: string): Digest[] {
    return (this.store.db.prepare('SELECT digest FROM image_digests WHERE image_id = ? ORDER BY seq').all(id) as { digest: Digest }[]).map((r) => r.digest);
  }

  /** Ordered layer ids, bottom first. */
  layerIDs(id: string): string[] {
    return (this.store.db.prepare('SELECT layer_id AS l FROM image_layers WHERE image_id = ? ORDER BY idx').all(id) as { l: string }[]).map((r) => r.l);
  }

  /**
   * Records an image whose layers and blobs the caller's lease holds (so they cannot vanish
   * before this transaction); adds names if it already exists.
   * Names move from any other image. Returns whether the image is new.
   */
  create(img: NewImage): { image: ImageRecord; isNew: boolean } {
    const db = this.store.db;
    const isNew = this.store.writeTx(() => {
      for (const l of img.layers) if (!this.store.layers.get(l)) throw new KilnError('E_LAYER_UNKNOWN', `layer ${l} of image ${img.id} vanished from the store`);
      for (const b of img.blobs) if (!this.store.blobs.has(b)) throw new KilnError('E_BLOB_UNKNOWN', `blob ${b} of image ${img.id} vanished from the store`);
      const exists = db.prepare('SELECT 1 FROM images WHERE id = ?').get(img.id) !== undefined;
      if (!exists) {
        db.prepare(
          `INSERT INTO images (id, manifest_digest, manifest_media_type, config_digest, top_layer, size, created, added)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        ).run(img.id, img.manifestDigest, img.manifestMediaType, img.configDigest, img.layers[img.layers.length - 1] ?? null, img.size, img.created, Date.now());
        const insL = db.prepare('INSERT INTO image_layers (image_id, idx, layer_id) VALUES (?, ?, ?)');
        img.layers.forEach((l, i) => insL.run(img.id, i, l));
      }
      // The same image may arrive again with another manifest (other compression, OCI vs
      // Docker): its blobs belong to the image too, and its digest joins the RepoDigests.
      const insB = db.prepare('INSERT OR IGNORE INTO image_blobs (image_id, digest) VALUES (?, ?)');
      for (const b of img.blobs) insB.run(img.id, b);
      const insD = db.prepare('INSERT OR IGNORE INTO image_digests (image_id, digest, seq) VALUES (?, ?, (SELECT count(*) FROM image_digests WHERE image_id = ?))');
      for (const d of [...(img.arrivedAs ?? []), img.manifestDigest]) insD.run(img.id, d, img.id);
      for (const n of img.names) this.setNameTx(img.id, n);
      return !exists;
    });
    return { image: this.get(img.id)!, isNew };
  }

  /** Gives `name` (already normalised) to image `id`, taking it from any other image. */
  addName(id: string, name: string): void {
    this.store.writeTx(() => {
      if (!this.get(id)) throw new KilnError('E_IMAGE_UNKNOWN', `${id}: image not known`);
      this.setNameTx(id, name);
    });
  }

  private setNameTx(id: string, name: string): void {
    const db = this.store.db;
    const cur = db.prepare('SELECT image_id AS id FROM image_names WHERE name = ?').get(name) as { id: string } | undefined;
    if (cur?.id === id) return;
    // a name is an image's or a manifest list's, never both (store/manifest-lists.ts)
    if (db.prepare('SELECT 1 FROM manifest_lists WHERE name = ?').get(name) !== undefined) {
      throw new KilnError('E_NAME_IN_USE', `the name ${name} is already used by a manifest list`, {
        hint: 'choose another name, or remove the list first (kiln manifest rm)',
      });
    }
    if (cur) db.prepare('DELETE FROM image_names WHERE name = ?').run(name);
    const seq = (db.prepare('SELECT coalesce(max(seq), 0) + 1 AS s FROM image_names').get() as { s: number }).s;
    db.prepare('INSERT INTO image_names (name, image_id, seq) VALUES (?, ?, ?)').run(name, id, seq);
    this.updateHistoryTx(id);
    if (cur) this.updateHistoryTx(cur.id);
  }

  /** As containers/storage does on every change of names: history = current names ++ history, de-duplicated. */
  private updateHistoryTx(id: string): void {
    const img = this.get(id);
    if (!img) return;
    const history = [...new Set([...img.names, ...img.namesHistory])];
    this.store.db.prepare('UPDATE images SET names_history = ? WHERE id = ?').run(JSON.stringify(history), id);
  }

  /** Removes a name; false if the image did not have it. */
  removeName(id: string, name: string): boolean {
    return this.store.writeTx(() => {
      const removed = this.store.db.prepare('DELETE FROM image_names WHERE name = ? AND image_id = ?').run(name, id).changes > 0;
      if (removed) this.updateHistoryTx(id);
      return removed;
    });
  }

  /** Containers using the image (their ids). */
  containersUsing(id: string): string[] {
    return (this.store.db.prepare('SELECT id FROM containers WHERE image_id = ?').all(id) as { id: string }[]).map((r) => r.id);
  }

  /**
   * Deletes the image record (all names) and garbage-collects its layers and blobs that nothing
   * else holds; files are removed after the transaction commits. Refuses if a container uses it
   * or it is mounted, unless `force` (which also deletes those container records and unmounts it).
   */
  async remove(id: string, force: boolean): Promise<RemovedImage> {
    const result = this.store.writeTx(() => this.removeTx(id, force));
    await this.store.emptyTrash();
    return result;
  }

  /** Inside writeTx: remove() without emptying the trash (the caller does, after commit). */
  removeTx(id: string, force: boolean): RemovedImage {
    const img = this.get(id);
    if (!img) throw new KilnError('E_IMAGE_UNKNOWN', `${id}: image not known`);
    const users = this.containersUsing(id);
    if (users.length > 0 && !force) {
      throw new KilnError('E_IMAGE_IN_USE', `image ${id.slice(0, 12)} is in use by container(s) ${users.map((c) => c.slice(0, 12)).join(', ')}`, {
        hint: 'remove the containers first, or use --force',
      });
    }
    const db = this.store.db;
    const layers = this.layerIDs(id).reverse();
    const top = layers[0];
    // Mounts are per layer: only a mount of a layer no other image uses keeps this image.
    if (top !== undefined) this.store.mounts.dropStale(top);
    const shared = top !== undefined && db.prepare('SELECT 1 FROM image_layers WHERE layer_id = ? AND image_id != ?').get(top, id) !== undefined;
    if (top !== undefined && !shared && this.store.mounts.holders(top).length > 0) {
      if (!force) {
        throw new KilnError('E_IMAGE_IN_USE', `image ${id.slice(0, 12)} is mounted at ${this.store.mounts.target(top)}`, {
          hint: 'unmount it first (kiln image unmount), or use --force',
        });
      }
      this.store.mounts.releaseTx(top, '', true);
    }
    const blobs = (db.prepare('SELECT digest FROM image_blobs WHERE image_id = ?').all(id) as { digest: Digest }[]).map((r) => r.digest);
    if (users.length > 0) db.prepare('DELETE FROM containers WHERE image_id = ?').run(id);
    db.prepare('DELETE FROM images WHERE id = ?').run(id);
    const gone = this.collectTx(layers, blobs);
    return { id, untagged: img.names, deleted: true, ...gone };
  }

  /** Inside writeTx: deletes the candidate layers (top first) and blobs nothing holds. */
  collectTx(layerCandidates: string[], blobCandidates: Digest[]): { layers: string[]; blobs: Digest[] } {
    const db = this.store.db;
    const layerHeld = db.prepare(
      `SELECT ${layerHeldSql('@id')} AS held`,
    );
    const blobHeld = db.prepare(
      `SELECT ${blobHeldSql('@d')} AS held`,
    );
    const removedLayers: string[] = [];
    for (const l of layerCandidates) {
      const rec = this.store.layers.get(l);
      if (!rec || (layerHeld.get({ id: l }) as { held: number }).held) continue;
      db.prepare('DELETE FROM layers WHERE id = ?').run(l);
      this.store.trash(this.store.layers.dir(l), 'layer', l);
      this.store.trash(path.join(this.store.paths.links, rec.link), 'link', rec.link);
      removedLayers.push(l);
    }
    const removedBlobs: Digest[] = [];
    for (const b of new Set(blobCandidates)) {
      if ((blobHeld.get({ d: b }) as { held: number }).held || !this.store.blobs.has(b)) continue;
      db.prepare('DELETE FROM blobs WHERE digest = ?').run(b);
      this.store.trash(this.store.blobs.path(b), 'blob', b.slice(7));
      removedBlobs.push(b);
    }
    return { layers: removedLayers, blobs: removedBlobs };
  }
}
