/**
 * COPY/ADD here-documents as sources: `COPY <<EOF /dest` writes the body as a file named after
 * the here-document. The placement rules are those of a file source (place.ts): into dest when
 * dest ends in "/" or is an existing directory, else as dest itself. The file is mode 0644
 * unless --chmod says otherwise, owned by --chown's user or root, mtime now.
 */
import { KilnError } from '../../errors';
import { containerPath, fileTarget, isDirForm } from './place';
import { resolveInRoot } from '../../util/rootpath';
import { TreeWriter, type Owner } from './write';

export async function writeHeredocFile(
  rootfs: string,
  workdir: string,
  dest: string,
  name: string,
  content: string,
  chown?: Owner,
  chmod?: number,
  what = `COPY <<${name}`,
): Promise<void> {
  const w = new TreeWriter(rootfs, what);
  const owner = chown ?? { uid: 0, gid: 0 };
  const hostDest = resolveInRoot(rootfs, containerPath(workdir, dest), { followLast: true });
  const now = Date.now() / 1000;
  try {
    const target = fileTarget(w, hostDest, isDirForm(dest), name, owner);
    await w.fileFrom(target, { ...owner, mode: chmod ?? 0o644, atime: now, mtime: now }, (fh) => fh.writeFile(content));
    w.finish();
  } catch (e) {
    if (e instanceof KilnError) throw e;
    throw new KilnError('E_IO', `${what}: writing ${dest}: ${(e as Error).message}`, { cause: e });
  }
}
