/**
 * What the container code needs of named volumes (re-exported by engine/volumes.ts, where the
 * `volume` commands live). Call order at `create`, inside one writeTx: ensureVolumeTx for each
 * volume (-v NAME:/dst, -v /dst, image VOLUMEs), the container row, recordUseTx for each. At
 * `start`, with the rootfs mounted: copyUpIfEmpty(name, <rootfs>/<destination>) for each
 * volume, then bind-mount volumePath(name). At `rm -v`: removeIfUnused for anonymous ones.
 *
 *   ensureVolume(ctx, name, {anonymous})   the volume, created when missing (own transaction;
 *                                          ensureVolumeTx inside the caller's); refuses a
 *                                          volume that needs a mount (E_UNSUPPORTED)
 *   volumePath(ctx, name)                  <root>/volumes/<name>/_data (no check)
 *   copyUpIfEmpty(ctx, name, srcDir)       fills a never-filled, empty volume from srcDir once
 *   recordUse(ctx, id, name, destination)  (own transaction, or nested in the caller's)
 *   removeIfUnused(ctx, name)              removes a volume nobody uses
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { KilnError, asKilnError } from '../errors';
import type { VolumeRecord } from '../store/volumes';
import { selfOwner } from '../util/proc';
import { trackTemp } from '../util/cleanup';
import type { EngineContext } from '../engine/context';

/** Options that only a mount(2) could honour: kiln mounts no volume with them (yet). */
function mountNeeds(v: VolumeRecord): string[] {
  const needs = Object.entries(v.options).filter(([k]) => ['device', 'type'].includes(k.toLowerCase())).map(([k, val]) => `${k}=${val}`);
  const flags = (v.options.o ?? '').split(',').filter((f) => f !== '' && !/^(uid|gid)=/i.test(f));
  if (flags.length > 0) needs.push(`o=${flags.join(',')}`);
  return needs;
}

/** E_UNSUPPORTED when a container cannot use the volume: it needs a mount (device/type/o flags). */
export function assertUsable(v: VolumeRecord): void {
  const needs = mountNeeds(v);
  if (needs.length > 0) {
    throw new KilnError('E_UNSUPPORTED', `volume ${v.name} was created with mount options (${needs.join(' ')}): kiln does not mount volumes with the local driver's type/device/o options`, {
      hint: `use a volume without them, or --mount type=bind / --tmpfs; remove this one with: kiln volume rm ${v.name}`,
    });
  }
}

/**
 * Inside the caller's writeTx: the volume `name`, created when missing (as `podman run -v
 * NAME:/dst` does; `anonymous` marks one made for a single container). E_INVALID_ARGUMENT for
 * a bad name; E_UNSUPPORTED for a volume a container cannot use (assertUsable). A directory
 * made here stays behind as debris if the caller's transaction rolls back (createTx replaces it).
 */
export function ensureVolumeTx(ctx: EngineContext, name: string, o: { anonymous?: boolean } = {}): VolumeRecord {
  const store = ctx.store;
  const v = store.volumes.get(name) ?? store.volumes.createTx({ name, anonymous: o.anonymous === true });
  assertUsable(v);
  return v;
}

/** ensureVolumeTx in a transaction of its own (or nested in the caller's). */
export function ensureVolume(ctx: EngineContext, name: string, o: { anonymous?: boolean } = {}): VolumeRecord {
  return ctx.store.writeTx(() => ensureVolumeTx(ctx, name, o));
}

/** <root>/volumes/<name>/_data, the directory a container mounts (the volume is not checked). */
export function volumePath(ctx: EngineContext, name: string): string {
  return ctx.store.volumes.dataPath(name);
}

/** Records that container `containerId` mounts `volume` at `destination` (nests in a writeTx). */
export function recordUse(ctx: EngineContext, containerId: string, volume: string, destination: string): void {
  ctx.store.writeTx(() => ctx.store.volumes.recordUseTx(containerId, volume, destination));
}

