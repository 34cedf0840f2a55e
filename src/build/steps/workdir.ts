/**
 * Making sure a directory (the WORKDIR) exists in a step's rootfs, resolved inside the rootfs
 * so that a symlink in the image can never make kiln create directories on the host.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../../errors';
import { resolveInRoot } from '../../util/rootpath';

/** Creates `dir` (a container path) and its missing parents, mode 0755, owned by `owner` (default root). */
export function ensureDir(rootfs: string, dir: string, where: string, owner?: { uid: number; gid: number }): void {
  const root = path.resolve(rootfs);
  const host = resolveInRoot(root, dir, { followLast: true });
  const missing: string[] = [];
  for (let p = host; p !== root && !fs.existsSync(p); p = path.dirname(p)) missing.unshift(p);
  try {
    for (const p of missing) {
      fs.mkdirSync(p);
      fs.chmodSync(p, 0o755); // explicit: mkdir's mode is filtered by the umask
      if (owner) fs.chownSync(p, owner.uid, owner.gid);
    }
    if (!fs.statSync(host).isDirectory()) throw new Error('not a directory');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOTDIR' || (e as Error).message === 'not a directory' ? 'is not a directory' : (e as Error).message;
    throw new KilnError('E_BUILD', `${where}: working directory ${dir} ${why}`);
  }
}
