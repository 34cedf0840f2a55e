/**
 * A lease holds blobs and layers against garbage collection while an operation that has
 * written or reused them has not yet tied them to an image (BuildKit's content leases).
 * Leases belong to a process ("<pid>-<starttime>"); repair() drops leases of dead processes.
 */
import { randomBytes } from 'node:crypto';
import type { Store } from './store';
import { selfOwner } from '../util/proc';

export class Lease {
  private constructor(private readonly store: Store, readonly id: string) {}

  static create(store: Store): Lease {
    const id = randomBytes(12).toString('hex');
    store.workDir(); // a lease's owner always has a work dir, so its death is noticed (repair.ts)
    store.writeTx(() => {
      store.db.prepare('INSERT INTO leases (id, owner, created) VALUES (?, ?, ?)').run(id, selfOwner(), Date.now());
    });
    return new Lease(store, id);
  }

  /** Inside a write transaction: holds a blob or layer. */
  hold(kind: 'blob' | 'layer', ref: string): void {
    this.store.db.prepare('INSERT OR IGNORE INTO lease_refs (lease_id, kind, ref) VALUES (?, ?, ?)').run(this.id, kind, ref);
  }

  /**
   * Drops the lease. With `collect`, the layers and blobs it held
   * that nothing else holds are garbage-collected in the same transaction.
   */
  release(collect = false): void {
    const db = this.store.db;
    this.store.writeTx(() => {
      const refs = db.prepare('SELECT kind, ref FROM lease_refs WHERE lease_id = ?').all(this.id) as { kind: 'blob' | 'layer'; ref: string }[];
      db.prepare('DELETE FROM lease_refs WHERE lease_id = ?').run(this.id);
      db.prepare('DELETE FROM leases WHERE id = ?').run(this.id);
      if (!collect) return;
      // Removing a child can free its parent: collect until nothing more goes.
      let layers = refs.filter((r) => r.kind === 'layer').map((r) => r.ref);
      for (;;) {
        const gone = new Set(this.store.images.collectTx(layers, []).layers);
        if (gone.size === 0) break;
        layers = layers.filter((l) => !gone.has(l));
      }
      this.store.images.collectTx([], refs.filter((r) => r.kind === 'blob').map((r) => r.ref as `sha256:${string}`));
    });
    if (collect) this.store.emptyTrashSync();
  }
}
