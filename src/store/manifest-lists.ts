/**
 * Manifest lists (podman's `manifest create/add/rm`): a named, ordered set of entries, each
 * referencing a stored image's manifest by digest with the platform the list records for it.
 * The index JSON is not stored: it is made from the entries when it is shown or pushed
 * (image/list-index.ts), so it always says what the entries say.
 *
 * Rules (enforced in write transactions, so concurrent kiln processes cannot break them):
 *   - a list's name is normalised (localhost/…:latest) and is never also an image's name:
 *     creating a list under an image's name fails, and so does giving an image a list's name
 *     (ImageStore.setNameTx checks);
 *   - a list does not hold its images: they can be removed (podman allows it too); whoever
 *     pushes the list must check that every entry's image and blobs are still there;
 *   - an entry is unique per manifest digest: adding the same manifest again replaces its
 *     platform in place.
 */
import { randomBytes } from 'node:crypto';
import { KilnError } from '../errors';
import type { Digest } from '../util/digest';
import { hasExplicitDomain, normalizeName, parseName } from '../image/reference';
import type { Store } from './store';

export interface ListPlatform {
  architecture: string;
  os: string;
  variant?: string;
}

export interface ListEntry {
  digest: Digest;
  mediaType: string;
  size: number;
  /** the stored image whose manifest this is (it may since have been removed) */
  imageId: string;
  platform: ListPlatform;
}

export interface ManifestListRecord {
  id: string;
  name: string;
  created: number;
  entries: ListEntry[];
}

const FULL_ID = /^(?:sha256:)?([a-f0-9]{64})$/;
const ID_PREFIX = /^[a-f0-9]{3,63}$/;

type EntryRow = Omit<ListEntry, 'platform'> & { platform: string };

export class ManifestListStore {
  constructor(private readonly store: Store) {}

  get(id: string): ManifestListRecord | undefined {
    const row = this.store.db.prepare('SELECT id, name, created FROM manifest_lists WHERE id = ?').get(id) as Omit<ManifestListRecord, 'entries'> | undefined;
    if (!row) return undefined;
    const entries = (
      this.store.db
        .prepare('SELECT digest, media_type AS mediaType, size, image_id AS imageId, platform FROM manifest_list_entries WHERE list_id = ? ORDER BY idx')
        .all(id) as EntryRow[]
    ).map((e) => ({ ...e, platform: JSON.parse(e.platform) as ListPlatform }));
    return { ...row, entries };
  }

  /**
   * Looks a list up as podman looks up an image: its full ID or an unambiguous ID prefix, its
   * name, or (for a name without a registry) the list whose name ends in "/path:tag".
   */
  find(ref: string): ManifestListRecord | undefined {
    const db = this.store.db;
    const full = FULL_ID.exec(ref);
    if (full) return this.get(full[1]!);
    let name: string | undefined;
    try {
      name = normalizeName(ref);
    } catch (e) {
      if (!ID_PREFIX.test(ref)) throw e;
    }
    if (name !== undefined) {
      const exact = db.prepare('SELECT id FROM manifest_lists WHERE name = ?').get(name) as { id: string } | undefined;
      if (exact) return this.get(exact.id);
      if (!hasExplicitDomain(ref)) {
        const r = parseName(ref);
        const suffix = `/${r.path}:${r.tag ?? 'latest'}`;
        const m = db.prepare('SELECT id FROM manifest_lists WHERE substr(name, -length(?)) = ? ORDER BY name LIMIT 1').get(suffix, suffix) as { id: string } | undefined;
        if (m) return this.get(m.id);
      }
    }
    if (ID_PREFIX.test(ref)) {
      const rows = db.prepare('SELECT id FROM manifest_lists WHERE id >= ? AND id < ? LIMIT 2').all(ref, `${ref}g`) as { id: string }[];
      if (rows.length > 1) throw new KilnError('E_INVALID_REFERENCE', `manifest list ID prefix ${ref} is ambiguous`, { hint: 'give more digits of the ID' });
      return rows[0] && this.get(rows[0].id);
    }
    return undefined;
  }

  /**
   * Creates the list `name` (already normalised) with `entries`. Fails with E_NAME_IN_USE when
   * an image or another list has that name.
   */
  create(name: string, entries: ListEntry[]): ManifestListRecord {
    const id = randomBytes(32).toString('hex');
    this.store.writeTx(() => {
      const img = this.store.db.prepare('SELECT image_id AS id FROM image_names WHERE name = ?').get(name) as { id: string } | undefined;
      if (img) {
        throw new KilnError('E_NAME_IN_USE', `cannot create manifest list ${name}: the name is already used by image ${img.id.slice(0, 12)}`, {
          hint: 'choose another name for the list, or remove that name from the image (kiln untag)',
        });
      }
      const other = this.store.db.prepare('SELECT id FROM manifest_lists WHERE name = ?').get(name) as { id: string } | undefined;
      if (other) {
        throw new KilnError('E_NAME_IN_USE', `cannot create manifest list ${name}: a manifest list with that name already exists (ID ${other.id.slice(0, 12)})`, {
          hint: 'add images to it with `kiln manifest add`, use `kiln manifest create --amend`, or remove it with `kiln manifest rm`',
        });
      }
      this.store.db.prepare('INSERT INTO manifest_lists (id, name, created) VALUES (?, ?, ?)').run(id, name, Date.now());
      for (const e of entries) this.putEntryTx(id, e);
    });
    return this.get(id)!;
  }

  /** Adds entries to list `id` (an entry with the same manifest digest is replaced in place). */
  add(id: string, entries: ListEntry[]): ManifestListRecord {
    this.store.writeTx(() => {
      if (!this.store.db.prepare('SELECT 1 FROM manifest_lists WHERE id = ?').get(id)) throw this.vanished(id);
      for (const e of entries) this.putEntryTx(id, e);
    });
    return this.get(id)!;
  }

  /** Removes the entry for manifest `digest` from list `id`; false if the list has none. */
  removeEntry(id: string, digest: Digest): boolean {
    return this.store.writeTx(() => {
      if (!this.store.db.prepare('SELECT 1 FROM manifest_lists WHERE id = ?').get(id)) throw this.vanished(id);
      return this.store.db.prepare('DELETE FROM manifest_list_entries WHERE list_id = ? AND digest = ?').run(id, digest).changes > 0;
    });
  }

  /** Deletes list `id` and its entries (never the images); false if it did not exist. */
  remove(id: string): boolean {
    return this.store.writeTx(() => this.store.db.prepare('DELETE FROM manifest_lists WHERE id = ?').run(id).changes > 0);
  }

  private putEntryTx(id: string, e: ListEntry): void {
    const db = this.store.db;
    const platform = JSON.stringify(e.platform);
    const updated = db
      .prepare('UPDATE manifest_list_entries SET media_type = ?, size = ?, image_id = ?, platform = ? WHERE list_id = ? AND digest = ?')
      .run(e.mediaType, e.size, e.imageId, platform, id, e.digest).changes;
    if (updated > 0) return;
    db.prepare(
      `INSERT INTO manifest_list_entries (list_id, idx, digest, media_type, size, image_id, platform)
       VALUES (?, (SELECT coalesce(max(idx), -1) + 1 FROM manifest_list_entries WHERE list_id = ?), ?, ?, ?, ?, ?)`,
    ).run(id, id, e.digest, e.mediaType, e.size, e.imageId, platform);
  }

  private vanished(id: string): KilnError {
    return new KilnError('E_IMAGE_UNKNOWN', `manifest list ${id.slice(0, 12)} was removed meanwhile`);
  }
}
