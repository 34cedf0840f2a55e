/**
 * ADD's automatic extraction of local tar archives.
 *
 * `detectArchive(file)`: what Docker calls an archive, judged by content only (never the
 * name): a tar, or a gzip/bzip2/xz-compressed tar, whose first decompressed 512-byte block is a
 * tar header with a valid checksum (Go's tar reader accepting the first header). A compressed
 * file that is not a tar (notes.txt.gz) is no archive: ADD copies it as it is.
 *
 * `extractArchive(file, kind, writer, hostDir, what)` unpacks it into the rootfs directory
 * `hostDir` like Docker's chrooted untar: member names are taken relative to hostDir (a leading
 * "/" included); a name or hard-link target whose `..` climbs out of hostDir, or a relative
 * symlink target that does, is refused with E_HOSTILE_TAR; parent directories are resolved
 * inside the rootfs (existing symlinks followed, never out of it) and created 0755 when
 * missing; entries replace non-directories and merge into directories (whose metadata they
 * then set); ownership, mode (incl. setuid/setgid/sticky) and mtime come from the archive,
 * not from --chown/--chmod. Devices need root. PAX xattrs are not applied. Corrupt data is
 * E_BAD_ARCHIVE. gzip is decoded with zlib, bzip2 and xz by the `bzip2`/`xz` programs.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import * as tarStream from 'tar-stream';
import { KilnError } from '../../errors';
import { relativeTo, resolveInRoot } from '../../util/rootpath';
import type { Meta, TreeWriter } from './write';

export type ArchiveKind = 'tar' | 'gzip' | 'bzip2' | 'xz';

function sniff(b: Buffer): ArchiveKind {
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return 'gzip';
  if (b.length >= 3 && b.subarray(0, 3).toString('latin1') === 'BZh') return 'bzip2';
  if (b.length >= 6 && b.subarray(0, 6).equals(Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]))) return 'xz';
  return 'tar';
}

/** The decompressed bytes of `file`; `done` settles when a helper program has exited. */
function openDecompressed(file: string, kind: ArchiveKind): { stream: Readable; done: Promise<void>; stop: () => void } {
  if (kind === 'tar' || kind === 'gzip') {
    const raw = fs.createReadStream(file);
    if (kind === 'tar') return { stream: raw, done: Promise.resolve(), stop: () => raw.destroy() };
    const gunzip = zlib.createGunzip();
    raw.on('error', (e) => gunzip.destroy(e));
    raw.pipe(gunzip);
    return { stream: gunzip, done: Promise.resolve(), stop: () => (raw.destroy(), gunzip.destroy()) };
  }
  const child = spawn(kind, ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let stopped = false;
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', (e) => reject(new KilnError('E_IO', `cannot run ${kind} to decompress ${file}: ${e.message}`, { hint: `install it: apt-get install -y ${kind === 'xz' ? 'xz-utils' : 'bzip2'}`, cause: e })));
    child.on('close', (code) => {
      if (code === 0 || stopped) resolve();
      else reject(new KilnError('E_BAD_ARCHIVE', `${file}: ${kind} failed (exit ${code}): ${stderr.trim()}`));
    });
  });
  return { stream: child.stdout, done, stop: () => ((stopped = true), child.kill()) };
}

/** True when `b` is a tar header block with a valid checksum (signed or unsigned sum). */
export function isTarHeader(b: Buffer): boolean {
  if (b.length < 512 || b.subarray(0, 512).every((x) => x === 0)) return false;
  const field = b.subarray(148, 156).toString('latin1').replace(/[\0 ]+$/g, '').trim();
  if (!/^[0-7]+$/.test(field)) return false;
  const want = parseInt(field, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const x = i >= 148 && i < 156 ? 0x20 : b[i];
    unsigned += x;
    signed += x > 127 ? x - 256 : x;
  }
  return want === unsigned || want === signed;
}

async function readUpTo(s: Readable, n: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let len = 0;
  try {
    for await (const c of s) {
      chunks.push(c as Buffer);
      len += (c as Buffer).length;
      if (len >= n) break;
    }
  } catch {
    // corrupt compressed data: whatever came before decides
  }
  return Buffer.concat(chunks);
}