/** Removes the volume if it exists and no container uses it; true if it did. */
export async function removeIfUnused(ctx: EngineContext, name: string): Promise<boolean> {
  const store = ctx.store;
  const gone = store.writeTx(() => {
    if (!store.volumes.get(name) || store.volumes.usersOf(name).length > 0) return false;
    store.volumes.removeTx(name);
    return true;
  });
  await store.emptyTrash();
  return gone;
}

function isEmptyDir(dir: string, volume: string): boolean {
  try {
    return fs.readdirSync(dir).length === 0;
  } catch (e) {
    throw new KilnError('E_STORE_CORRUPT', `volume ${volume}: cannot read its directory ${dir}: ${(e as Error).message}`, { hint: 'kiln system check' });
  }
}

function cpArchive(src: string, dst: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('cp', ['-a', '--', `${src}/.`, dst], { maxBuffer: 16 << 20 }, (err, _out, stderr) => {
      if (err) reject(new KilnError('E_IO', `copying ${src} into a volume: ${String(stderr).trim() || err.message}`));
      else resolve();
    });
  });
}

/** Staging dirs of copy-ups whose process died (<volume dir>/.copyup-<owner>-<random>). */
function removeDeadStaging(ctx: EngineContext, dir: string): void {
  for (const e of fs.readdirSync(dir)) {
    const m = /^\.copyup-(\d+-\d+)-[0-9a-f]{8}$/.exec(e);
    if (m && !ctx.store.ownerAlive(m[1]!)) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
  }
}

/**
 * podman's copy-up. If the volume was never filled and its _data is empty, copies the content
 * of `srcDir` (a host path: the image's directory at the mount destination in the container's
 * mounted rootfs, already resolved; a symlink is not followed) into it with `cp -a` (modes,
 * ownership, timestamps, symlinks, hard links, xattrs where possible), and gives _data the
 * mode, times and (unless the volume has UID/GID options) owner of `srcDir`. Then, or when
 * the volume is not empty or `srcDir` is not a directory, marks it filled: later calls copy
 * nothing (podman's NeedsCopyUp=false). Returns whether it copied.
 *
 * The copy is made into a staging dir beside _data, outside any transaction; its entries are
 * renamed into _data under the write lock after checking again, so concurrent starts fill a
 * volume once. E_VOLUME_UNKNOWN, E_UNSUPPORTED (assertUsable), E_IO when cp fails.
 */
export async function copyUpIfEmpty(ctx: EngineContext, name: string, srcDir: string): Promise<boolean> {
  const store = ctx.store;
  const v = store.volumes.get(name);
  if (!v) throw new KilnError('E_VOLUME_UNKNOWN', `no volume with name "${name}" found: no such volume`);
  if (v.filled) return false;
  assertUsable(v);
  const data = store.volumes.dataPath(name);
  let src: fs.Stats | undefined;
  try {
    src = fs.lstatSync(srcDir);
  } catch (e) {
    if (!['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) throw asKilnError(e, 'E_IO', `copy-up into volume ${name}`);
  }
  if (!src?.isDirectory() || !isEmptyDir(data, name)) {
    store.writeTx(() => store.volumes.markFilledTx(name));
    return false;
  }
  const dir = store.volumes.dir(name);
  removeDeadStaging(ctx, dir);
  const staging = path.join(dir, `.copyup-${selfOwner()}-${randomBytes(4).toString('hex')}`);
  trackTemp(staging);
  fs.mkdirSync(staging, { mode: 0o700 });
  try {
    await cpArchive(srcDir, staging);
    const st = fs.lstatSync(staging);
    const copied = store.writeTx(() => {
      const now = store.volumes.get(name);
      if (!now || now.filled) return false;
      const empty = isEmptyDir(data, name);
      if (empty) {
        for (const e of fs.readdirSync(staging)) fs.renameSync(path.join(staging, e), path.join(data, e));
        if (now.options.UID === undefined && now.options.GID === undefined) fs.lchownSync(data, st.uid, st.gid);
        fs.chmodSync(data, st.mode & 0o7777);
        fs.utimesSync(data, st.atime, st.mtime);
      }
      store.volumes.markFilledTx(name);
      return empty;
    });
    return copied;
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}
