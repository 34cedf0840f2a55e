/**
 * Extended attributes that travel with copied files (security.capability above all: a binary
 * copied from another stage keeps its file capabilities). overlayfs's own metadata
 * (trusted.overlay.*, user.overlay.*) and the host's SELinux label never travel, the same set
 * the layer differ leaves out.
 */
import { native } from '../../native';

export type Xattrs = [string, Buffer][];

function travels(name: string): boolean {
  return !name.startsWith('trusted.overlay.') && !name.startsWith('user.overlay.') && name !== 'security.selinux';
}

function errno(e: unknown): string | undefined {
  return (e as { code?: string } | null)?.code;
}

/** The attributes of `p` (not following a symlink), sorted by name; [] where there are none. */
export function readXattrs(p: string): Xattrs {
  const n = native();
  let names: string[];
  try {
    names = n.llistxattr(p);
  } catch (e) {
    if (errno(e) === 'ENOTSUP' || errno(e) === 'EOPNOTSUPP') return [];
    throw e;
  }
  const out: Xattrs = [];
  for (const k of names.filter(travels).sort()) {
    const v = n.lgetxattr(p, k);
    if (v !== null) out.push([k, v]);
  }
  return out;
}

/**
 * Sets the attributes on `p` (not following a symlink). A filesystem without xattrs (ENOTSUP)
 * or a namespace we may not write (EPERM: trusted.* unprivileged, user.* on a symlink) skips
 * that attribute, as BuildKit's copier does with its default error handler for such cases.
 */
export function writeXattrs(p: string, list: Xattrs): void {
  if (list.length === 0) return;
  const n = native();
  for (const [k, v] of list) {
    try {
      n.lsetxattr(p, k, v);
    } catch (e) {
      const c = errno(e);
      if (c !== 'ENOTSUP' && c !== 'EOPNOTSUPP' && c !== 'EPERM') throw e;
    }
  }
}
