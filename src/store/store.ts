/**
 * The kiln store (after containers/storage): blobs, layers, images and containers under one
 * root, state in SQLite. There is no daemon; several kiln processes share a store safely by
 * this discipline:
 *
 *  1. Slow work (downloading, hashing, extracting) happens in this process's work dir
 *     tmp/<owner>/, invisible to others.
 *  2. Making work visible is a short synchronous write transaction (writeTx, BEGIN IMMEDIATE)
 *     that renames the finished file/dir into place AND inserts its record. So under the write
 *     lock, a file in blobs/ or layers/ without a record is debris of a killed process, never
 *     work in progress.
 *  3. Things a process has written or reused but not yet tied to an image are held by a lease
 *     (BuildKit's idea), so a concurrent rmi's garbage collection leaves them alone.
 *  4. Deleting is the reverse: inside writeTx the records go and the files are renamed into the
 *     work dir's trash; they are removed after commit.
 *  5. A killed process leaves its tmp/<owner>/ behind, with its flock released. The first
 *     write transaction of any later process notices a dead owner there and runs repair()
 *     (store/repair.ts) under the lock.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { openDatabase, type DB } from './db';
import { resolvePaths, type StoreOptions, type StorePaths } from './paths';
import { selfOwner } from '../util/proc';
import { trackTemp } from '../util/cleanup';
import { native, LOCK_EX, LOCK_NB } from '../native';
import { BlobStore } from './blobs';
import { LayerStore } from './layers';
import { ImageStore } from './images';
import { MountStore, unmountUnder } from './mounts';
import { ContainerStore } from './containers';
import { VolumeStore } from './volumes';
import { Lease } from './lease';
import { hasDebris, repair, type RepairReport } from './repair';

/** What a trash entry was: a blob file, a layer dir, a short link, or debris with no record. */
export type TrashKind = 'blob' | 'layer' | 'link' | 'orphan';

export class Store {
  readonly paths: StorePaths;
  readonly db: DB;
  readonly blobs: BlobStore;
  readonly layers: LayerStore;
  readonly images: ImageStore;
  readonly mounts: MountStore;
  readonly containers: ContainerStore;
  readonly volumes: VolumeStore;
  private work: string | undefined;
  private txTrash: { from: string; to: string }[] | undefined;
  private lockFd: number | undefined;
  private recovered = false;
  private closed = false;

  private constructor(paths: StorePaths, db: DB) {
    this.paths = paths;
    this.db = db;
    this.blobs = new BlobStore(this);
    this.layers = new LayerStore(this);
    this.images = new ImageStore(this);
    this.mounts = new MountStore(this);
    this.containers = new ContainerStore(this);
    this.volumes = new VolumeStore(this);
  }

  /** Opens (creating if needed) the store. Cheap: one stat, one open, one pragma read. */
  static open(opts: StoreOptions = {}): Store {
    const paths = resolvePaths(opts);
    if (!fs.existsSync(paths.db)) {
      for (const d of [paths.root, paths.blobs, paths.layers, paths.links, paths.tmp]) fs.mkdirSync(d, { recursive: true, mode: 0o700 });
    }
    return new Store(paths, openDatabase(paths.db));
  }

  /**
   * Runs `fn` in a BEGIN IMMEDIATE transaction (waiting for other processes' write locks).
   * `fn` must be synchronous: no await inside, so no other work of this process can slip into
   * the transaction. Throwing rolls back.
   */
  writeTx<T>(fn: () => T): T {
    if (!this.recovered) this.recoverDebris();
    return this.immediateTx(fn);
  }

  /** BEGIN IMMEDIATE (a savepoint when nested) whose trash moves are undone if it rolls back. */
  private immediateTx<T>(fn: () => T): T {
    if (this.db.inTransaction) return this.db.transaction(fn)(); // nested: a savepoint
    const moves: { from: string; to: string }[] = [];
    this.txTrash = moves;
    try {
      return this.db.transaction(fn).immediate();
    } catch (e) {
      // The records rolled back: put back what the transaction moved into the trash.
      for (const m of moves.reverse()) fs.renameSync(m.to, m.from);
      throw e;
    } finally {
      this.txTrash = undefined;
    }
  }

