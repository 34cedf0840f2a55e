/**
 * Where a store lives. Precedence: explicit option (--root/--runroot) > KILN_ROOT/KILN_RUNROOT >
 * defaults (/var/lib/kiln, /run/kiln), as podman's --root/--runroot.
 *
 * Layout under root:
 *   kiln.db               SQLite state (WAL)
 *   blobs/sha256/<hex>    content-addressed blobs (manifests, configs, layer blobs as received)
 *   layers/<id>/diff      extracted layer contents (an overlay lowerdir); layers/<id>/link = short name
 *   l/<short>             symlink → ../layers/<id>/diff, keeps overlay mount options short
 *   tmp/<owner>/          per-process work dir (owner = "<pid>-<starttime>"); a dead owner's dir is debris
 *   containers/<id>/      a container: diff/ + work/ (its overlay upper and work dirs), userdata/
 *                         (the OCI bundle: config.json, ctr.log, hosts, hostname, resolv.conf)
 *   volumes/<name>/_data  a named volume (podman's local driver layout)
 * Under runroot:
 *   containers/<id>/      merged/ (the container's rootfs mount), conmon's pidfile, conmon.pid,
 *                         attach socket dir, exit file
 */
import * as path from 'node:path';

export interface StoreOptions {
  root?: string;
  runroot?: string;
}

export interface StorePaths {
  root: string;
  runroot: string;
  db: string;
  blobs: string;
  layers: string;
  links: string;
  tmp: string;
  containers: string;
  volumes: string;
  runContainers: string;
}

export const DEFAULT_ROOT = '/var/lib/kiln';
export const DEFAULT_RUNROOT = '/run/kiln';

export function resolvePaths(opts: StoreOptions = {}): StorePaths {
  const root = path.resolve(opts.root || process.env.KILN_ROOT || DEFAULT_ROOT);
  const runroot = path.resolve(opts.runroot || process.env.KILN_RUNROOT || DEFAULT_RUNROOT);
  return {
    root,
    runroot,
    db: path.join(root, 'kiln.db'),
    blobs: path.join(root, 'blobs', 'sha256'),
    layers: path.join(root, 'layers'),
    links: path.join(root, 'l'),
    tmp: path.join(root, 'tmp'),
    containers: path.join(root, 'containers'),
    volumes: path.join(root, 'volumes'),
    runContainers: path.join(runroot, 'containers'),
  };
}
