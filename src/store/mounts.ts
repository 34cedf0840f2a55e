/**
 * Read-only overlay mounts of a layer chain, reference-counted by holders (containers/storage's
 * mount counts). A mount lives at <runroot>/overlay/<layer id>/merged; the first hold mounts it,
 * the last release unmounts it. Mounting and recording happen in one write transaction, so two
 * processes never both mount or both unmount the same layer.
 *
 * Holders: a process hold ("<pid>-<starttime>", selfOwner()) is dropped by repair when that
 * process is dead; a named hold (e.g. "cli" for `kiln image mount`) lasts until released.
 * A hold row whose target is no longer mounted (after a reboot cleared /run) is stale and is
 * dropped when next seen.
 *
 * Lower dirs are given as the short l/<link> paths relative to the store root (the mount is
 * made with the root as working directory), keeping the option string under the page size.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import { native } from '../native';
import type { Store } from './store';

const MS_RDONLY = 1;
const MNT_DETACH = 2;

/** The mount points of this process's mount namespace, unescaped; none when /proc is unreadable. */
function mountPoints(): string[] {
  let info: string;
  try {
    info = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const unescape = (p: string) => p.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
  return info.split('\n').map((l) => l.split(' ')[4]).filter((p): p is string => p !== undefined).map(unescape);
}

export function isMountPoint(target: string): boolean {
  return mountPoints().includes(target);
}

/**
 * Detaches every mount at or below `dir` (deepest first): the overlays of a killed build's
 * steps live in its tmp/<owner>/ dir and must go before that dir is removed.
 */
export function unmountUnder(dir: string): void {
  let real: string;
  try {
    real = fs.realpathSync(dir);
  } catch {
    return;
  }
  const points = mountPoints().filter((p) => p === real || p.startsWith(`${real}/`)).sort((a, b) => b.length - a.length);
  for (const p of points) {
    try {
      native().umount2(p, MNT_DETACH);
    } catch {
      /* already gone */
    }
  }
}

export class MountStore {
  constructor(private readonly store: Store) {}

  /**
   * Where a layer is mounted: under the runroot's real path, since /proc/self/mountinfo (which
   * isMountPoint reads) shows resolved paths and a runroot reached through a symlink would
   * otherwise never look mounted.
   */
  target(layerID: string): string {
    if (this.base === undefined) {
      fs.mkdirSync(this.store.paths.runroot, { recursive: true, mode: 0o700 });
      this.base = path.join(fs.realpathSync(this.store.paths.runroot), 'overlay');
    }
    return path.join(this.base, layerID, 'merged');
  }

  private base: string | undefined;

  /** Holders of a layer's mount. */
  holders(layerID: string): string[] {
    return (this.store.db.prepare('SELECT holder FROM layer_mounts WHERE layer_id = ?').all(layerID) as { holder: string }[]).map((r) => r.holder);
  }

  /** Mounted layers and their mount points. */
  list(): { layerID: string; target: string; holds: number }[] {
    return this.store.db.prepare('SELECT layer_id AS layerID, target, count(*) AS holds FROM layer_mounts GROUP BY layer_id, target').all() as { layerID: string; target: string; holds: number }[];
  }

  /** Takes a hold on a read-only mount of the layer chain ending at `layerID`; returns the mount point. */
  mount(layerID: string, holder: string): string {
    const target = this.target(layerID);
    const { selfOwner } = require('../util/proc') as typeof import('../util/proc');
    if (holder === selfOwner()) this.store.workDir(); // so that this process's death is noticed (repair.ts)
    this.store.writeTx(() => {
      this.dropStale(layerID);
      const held = this.holders(layerID).length > 0;
      if (!held) this.doMount(layerID, target);
      this.store.db.prepare('INSERT INTO layer_mounts (layer_id, holder, target, created) VALUES (?, ?, ?, ?)').run(layerID, holder, target, Date.now());
    });
    return target;
  }

  /**
   * Releases one hold of `holder` (all holds of everyone with `force`); unmounts after the last.
   * Returns whether the layer is still mounted.
   */
  unmount(layerID: string, holder: string, force = false): boolean {
    return this.store.writeTx(() => this.releaseTx(layerID, holder, force));
  }

  /** Inside writeTx: as unmount(). */
  releaseTx(layerID: string, holder: string, force: boolean): boolean {
    const db = this.store.db;
    if (force) db.prepare('DELETE FROM layer_mounts WHERE layer_id = ?').run(layerID);
    else {
      const r = db.prepare('DELETE FROM layer_mounts WHERE rowid = (SELECT rowid FROM layer_mounts WHERE layer_id = ? AND holder = ? LIMIT 1)').run(layerID, holder);
      if (r.changes === 0) throw new KilnError('E_INVALID_ARGUMENT', `layer ${layerID.slice(0, 12)} is not mounted by ${holder}`);
    }
    if (this.holders(layerID).length > 0) return true;
    this.doUnmount(layerID);
    return false;
  }

  /** Inside writeTx: drops holds whose mount vanished (reboot) and unmounts layers held only by dead processes. */
  dropStale(layerID?: string): void {
    const rows = (layerID === undefined
      ? this.store.db.prepare('SELECT rowid, layer_id AS layerID, holder, target FROM layer_mounts').all()
      : this.store.db.prepare('SELECT rowid, layer_id AS layerID, holder, target FROM layer_mounts WHERE layer_id = ?').all(layerID)) as { rowid: number; layerID: string; holder: string; target: string }[];
    const touched = new Set<string>();
    for (const r of rows) {
      const deadProcess = /^\d+-\d+$/.test(r.holder) && !this.store.ownerAlive(r.holder);
      if (deadProcess || !isMountPoint(r.target)) {
        this.store.db.prepare('DELETE FROM layer_mounts WHERE rowid = ?').run(r.rowid);
        touched.add(r.layerID);
      }
    }
    for (const l of touched) if (this.holders(l).length === 0) this.doUnmount(l);
  }

  private doMount(layerID: string, target: string): void {
    const lowers = this.store.layers.lowerChain(layerID);
    if (lowers.length === 1) {
      // overlayfs needs two lower dirs when there is no upper dir
      fs.mkdirSync(path.join(this.store.paths.root, 'empty'), { recursive: true, mode: 0o755 });
      lowers.push('empty');
    }
    fs.mkdirSync(target, { recursive: true, mode: 0o700 });
    if (isMountPoint(target)) native().umount2(target, MNT_DETACH); // left by a crash before its row committed
    const cwd = process.cwd();
    process.chdir(this.store.paths.root);
    try {
      native().mount('overlay', target, 'overlay', MS_RDONLY, `lowerdir=${lowers.join(':')}`);
    } catch (e) {
      throw new KilnError('E_STORE', `cannot mount layer ${layerID.slice(0, 12)} at ${target}: ${(e as Error).message}`, { cause: e });
    } finally {
      process.chdir(cwd);
    }
  }

  private doUnmount(layerID: string): void {
    const target = this.target(layerID);
    if (isMountPoint(target)) native().umount2(target, MNT_DETACH);
    fs.rmSync(path.dirname(target), { recursive: true, force: true });
  }
}
