/**
 * Named volumes (podman's local driver): a row in `volumes` and a directory
 * <root>/volumes/<name>/ whose `_data` is what containers mount. `container_volumes` says which
 * containers use a volume; a used volume cannot be removed (the foreign key enforces it too).
 *
 * Rules (the store's, see store.ts):
 *  - Creating happens inside the caller's writeTx: the directory is made first, then the row is
 *    inserted; if the insert throws, the directory is removed. So under the write lock a volume
 *    directory without a row is debris (of a killed process, or of an enclosing transaction
 *    that rolled back after createTx) and createTx replaces it.
 *  - Removing happens inside the caller's writeTx: the row goes first, then the directory is
 *    moved into the work dir's trash (the move is undone if the transaction rolls back); the
 *    caller empties the trash after commit.
 *  - `filled` is set once the volume's first user had its chance to copy image content up
 *    (podman's NeedsCopyUp turning false), whether or not anything was copied.
 *
 * Options are kept as podman records them (user keys plus the UID/GID/NOQUOTA it derives from
 * `o`). Whether the volume is anonymous has no column: it is kept in the options JSON under the
 * reserved key `kiln.anonymous`, which no user option can have (option keys are validated) and
 * which `options` never shows.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import type { Store } from './store';

export interface VolumeRecord {
  name: string;
  driver: string;
  /** ms epoch */
  created: number;
  labels: Record<string, string>;
  /** as recorded (the reserved kiln.* keys removed) */
  options: Record<string, string>;
  /** made for one container (`-v /dst`, an image VOLUME): podman removes it with that container */
  anonymous: boolean;
  /** image content was offered to it once (podman's NeedsCopyUp is !filled) */
  filled: boolean;
}

export interface NewVolume {
  name: string;
  driver?: string;
  labels?: Record<string, string>;
  options?: Record<string, string>;
  anonymous?: boolean;
  /** owner of the volume dirs (podman's -o o=uid=N,gid=M) */
  uid?: number;
  gid?: number;
}

interface Row {
  name: string;
  driver: string;
  created: number;
  labels: string;
  options: string;
  filled: number;
}

/** podman's volume name rule. */
export const VOLUME_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const ANON_KEY = 'kiln.anonymous';
const SELECT = 'SELECT name, driver, created, labels, options, filled FROM volumes';

function fromRow(r: Row): VolumeRecord {
  const options = JSON.parse(r.options) as Record<string, string>;
  const anonymous = options[ANON_KEY] === 'true';
  for (const k of Object.keys(options)) if (k.startsWith('kiln.')) delete options[k];
  return { name: r.name, driver: r.driver, created: r.created, labels: JSON.parse(r.labels) as Record<string, string>, options, anonymous, filled: r.filled !== 0 };
}

export class VolumeStore {
  constructor(private readonly store: Store) {}

  /** <root>/volumes/<name> (holds _data). */
  dir(name: string): string {
    return path.join(this.store.paths.volumes, name);
  }

  /** <root>/volumes/<name>/_data: what a container mounts. */
  dataPath(name: string): string {
    return path.join(this.dir(name), '_data');
  }

  /** All volumes, by name. */
  list(): VolumeRecord[] {
    return (this.store.db.prepare(`${SELECT} ORDER BY name`).all() as Row[]).map(fromRow);
  }

  get(name: string): VolumeRecord | undefined {
    const r = this.store.db.prepare(`${SELECT} WHERE name = ?`).get(name) as Row | undefined;
    return r && fromRow(r);
  }

  /**
   * podman's LookupVolume: the exact name, else the one volume whose name starts with `ref`.
   * Undefined when none; E_INVALID_REFERENCE (podman's wording) when several match.
   */
  find(ref: string): VolumeRecord | undefined {
    const exact = this.get(ref);
    if (exact || ref === '') return exact;
    const rows = (this.store.db.prepare(`${SELECT} WHERE substr(name, 1, ?) = ? LIMIT 2`).all(ref.length, ref) as Row[]);
    if (rows.length > 1) throw new KilnError('E_INVALID_REFERENCE', `more than one result for volume name "${ref}": volume already exists`, { hint: 'give the full volume name' });
    return rows[0] && fromRow(rows[0]);
  }

  /** find(), or E_VOLUME_UNKNOWN with podman's wording. */
  resolve(ref: string): VolumeRecord {
    const v = this.find(ref);
    if (!v) throw new KilnError('E_VOLUME_UNKNOWN', `no volume with name "${ref}" found: no such volume`);
    return v;
  }

