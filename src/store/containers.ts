/**
 * Container records (containers/storage's Container, with libpod's config and state folded
 * in): id, unique name, the image and its top layer (which keeps them from being removed, see
 * refs.ts and ImageStore.remove), and the JSON config/state of container/types.ts.
 *
 * Lookup is podman's: a full ID, a name, or a unique ID prefix. Every change of state goes
 * through update(), a read-modify-write under the store's write lock, so two kiln processes
 * (a `kiln stop` and conmon's exit command, say) never lose each other's change.
 */
import { randomBytes } from 'node:crypto';
import { KilnError } from '../errors';
import type { ContainerConfig, ContainerRecord, ContainerState } from '../container/types';
import type { Store } from './store';

interface Row {
  id: string;
  name: string;
  imageID: string;
  layerID: string | null;
  created: number;
  config: string;
  state: string;
}

const SELECT = 'SELECT id, name, image_id AS imageID, layer_id AS layerID, created, config, state FROM containers';
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function fromRow(r: Row): ContainerRecord {
  return { id: r.id, name: r.name, imageID: r.imageID, layerID: r.layerID, created: r.created, config: JSON.parse(r.config) as ContainerConfig, state: JSON.parse(r.state) as ContainerState };
}

/** Docker's name generator is whimsical; kiln's is plain: adjective_noun like podman's, from a short list. */
const ADJECTIVES = ['brave', 'calm', 'eager', 'fancy', 'gentle', 'happy', 'jolly', 'keen', 'lucid', 'merry', 'nifty', 'proud', 'quirky', 'sharp', 'tender', 'vivid', 'witty', 'zealous'];
const NOUNS = ['albattani', 'babbage', 'curie', 'darwin', 'euler', 'fermat', 'galileo', 'hopper', 'jennings', 'kepler', 'lovelace', 'mendel', 'newton', 'pascal', 'ritchie', 'shannon', 'turing', 'wozniak'];

export class ContainerStore {
  constructor(private readonly store: Store) {}

  list(): ContainerRecord[] {
    return (this.store.db.prepare(`${SELECT} ORDER BY created DESC, id`).all() as Row[]).map(fromRow);
  }

  get(id: string): ContainerRecord | undefined {
    const r = this.store.db.prepare(`${SELECT} WHERE id = ?`).get(id) as Row | undefined;
    return r && fromRow(r);
  }

  /** A full ID, a name, or a unique ID prefix; undefined when nothing matches. */
  find(ref: string): ContainerRecord | undefined {
    const db = this.store.db;
    const exact = db.prepare(`${SELECT} WHERE id = ? OR name = ?`).get(ref, ref) as Row | undefined;
    if (exact) return fromRow(exact);
    if (!/^[0-9a-f]{1,63}$/.test(ref)) return undefined;
    const rows = db.prepare(`${SELECT} WHERE id >= ? AND id < ? LIMIT 2`).all(ref, `${ref}g`) as Row[];
    if (rows.length > 1) throw new KilnError('E_INVALID_REFERENCE', `container ID prefix ${ref} is ambiguous: it matches more than one container`, { hint: 'give more digits of the ID, or the name' });
    return rows[0] && fromRow(rows[0]);
  }

  /** find() or E_CONTAINER_UNKNOWN with podman's wording. */
  resolve(ref: string): ContainerRecord {
    const c = this.find(ref);
    if (!c) throw new KilnError('E_CONTAINER_UNKNOWN', `no container with name or ID "${ref}" found: no such container`);
    return c;
  }

  /** A name no container has (adjective_noun, with a number when those are taken). */
  freeName(): string {
    for (let i = 0; ; i++) {
      const b = randomBytes(2);
      const n = `${ADJECTIVES[b[0]! % ADJECTIVES.length]}_${NOUNS[b[1]! % NOUNS.length]}${i >= 20 ? i : ''}`;
      if (!this.store.db.prepare('SELECT 1 FROM containers WHERE name = ?').get(n)) return n;
    }
  }

  /**
   * Records a new container (inside the caller's writeTx, so its rootfs dirs and the record
   * appear together). The image must exist; the name must be free and valid.
   */
  createTx(c: { id: string; name: string; imageID: string; layerID: string | null; config: ContainerConfig; state: ContainerState }): ContainerRecord {
    const db = this.store.db;
    if (!NAME.test(c.name)) throw new KilnError('E_INVALID_ARGUMENT', `container name ${JSON.stringify(c.name)} is invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`);
    const taken = db.prepare('SELECT id FROM containers WHERE name = ?').get(c.name) as { id: string } | undefined;
    if (taken) {
      throw new KilnError('E_NAME_IN_USE', `creating container storage: the container name "${c.name}" is already in use by ${taken.id}. You have to remove that container to be able to reuse that name: that name is already in use`);
    }
    if (!this.store.images.get(c.imageID)) throw new KilnError('E_IMAGE_UNKNOWN', `image ${c.imageID} vanished while its container was created`);
    const created = Date.now();
    db.prepare('INSERT INTO containers (id, name, image_id, layer_id, created, config, state) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(c.id, c.name, c.imageID, c.layerID, created, JSON.stringify(c.config), JSON.stringify(c.state));
    return { ...c, created };
  }

  /**
   * Changes a container's state under the write lock: `fn` gets the current state (read inside
   * the transaction) and returns the new one, or undefined to leave it. Returns the record after.
   */
  update(id: string, fn: (s: ContainerState, c: ContainerRecord) => ContainerState | undefined): ContainerRecord {
    return this.store.writeTx(() => this.updateTx(id, fn));
  }

  updateTx(id: string, fn: (s: ContainerState, c: ContainerRecord) => ContainerState | undefined): ContainerRecord {
    const c = this.get(id);
    if (!c) throw new KilnError('E_CONTAINER_UNKNOWN', `no container with ID "${id}" found: no such container`);
    const next = fn(c.state, c);
    if (next === undefined) return c;
    this.store.db.prepare('UPDATE containers SET state = ? WHERE id = ?').run(JSON.stringify(next), id);
    return { ...c, state: next };
  }

  /** Deletes the record (inside the caller's writeTx); its volume uses go with it (cascade). */
  removeTx(id: string): void {
    this.store.db.prepare('DELETE FROM containers WHERE id = ?').run(id);
  }
}
