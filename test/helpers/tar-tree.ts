/**
 * Test helpers to describe directory trees: `manifest` (what a layer means: path, type, mode,
 * owner, mtime, content hash, link target, device numbers, xattrs, hardlink groups) for
 * comparing two extractions, and `snapshot` (additionally inode numbers, link counts and
 * nanosecond times) for proving a sentinel tree was not touched at all.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { native } from '../../src/native';

export interface Rec {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  sha256?: string;
  link?: string;
  rdev?: number;
  xattrs?: string;
  hardlinkOf?: string;
}

function typeOf(st: fs.Stats): string {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

function xattrsOf(p: string): string | undefined {
  const names = native().llistxattr(p).sort();
  if (names.length === 0) return undefined;
  return names.map((n) => `${n}=${native().lgetxattr(p, n)?.toString('hex')}`).join(',');
}

function walk(root: string, rel: string, out: string[], exclude: ReadonlySet<string>): void {
  for (const n of fs.readdirSync(path.join(root, rel)).sort()) {
    const r = rel ? `${rel}/${n}` : n;
    if (exclude.has(r)) continue;
    out.push(r);
    if (fs.lstatSync(path.join(root, r)).isDirectory()) walk(root, r, out, exclude);
  }
}

/** A comparable description of the tree below `root` (root itself excluded). */
export function manifest(root: string): Rec[] {
  const paths: string[] = [];
  walk(root, '', paths, new Set());
  const inodes = new Map<number, string>();
  return paths.map((r) => {
    const p = path.join(root, r);
    const st = fs.lstatSync(p);
    const rec: Rec = { path: r, type: typeOf(st), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, size: 0, mtime: Math.floor(st.mtimeMs / 1000) };
    if (rec.type === 'file') {
      rec.size = st.size;
      rec.sha256 = createHash('sha256').update(fs.readFileSync(p)).digest('hex');
    }
    if (rec.type === 'symlink') rec.link = fs.readlinkSync(p);
    if (rec.type === 'char' || rec.type === 'block') rec.rdev = st.rdev;
    const x = xattrsOf(p);
    if (x !== undefined) rec.xattrs = x;
    if (rec.type !== 'dir' && st.nlink > 1 && !(rec.type === 'char' && st.rdev === 0)) {
      const first = inodes.get(st.ino);
      if (first === undefined) inodes.set(st.ino, r);
      else rec.hardlinkOf = first;
    }
    return rec;
  });
}

/** Everything below `root` except the `exclude`d relative paths, down to inode numbers. */
export function snapshot(root: string, exclude: readonly string[] = []): string[] {
  const paths: string[] = [];
  walk(root, '', paths, new Set(exclude));
  return paths.map((r) => {
    const p = path.join(root, r);
    const st = fs.lstatSync(p, { bigint: true });
    const data = st.isFile() ? createHash('sha256').update(fs.readFileSync(p)).digest('hex') : '';
    const link = st.isSymbolicLink() ? fs.readlinkSync(p) : '';
    return [r, st.mode, st.uid, st.gid, st.size, st.ino, st.nlink, st.rdev, st.mtimeNs, st.ctimeNs, data, link, xattrsOf(p) ?? ''].join(' ');
  });
}

/** A fresh temp dir; remove it with `rmTmp`. */
export function mkTmp(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `kiln-${tag}-`));
}

export function rmTmp(dir: string): void {
  fs.rmSync(dir, { recursive: true, force: true });
}
