/**
 * Consistency of records and files after crashes. check() only reads; repair() must run inside
 * a write transaction (Store.recoverDebris does that) and:
 *   - drops leases and mount holds of dead processes (unmounting what nobody holds),
 *   - moves into the trash blob files and layer dirs that have no record (renamed into place by
 *     a process killed before its transaction committed), dirs of layers recorded as not yet
 *     extracted (the same, for an extraction by LayerStore.ensureChain), and short links to no
 *     layer,
 *   - garbage-collects layers and blobs that nothing holds any more (written under a lease
 *     whose process died before tying them to an image),
 *   - returns dead processes' tmp/<owner>/ dirs for removal after commit (trashed files are
 *     removed by the caller's emptyTrash).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { selfOwner } from '../util/proc';
import type { Digest } from '../util/digest';
import type { Store } from './store';
import { blobHeldSql, layerHeldSql } from './refs';

export interface RepairReport {
  deadOwners: string[];
  /** trash entries of killed processes whose deleting transaction never committed, put back */
  restored: string[];
  orphanBlobs: string[];
  orphanLayers: string[];
  orphanLinks: string[];
  orphanContainers: string[];
  collectedLayers: string[];
  collectedBlobs: string[];
  /** paths to delete once the transaction has committed */
  removePaths: string[];
}

export interface CheckReport {
  /** records and files that disagree: each line names the record or file */
  problems: string[];
  /** leftovers of killed processes that a repair would remove */
  debris: string[];
}