/** The archive kind of `file`, or null when ADD should copy it as a plain file. */
export async function detectArchive(file: string): Promise<ArchiveKind | null> {
  const fh = await fs.promises.open(file, 'r');
  let magic: Buffer;
  try {
    const buf = Buffer.alloc(6);
    const { bytesRead } = await fh.read(buf, 0, 6, 0);
    magic = buf.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
  const kind = sniff(magic);
  const d = openDecompressed(file, kind);
  const head = await readUpTo(d.stream, 512);
  d.stop();
  await d.done.catch(() => undefined);
  return isTarHeader(head) ? kind : null;
}

function hostile(what: string, name: string, rule: string): KilnError {
  return new KilnError('E_HOSTILE_TAR', `${what}: refusing archive member ${JSON.stringify(name)}: ${rule}`);
}

/** "./a//b/" → "a/b" relative to the extraction dir; null when `..` climbs out of it. */
function memberPath(name: string): string | null {
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (parts.length === 0) return null;
      parts.pop();
    } else parts.push(c);
  }
  return parts.join('/');
}

export async function extractArchive(file: string, kind: ArchiveKind, w: TreeWriter, hostDir: string, what: string): Promise<void> {
  const dirRel = relativeTo(w.rootfs, hostDir);
  const inRoot = (rel: string): string => (dirRel === '' ? rel : rel === '' ? dirRel : `${dirRel}/${rel}`);
  const d = openDecompressed(file, kind);
  d.done.catch(() => undefined); // awaited below on success; on failure the first error wins
  const ex = tarStream.extract({ allowUnknownFormat: true } as Parameters<typeof tarStream.extract>[0]);
  d.stream.on('error', (e) => ex.destroy(e));
  d.stream.pipe(ex);
  try {
    for await (const entry of ex) {
      const h = entry.header;
      const rel = memberPath(h.name);
      if (rel === null) throw hostile(what, h.name, 'its path climbs out of the destination directory');
      const m: Meta = { uid: h.uid ?? 0, gid: h.gid ?? 0, mode: (h.mode ?? 0o644) & 0o7777, mtime: (h.mtime?.getTime() ?? 0) / 1000, atime: (h.mtime?.getTime() ?? 0) / 1000 };
      // The parent, resolved inside the rootfs (symlinks followed), created when missing.
      const parentRel = rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
      const parent = rel === '' ? null : w.mkdirAll(resolveInRoot(w.rootfs, inRoot(parentRel), { followLast: true }), { uid: 0, gid: 0 });
      const target = parent === null ? hostDir : path.join(parent, path.posix.basename(rel));
      switch (h.type) {
        case 'directory':
          // "./" itself: Docker's untar leaves the existing destination's metadata alone.
          if (parent !== null) w.dir(target, m, 'all');
          break;
        case 'file':
        case 'contiguous-file':
          if (parent === null) throw hostile(what, h.name, 'a file cannot replace the destination directory');
          await w.fileFrom(target, m, async (fh) => {
            for await (const chunk of entry) {
              const b = chunk as Buffer;
              for (let off = 0; off < b.length; ) off += (await fh.write(b, off)).bytesWritten;
            }
          });
          break;
        case 'symlink': {
          const link = h.linkname ?? '';
          if (!link.startsWith('/') && memberPath(`${parentRel}/${link}`) === null) throw hostile(what, h.name, `its symlink target "${link}" climbs out of the destination directory`);
          if (parent === null) throw hostile(what, h.name, 'a symlink cannot replace the destination directory');
          w.symlink(target, link, m);
          break;
        }
        case 'link': {
          const lt = memberPath(h.linkname ?? '');
          if (lt === null || lt === '') throw hostile(what, h.name, `its hard link target "${h.linkname}" is outside the destination directory`);
          if (parent === null) throw hostile(what, h.name, 'a hard link cannot replace the destination directory');
          w.hardlink(target, resolveInRoot(w.rootfs, inRoot(lt)));
          break;
        }
        case 'character-device':
        case 'block-device':
        case 'fifo':
          if (parent === null) throw hostile(what, h.name, 'a device cannot replace the destination directory');
          w.node(target, h.type === 'fifo' ? 'p' : h.type === 'block-device' ? 'b' : 'c', h.devmajor ?? 0, h.devminor ?? 0, m);
          break;
        default:
          throw new KilnError('E_BAD_ARCHIVE', `${what}: archive member ${JSON.stringify(h.name)} has an unsupported type ${h.type}`);
      }
      entry.resume();
    }
    await d.done;
  } catch (e) {
    d.stop();
    if (e instanceof KilnError) throw e;
    const err = e as NodeJS.ErrnoException;
    if (err.syscall) throw new KilnError('E_IO', `${what}: extracting ${file}: ${err.message}`, { cause: e });
    throw new KilnError('E_BAD_ARCHIVE', `${what}: ${file} is not a readable tar archive: ${err.message}`, { cause: e });
  }
}