  /** IDs of the containers that use the volume (each once, in ID order). */
  usersOf(name: string): string[] {
    return (this.store.db.prepare('SELECT DISTINCT container_id AS id FROM container_volumes WHERE volume = ? ORDER BY container_id').all(name) as { id: string }[]).map((r) => r.id);
  }

  /** Names of the volumes some container uses. */
  usedNames(): Set<string> {
    return new Set((this.store.db.prepare('SELECT DISTINCT volume FROM container_volumes').all() as { volume: string }[]).map((r) => r.volume));
  }

  /**
   * Inside the caller's writeTx: makes the directories (<name> 0700, _data 0755, owned by
   * uid:gid when given), then inserts the row; the directories go again if the insert fails.
   * A directory left without a row (debris, see the module comment) is trashed first.
   * E_NAME_IN_USE if the volume exists; E_INVALID_ARGUMENT for a bad name.
   */
  createTx(v: NewVolume): VolumeRecord {
    if (!VOLUME_NAME.test(v.name)) {
      throw new KilnError('E_INVALID_ARGUMENT', `volume name ${JSON.stringify(v.name)} is invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument`);
    }
    if (this.get(v.name)) throw new KilnError('E_NAME_IN_USE', `volume with name ${v.name} already exists: volume already exists`);
    const dir = this.dir(v.name);
    const data = this.dataPath(v.name);
    fs.mkdirSync(this.store.paths.volumes, { recursive: true, mode: 0o700 });
    try {
      fs.mkdirSync(dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      this.store.trash(dir, 'orphan', `volume-${v.name}`);
      fs.mkdirSync(dir, { mode: 0o700 });
    }
    const record: VolumeRecord = {
      name: v.name,
      driver: v.driver ?? 'local',
      created: Date.now(),
      labels: { ...(v.labels ?? {}) },
      options: { ...(v.options ?? {}) },
      anonymous: v.anonymous === true,
      filled: false,
    };
    try {
      fs.mkdirSync(data, { mode: 0o755 });
      fs.chmodSync(dir, 0o700); // mkdir's mode is masked by the umask
      fs.chmodSync(data, 0o755);
      if (v.uid !== undefined || v.gid !== undefined) {
        for (const d of [dir, data]) fs.chownSync(d, v.uid ?? 0, v.gid ?? 0);
      }
      const stored = record.anonymous ? { ...record.options, [ANON_KEY]: 'true' } : record.options;
      this.store.db
        .prepare('INSERT INTO volumes (name, driver, created, labels, options, filled) VALUES (?, ?, ?, ?, ?, 0)')
        .run(record.name, record.driver, record.created, JSON.stringify(record.labels), JSON.stringify(stored));
    } catch (e) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw e;
    }
    return record;
  }

  /**
   * Inside the caller's writeTx: deletes the row, then trashes the directory (the caller runs
   * store.emptyTrash() after commit). E_VOLUME_IN_USE (podman's wording) while a container
   * uses it; E_VOLUME_UNKNOWN if there is no such volume.
   */
  removeTx(name: string): void {
    const users = this.usersOf(name);
    if (users.length > 0) {
      throw new KilnError('E_VOLUME_IN_USE', `volume ${name} is being used by the following container(s): ${users.join(', ')}: volume is being used`, {
        hint: `remove the container(s) first, or use --force to remove them with the volume`,
      });
    }
    const r = this.store.db.prepare('DELETE FROM volumes WHERE name = ?').run(name);
    if (r.changes === 0) throw new KilnError('E_VOLUME_UNKNOWN', `no volume with name "${name}" found: no such volume`);
    this.store.trash(this.dir(name), 'orphan', `volume-${name}`);
  }

  /** Inside a writeTx: records that the volume had its copy-up chance. */
  markFilledTx(name: string): void {
    this.store.db.prepare('UPDATE volumes SET filled = 1 WHERE name = ?').run(name);
  }

  /**
   * Inside a writeTx: records that `containerId` mounts `volume` at `destination` (replacing
   * what that container had there). E_VOLUME_UNKNOWN if the volume does not exist; the
   * container row must exist (foreign key).
   */
  recordUseTx(containerId: string, volume: string, destination: string): void {
    if (!this.get(volume)) throw new KilnError('E_VOLUME_UNKNOWN', `no volume with name "${volume}" found: no such volume`);
    this.store.db.prepare('INSERT OR REPLACE INTO container_volumes (container_id, volume, destination) VALUES (?, ?, ?)').run(containerId, volume, destination);
  }
}
