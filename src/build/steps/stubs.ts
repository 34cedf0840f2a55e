/**
 * Mount points the runtime creates: when a RUN mounts something (a secret, a cache dir,
 * /etc/hosts, /proc…) at a path the image does not have, the runtime creates an empty file or
 * dir there — and each missing parent — in the upper dir, so it would end up in the layer. As
 * buildah does, kiln notes before the step exactly which paths are missing, and afterwards
 * removes those that are still empty, deepest first; anything the command itself created or
 * put there stays. Paths are resolved inside the rootfs (symlinks included, as the runtime
 * resolves mount destinations), never on the host.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { resolveInRoot } from '../../util/rootpath';

/** Host paths (inside `rootfs`) that mounting at `destinations` will create. */
export function missingMountPoints(rootfs: string, destinations: string[]): string[] {
  const root = path.resolve(rootfs);
  const out = new Set<string>();
  for (const d of destinations) {
    for (let p = resolveInRoot(root, d, { followLast: true }); p !== root && p.startsWith(`${root}/`); p = path.dirname(p)) {
      if (fs.existsSync(p)) break;
      out.add(p);
    }
  }
  return [...out];
}

/** Removes each recorded path that is still an empty dir or an empty regular file, deepest first. */
export function removeStubs(stubs: string[]): void {
  for (const p of [...stubs].sort((a, b) => b.length - a.length)) {
    let st: fs.Stats;
    try {
      st = fs.lstatSync(p);
    } catch {
      continue;
    }
    try {
      if (st.isDirectory() && fs.readdirSync(p).length === 0) fs.rmdirSync(p);
      else if (st.isFile() && st.size === 0) fs.unlinkSync(p);
    } catch {
      /* something changed it: keep */
    }
  }
}