  /**
   * This process's private work dir on the store's filesystem, tmp/<owner>/ (created on first
   * use). Its `lock` file is flock()ed for as long as the store is open: that lock, not the pid,
   * is how other processes tell a live owner from a dead one (it also works across pid
   * namespaces and cannot be confused by pid reuse). The dir is made under a dot-name, locked,
   * then renamed, so no other process ever sees it unlocked.
   */
  workDir(): string {
    if (this.work === undefined) {
      const dir = path.join(this.paths.tmp, selfOwner());
      const staging = path.join(this.paths.tmp, `.${selfOwner()}.new-${randomBytes(4).toString('hex')}`);
      fs.mkdirSync(this.paths.tmp, { recursive: true, mode: 0o700 });
      trackTemp(staging);
      trackTemp(dir);
      fs.mkdirSync(staging, { mode: 0o700 });
      const fd = fs.openSync(path.join(staging, 'lock'), 'w', 0o600);
      native().flock(fd, LOCK_EX);
      fs.renameSync(staging, dir);
      this.lockFd = fd;
      this.work = dir;
    }
    return this.work;
  }

  /** Whether the process that owns tmp/<owner>/ (and its leases and mount holds) still runs. */
  ownerAlive(owner: string): boolean {
    if (owner === selfOwner()) return true;
    let fd: number;
    try {
      fd = fs.openSync(path.join(this.paths.tmp, owner, 'lock'), 'r');
    } catch {
      return false; // a live owner always has its locked work dir
    }
    try {
      return !native().flock(fd, LOCK_EX | LOCK_NB);
    } finally {
      fs.closeSync(fd);
    }
  }

  /** A fresh directory inside the work dir. */
  tempDir(prefix: string): string {
    const d = path.join(this.workDir(), `${prefix}-${randomBytes(6).toString('hex')}`);
    fs.mkdirSync(d, { mode: 0o700 });
    return d;
  }

  /**
   * Inside writeTx: moves a file or directory out of the store's namespace into the trash, as
   * "trash-<kind>-<name>-<random>". If the transaction throws, the move is undone; if this
   * process is killed before it commits, repair() finds the entry by kind and name and moves
   * it back while its record still exists (see repair.ts).
   */
  trash(p: string, kind: TrashKind, name: string): void {
    const dest = path.join(this.workDir(), `trash-${kind}-${name}-${randomBytes(4).toString('hex')}`);
    try {
      fs.renameSync(p, dest);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      return;
    }
    this.txTrash?.push({ from: p, to: dest });
  }

  /** Removes trashed files (after the transaction that trashed them committed). */
  async emptyTrash(): Promise<void> {
    if (this.work === undefined) return;
    const names = await fs.promises.readdir(this.work).catch(() => [] as string[]);
    await Promise.all(
      names.filter((n) => n.startsWith('trash-')).map((n) => fs.promises.rm(path.join(this.work!, n), { recursive: true, force: true })),
    );
  }

  emptyTrashSync(): void {
    if (this.work === undefined) return;
    for (const n of fs.readdirSync(this.work)) if (n.startsWith('trash-')) fs.rmSync(path.join(this.work, n), { recursive: true, force: true });
  }

  /**
   * Holds everything `fn` writes or reuses through the lease against garbage collection until
   * `fn` settles. The lease is then dropped and what it held that nothing else holds is
   * collected: after a failure, the operation's debris; after a success, what it made but no
   * longer needs (e.g. a build step's layer whose cache entry a concurrent build replaced).
   */
  async withLease<T>(fn: (lease: Lease) => Promise<T>): Promise<T> {
    const lease = Lease.create(this);
    try {
      return await fn(lease);
    } finally {
      lease.release(true);
    }
  }


  /**
   * Cleans debris left by killed processes, if a dead process's work dir says there is any
   * (cheap), or always with `force` (a full pass: `kiln system check --repair`). See repair.ts.
   */
  recoverDebris(force = false): RepairReport | undefined {
    this.recovered = true;
    if (!force && !hasDebris(this)) return undefined;
    const report = this.immediateTx(() => repair(this));
    for (const o of report.deadOwners) (require('../build/staging') as typeof import('../build/staging')).removeStagingOf(o);
    for (const p of report.removePaths) {
      // a killed build's containers (bundles in its work dir), then its step overlays
      (require('../runtime/orphans') as typeof import('../runtime/orphans')).killContainersUnder(path.join(this.paths.runroot, 'runtime'), p);
      unmountUnder(p);
      fs.rmSync(p, { recursive: true, force: true });
    }
    this.emptyTrashSync();
    return report;
  }

  /** Closes the database and removes this process's work dir (then releases its lock). */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.work !== undefined) fs.rmSync(this.work, { recursive: true, force: true });
    if (this.lockFd !== undefined) fs.closeSync(this.lockFd);
    this.db.close();
  }
}