function readdirOr(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/**
 * A work dir being created (".<owner>.new-…", see Store.workDir) lives for microseconds: its
 * maker creates it, opens and locks `lock` inside, and renames it. A young one is always left
 * alone (there is a moment between creating the lock file and locking it); an old one is
 * debris unless something still holds its lock.
 */
function stagingAlive(store: Store, name: string): boolean {
  const dir = path.join(store.paths.tmp, name);
  try {
    if (Date.now() - fs.statSync(dir).mtimeMs < 60_000) return true;
  } catch {
    return false;
  }
  let fd: number;
  try {
    fd = fs.openSync(path.join(dir, 'lock'), 'r');
  } catch {
    return false;
  }
  try {
    const { native, LOCK_EX, LOCK_NB } = require('../native') as typeof import('../native');
    return !native().flock(fd, LOCK_EX | LOCK_NB);
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether a dead process left a work dir behind (cheap: one readdir and a lock test each). */
export function hasDebris(store: Store): boolean {
  return readdirOr(store.paths.tmp).some((o) => (o.startsWith('.') ? !stagingAlive(store, o) : !store.ownerAlive(o)));
}

/**
 * A killed process may have moved files into its trash inside a transaction that never
 * committed: their records still exist. Under the write lock, such entries go back where they
 * were (unless something already took the place). Returns what was restored.
 */
function restoreTrash(store: Store, workDir: string): string[] {
  const db = store.db;
  const restored: string[] = [];
  for (const entry of readdirOr(workDir)) {
    const m = /^trash-(blob|layer|link)-(.+)-[0-9a-f]{8}$/.exec(entry);
    if (!m) continue;
    const [, kind, name] = m as unknown as [string, 'blob' | 'layer' | 'link', string];
    const recorded =
      kind === 'blob' ? store.blobs.has(`sha256:${name}`)
      : kind === 'layer' ? store.layers.get(name) !== undefined
      : db.prepare('SELECT 1 FROM layers WHERE link = ?').get(name) !== undefined;
    if (!recorded) continue;
    const home = kind === 'blob' ? store.blobs.path(`sha256:${name}`) : kind === 'layer' ? store.layers.dir(name) : path.join(store.paths.links, name);
    if (fs.existsSync(home) || (kind === 'link' && isLink(home))) continue;
    fs.renameSync(path.join(workDir, entry), home);
    restored.push(`${kind} ${name}`);
  }
  return restored;
}

function isLink(p: string): boolean {
  try {
    return fs.lstatSync(p).isSymbolicLink();
  } catch {
    return false;
  }
}

export function repair(store: Store): RepairReport {
  const db = store.db;
  const report: RepairReport = { deadOwners: [], restored: [], orphanBlobs: [], orphanLayers: [], orphanLinks: [], orphanContainers: [], collectedLayers: [], collectedBlobs: [], removePaths: [] };
  for (const o of readdirOr(store.paths.tmp)) {
    if (o.startsWith('.')) {
      if (!stagingAlive(store, o)) report.removePaths.push(path.join(store.paths.tmp, o));
      continue;
    }
    if (o === selfOwner() || store.ownerAlive(o)) continue;
    report.deadOwners.push(o);
    report.restored.push(...restoreTrash(store, path.join(store.paths.tmp, o)));
    report.removePaths.push(path.join(store.paths.tmp, o));
  }
  const leases = db.prepare('SELECT id, owner FROM leases').all() as { id: string; owner: string }[];
  for (const l of leases) if (!store.ownerAlive(l.owner)) db.prepare('DELETE FROM leases WHERE id = ?').run(l.id);
  store.mounts.dropStale();

  const blobRecs = new Set((db.prepare('SELECT digest FROM blobs').all() as { digest: string }[]).map((r) => r.digest.slice(7)));
  for (const f of readdirOr(store.paths.blobs)) {
    if (blobRecs.has(f)) continue;
    report.orphanBlobs.push(f);
    store.trash(path.join(store.paths.blobs, f), 'orphan', `blob-${f}`);
  }
  const layerRows = db.prepare('SELECT id, link, extracted FROM layers').all() as { id: string; link: string; extracted: number }[];
  const layerRecs = new Map(layerRows.map((r) => [r.id, r.link]));
  const deferred = new Set(layerRows.filter((r) => !r.extracted).map((r) => r.id));
  for (const d of readdirOr(store.paths.layers)) {
    // a deferred layer's dir is debris of an extraction killed before its transaction committed
    if (layerRecs.has(d) && !deferred.has(d)) continue;
    report.orphanLayers.push(d);
    store.trash(path.join(store.paths.layers, d), 'orphan', `layer-${d}`);
  }
  // a container dir without a record: a create killed inside its transaction
  const containerRecs = new Set((db.prepare('SELECT id FROM containers').all() as { id: string }[]).map((r) => r.id));
  for (const d of readdirOr(store.paths.containers)) {
    if (containerRecs.has(d)) continue;
    report.orphanContainers.push(d);
    store.trash(path.join(store.paths.containers, d), 'orphan', `container-${d}`);
  }
  const links = new Set(layerRecs.values());
  for (const l of readdirOr(store.paths.links)) {
    if (links.has(l)) continue;
    report.orphanLinks.push(l);
    fs.rmSync(path.join(store.paths.links, l), { force: true });
  }

  // Unheld layers, to a fixpoint (removing a child can free its parent).
  for (;;) {
    const free = (db.prepare(`SELECT id FROM layers l WHERE NOT ${layerHeldSql('l.id')}`).all() as { id: string }[]).map((r) => r.id);
    if (free.length === 0) break;
    report.collectedLayers.push(...store.images.collectTx(free, []).layers);
  }
  const freeBlobs = (db.prepare(`SELECT digest FROM blobs b WHERE NOT ${blobHeldSql('b.digest')}`).all() as { digest: Digest }[]).map((r) => r.digest);
  report.collectedBlobs.push(...store.images.collectTx([], freeBlobs).blobs);
  return report;
}

/** Reads the whole store and reports disagreements between records and files. */
export function check(store: Store): CheckReport {
  const db = store.db;
  const problems: string[] = [];
  const debris: string[] = [];
  const blobs = db.prepare('SELECT digest, size FROM blobs').all() as { digest: Digest; size: number }[];
  const blobSet = new Set<string>();
  for (const b of blobs) {
    blobSet.add(b.digest.slice(7));
    let st: fs.Stats | undefined;
    try {
      st = fs.statSync(store.blobs.path(b.digest));
    } catch {
      problems.push(`blob ${b.digest}: recorded but its file is missing`);
      continue;
    }
    if (st.size !== b.size) problems.push(`blob ${b.digest}: recorded size ${b.size}, file has ${st.size}`);
  }
  for (const f of readdirOr(store.paths.blobs)) if (!blobSet.has(f)) debris.push(`blob file ${path.join(store.paths.blobs, f)} has no record`);

  const layers = db.prepare('SELECT id, parent, link, extracted, blob_digest AS blob FROM layers').all() as { id: string; parent: string | null; link: string; extracted: number; blob: string | null }[];
  const layerSet = new Set(layers.map((l) => l.id));
  for (const l of layers) {
    if (l.extracted && !fs.existsSync(store.layers.diffDir(l.id))) problems.push(`layer ${l.id}: recorded but its directory is missing`);
    if (!l.extracted && !(l.blob && blobSet.has(l.blob.slice(7)))) problems.push(`layer ${l.id}: not extracted yet and its blob ${l.blob} is missing`);
    let target: string | undefined;
    try {
      target = fs.readlinkSync(path.join(store.paths.links, l.link));
    } catch {
      problems.push(`layer ${l.id}: short link l/${l.link} is missing`);
    }
    if (target !== undefined && target !== `../layers/${l.id}/diff`) problems.push(`layer ${l.id}: short link l/${l.link} points to ${target}`);
    if (l.parent !== null && !layerSet.has(l.parent)) problems.push(`layer ${l.id}: parent ${l.parent} is missing`);
  }
  const deferredSet = new Set(layers.filter((l) => !l.extracted).map((l) => l.id));
  for (const d of readdirOr(store.paths.layers)) {
    if (!layerSet.has(d)) debris.push(`layer dir ${path.join(store.paths.layers, d)} has no record`);
    else if (deferredSet.has(d)) debris.push(`layer dir ${path.join(store.paths.layers, d)} of a layer not extracted yet (an interrupted extraction)`);
  }

  const missingBlob = db.prepare('SELECT image_id, digest FROM image_blobs ib WHERE NOT EXISTS (SELECT 1 FROM blobs b WHERE b.digest = ib.digest)').all() as { image_id: string; digest: string }[];
  for (const r of missingBlob) problems.push(`image ${r.image_id}: blob ${r.digest} is missing`);
  const missingLayer = db.prepare('SELECT image_id, layer_id FROM image_layers il WHERE NOT EXISTS (SELECT 1 FROM layers l WHERE l.id = il.layer_id)').all() as { image_id: string; layer_id: string }[];
  for (const r of missingLayer) problems.push(`image ${r.image_id}: layer ${r.layer_id} is missing`);
  const images = db.prepare('SELECT id, manifest_digest AS m, config_digest AS c FROM images').all() as { id: string; m: Digest; c: Digest }[];
  for (const i of images) {
    if (`sha256:${i.id}` !== i.c) problems.push(`image ${i.id}: id does not match its config digest ${i.c}`);
    for (const d of [i.m, i.c]) if (!blobSet.has(d.slice(7))) problems.push(`image ${i.id}: ${d === i.m ? 'manifest' : 'config'} blob ${d} is missing`);
  }
  const orphanNames = db.prepare('SELECT name FROM image_names n WHERE NOT EXISTS (SELECT 1 FROM images i WHERE i.id = n.image_id)').all() as { name: string }[];
  for (const n of orphanNames) problems.push(`name ${n.name}: points to no image`);

  const unheldLayers = db.prepare(`SELECT id FROM layers l WHERE NOT ${layerHeldSql('l.id')}`).all() as { id: string }[];
  for (const l of unheldLayers) debris.push(`layer ${l.id} is used by nothing (left by an interrupted operation)`);
  const unheldBlobs = db.prepare(`SELECT digest FROM blobs b WHERE NOT ${blobHeldSql('b.digest')}`).all() as { digest: string }[];
  for (const b of unheldBlobs) debris.push(`blob ${b.digest} is used by nothing (left by an interrupted operation)`);
  for (const o of readdirOr(store.paths.tmp)) {
    if (o.startsWith('.') ? !stagingAlive(store, o) : !store.ownerAlive(o)) debris.push(`work dir ${path.join(store.paths.tmp, o)} of dead process ${o}`);
  }
  const leases = db.prepare('SELECT id, owner FROM leases').all() as { id: string; owner: string }[];
  for (const l of leases) if (!store.ownerAlive(l.owner)) debris.push(`lease ${l.id} of dead process ${l.owner}`);
  return { problems, debris };
}
