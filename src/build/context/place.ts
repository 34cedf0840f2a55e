/**
 * Docker's destination placement rules shared by copyInto (copy.ts) and here-document
 * sources (heredoc.ts): what a destination's form says, and where a non-directory goes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Owner, TreeWriter } from './write';

/** True when a COPY/ADD destination names a directory by its form alone. */
export function isDirForm(dest: string): boolean {
  return dest.endsWith('/') || /(^|\/)\.\.?$/.test(dest);
}

/** The container path of `dest` (absolute, or relative to `workdir`). */
export function containerPath(workdir: string, dest: string): string {
  return dest.startsWith('/') ? dest : `${workdir.replace(/\/+$/, '')}/${dest}`;
}

/**
 * Where a non-directory named `name` goes for `hostDest`: inside it when it is directory-form
 * or an existing directory, else hostDest itself (its parent is created).
 */
export function fileTarget(w: TreeWriter, hostDest: string, dirForm: boolean, name: string, owner: Owner): string {
  const st = fs.lstatSync(hostDest, { throwIfNoEntry: false });
  if (dirForm || st?.isDirectory()) return path.join(w.mkdirAll(hostDest, owner), name);
  w.mkdirAll(path.dirname(hostDest), owner);
  return hostDest;
}
