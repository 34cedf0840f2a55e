/**
 * A container's root filesystem: an overlay whose lower dirs are its image's layer chain and
 * whose upper and work dirs are the container's own (<root>/containers/<id>/diff and work), as
 * containers/storage mounts a container layer. It is mounted at
 * <runroot>/containers/<id>/merged in the host's mount namespace, so it stays mounted while
 * the container runs after kiln has exited; conmon's exit command (lifecycle.ts cleanup)
 * unmounts it. The image's layers are extracted first (LayerStore.ensureChain).
 *
 * mountRootfs and unmountRootfs are idempotent; an already mounted rootfs is reused.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import { native } from '../native';
import { isMountPoint } from '../store/mounts';
import type { Store } from '../store/store';

const MNT_DETACH = 2;

/** The container's persistent dir (overlay upper/work dirs and userdata/, the OCI bundle). */
export function containerDir(store: Store, id: string): string {
  return path.join(store.paths.containers, id);
}

/** The OCI bundle: config.json, ctr.log, hosts, hostname, resolv.conf. */
export function bundleDir(store: Store, id: string): string {
  return path.join(containerDir(store, id), 'userdata');
}

/** The container's runtime dir under runroot: merged/, pidfile, conmon.pid, exits/, sockets. */
export function runDir(store: Store, id: string): string {
  fs.mkdirSync(store.paths.runContainers, { recursive: true, mode: 0o700 });
  return path.join(fs.realpathSync(store.paths.runContainers), id);
}

export function mergedDir(store: Store, id: string): string {
  return path.join(runDir(store, id), 'merged');
}

/** Makes the container's dirs (before its record is committed; removeDirs undoes it). */
export function makeDirs(store: Store, id: string): void {
  for (const d of ['diff', 'work', 'userdata']) fs.mkdirSync(path.join(containerDir(store, id), d), { recursive: true, mode: d === 'diff' ? 0o755 : 0o700 });
}

export function removeDirs(store: Store, id: string): void {
  fs.rmSync(containerDir(store, id), { recursive: true, force: true });
  fs.rmSync(runDir(store, id), { recursive: true, force: true });
}

/** Mounts the container's rootfs (extracting the image's layers first); returns the mount point. */
export async function mountRootfs(store: Store, id: string, layerID: string | null): Promise<string> {
  const merged = mergedDir(store, id);
  if (isMountPoint(merged)) return merged;
  if (layerID !== null) await store.layers.ensureChain(layerID);
  fs.mkdirSync(merged, { recursive: true, mode: 0o755 });
  const lowers = layerID === null ? [] : store.layers.lowerChain(layerID);
  if (lowers.length === 0) {
    fs.mkdirSync(path.join(store.paths.root, 'empty'), { recursive: true, mode: 0o755 });
    lowers.push('empty');
  }
  const rel = path.relative(store.paths.root, containerDir(store, id));
  const opts = `lowerdir=${lowers.join(':')},upperdir=${rel}/diff,workdir=${rel}/work,redirect_dir=off,metacopy=off,index=off`;
  const cwd = process.cwd();
  process.chdir(store.paths.root); // relative paths keep the options under a page
  try {
    native().mount('overlay', merged, 'overlay', 0, opts);
  } catch (e) {
    throw new KilnError('E_STORE', `cannot mount the rootfs of container ${id.slice(0, 12)} at ${merged}: ${(e as Error).message}`, { cause: e });
  } finally {
    process.chdir(cwd);
  }
  return merged;
}

/** Unmounts the container's rootfs if it is mounted. */
export function unmountRootfs(store: Store, id: string): void {
  const merged = mergedDir(store, id);
  if (!isMountPoint(merged)) return;
  try {
    native().umount2(merged, MNT_DETACH);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EINVAL' && (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
