/**
 * Tar helpers for the archive transports (oci-archive, docker-archive).
 *
 * Reading: `TarArchive.open` indexes an archive by reading only its headers (seeking over member
 * data), so a multi-GB archive costs one header read per member and no copy. Members are then read
 * in place with ranged `fs.createReadStream`. We parse headers ourselves because tar-stream's
 * extractor is a pure stream parser that cannot report member offsets. Supported: ustar/POSIX
 * (prefix field), GNU long names ('L'/'K'), pax extended headers ('x': path, linkpath, size),
 * base-256 sizes. A gzip-compressed archive is first decompressed into a temp file under
 * os.tmpdir(), removed by close(). Member names are normalised ("./a//b" → "a/b"); the last
 * occurrence of a name wins, as on extraction. Nothing is ever extracted, so hostile names are
 * harmless: they simply never match what we look up.
 *
 * Writing: `writeTarFile` packs a list of entries with tar-stream deterministically (mtime 0,
 * uid/gid 0, no user names, the order given) into `<dest>.tmp-<rand>`, fsyncs it and renames it
 * to `dest`; on failure the temp file is removed and `dest` is untouched.
 *
 * Errors: malformed archives throw E_BAD_ARCHIVE naming the archive (`where`) and the member.
 * Also here: the small crash-safe file helpers the file transports share (atomicWrite, siblingTemp).
 */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import * as zlib from 'node:zlib';
import * as tarStream from 'tar-stream';
import { KilnError } from '../errors';
import { fsyncDir, fsyncFile } from '../util/blobfile';
import { trackTemp } from '../util/cleanup';
import type { Digest } from '../util/digest';

export interface TarMember {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'link' | 'other';
  /** Byte offset of the member's data in the (uncompressed) archive file. */
  offset: number;
  size: number;
  linkname: string;
}

/** Largest pax / GNU long-name record we accept. */
const MAX_EXT_HEADER = 1 << 20;

export function normaliseMemberName(name: string): string {
  const n = path.posix.normalize(name.replace(/^\/+/, ''));
  return n === '.' ? '' : n.replace(/\/+$/, '');
}

function cstr(buf: Buffer, start: number, len: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end === -1 || end > start + len ? start + len : end);
}

function parseNumber(buf: Buffer, start: number, len: number): number {
  if (buf[start]! & 0x80) {
    // GNU base-256: big-endian, first byte's top bit is the marker.
    let v = buf[start]! & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + buf[start + i]!;
    return v;
  }
  const s = cstr(buf, start, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) return NaN;
  return parseInt(s, 8);
}

function checksumOk(h: Buffer): boolean {
  const want = parseNumber(h, 148, 8);
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const b = i >= 148 && i < 156 ? 0x20 : h[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return want === unsigned || want === signed;
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const sp = data.indexOf(0x20, pos);
    if (sp === -1) break;
    const len = parseInt(data.toString('ascii', pos, sp), 10);
    if (!(len > 0) || pos + len > data.length) throw new Error('malformed pax record');
    const rec = data.toString('utf8', sp + 1, pos + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    pos += len;
  }
  return out;
}

async function readAt(fh: fs.promises.FileHandle, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.alloc(len);
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return got === len ? buf : buf.subarray(0, got);
}

/** An indexed tar file; see the module comment. Close it to remove any decompressed temp copy. */
export class TarArchive {
  private constructor(
    /** Used in messages: "oci-archive:/x.tar". */
    readonly where: string,
    /** The uncompressed tar file actually read (a temp copy when the input was gzip'd). */
    readonly file: string,
    private readonly members: Map<string, TarMember>,
    private readonly tempDir: string | undefined,
  ) {}

  /** Indexes `file`; E_BAD_ARCHIVE if it is not a readable tar, E_TRANSPORT if it can't be opened. */
  static async open(file: string, where: string): Promise<TarArchive> {
    let tempDir: string | undefined;
    let tarFile = file;
    let magic: Buffer;
    try {
      const fh = await fs.promises.open(file, 'r');
      try {
        magic = await readAt(fh, 0, 2);
      } finally {
        await fh.close();
      }
    } catch (e) {
      throw new KilnError('E_TRANSPORT', `${where}: cannot open ${file}: ${(e as Error).message}`, { cause: e });
    }
    if (magic.length === 2 && magic[0] === 0x1f && magic[1] === 0x8b) {
      tempDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'kiln-tar-'));
      trackTemp(tempDir);
      tarFile = path.join(tempDir, 'archive.tar');
      try {
        await pipeline(fs.createReadStream(file), zlib.createGunzip(), fs.createWriteStream(tarFile, { flags: 'wx' }));
      } catch (e) {
        await fs.promises.rm(tempDir, { recursive: true, force: true });
        throw new KilnError('E_BAD_ARCHIVE', `${where}: cannot decompress ${file}: ${(e as Error).message}`, { cause: e });
      }
    }
    try {
      return new TarArchive(where, tarFile, await indexTar(tarFile, where), tempDir);
    } catch (e) {
      if (tempDir !== undefined) await fs.promises.rm(tempDir, { recursive: true, force: true });
      throw e;
    }
  }

  names(): string[] {
    return [...this.members.keys()];
  }

  /** The regular file called `name`, following symlinks and hard links (at most 8 hops). */
  lookup(name: string): TarMember | undefined {
    let cur = normaliseMemberName(name);
    for (let hop = 0; hop < 8; hop++) {
      const m = this.members.get(cur);
      if (m === undefined) return undefined;
      if (m.type === 'file') return m;
      if (m.type === 'symlink') cur = normaliseMemberName(path.posix.join(path.posix.dirname(cur), m.linkname));
      else if (m.type === 'link') cur = normaliseMemberName(m.linkname);
      else return undefined;
    }
    return undefined;
  }

  /** The member's bytes as a stream (nothing buffered). */
  stream(m: TarMember): Readable {
    if (m.size === 0) return Readable.from([]);
    return fs.createReadStream(this.file, { start: m.offset, end: m.offset + m.size - 1 });
  }

  /** A small member's bytes; E_BAD_ARCHIVE if it is larger than `max`. */
  async read(m: TarMember, max: number): Promise<Buffer> {
    if (m.size > max) throw new KilnError('E_BAD_ARCHIVE', `${this.where}: ${m.name}: ${m.size} bytes, more than the ${max} allowed`);
    const fh = await fs.promises.open(this.file, 'r');
    try {
      return await readAt(fh, m.offset, m.size);
    } finally {
      await fh.close();
    }
  }

  async close(): Promise<void> {
    if (this.tempDir !== undefined) await fs.promises.rm(this.tempDir, { recursive: true, force: true });
  }
}

async function indexTar(file: string, where: string): Promise<Map<string, TarMember>> {
  const bad = (member: string, why: string) => new KilnError('E_BAD_ARCHIVE', `${where}: ${member}: ${why}`);
  const members = new Map<string, TarMember>();
  const fh = await fs.promises.open(file, 'r');
  try {
    const fileSize = (await fh.stat()).size;
    let pos = 0;
    let longName: string | undefined;
    let longLink: string | undefined;
    let pax: Record<string, string> = {};
    for (;;) {
      const h = await readAt(fh, pos, 512);
      if (h.length === 0) break; // EOF without end blocks: tolerated, like GNU tar.
      if (h.length < 512) throw bad(`header at offset ${pos}`, 'truncated archive');
      if (h.every((b) => b === 0)) break;
      const rawName = cstr(h, 0, 100);
      if (!checksumOk(h)) throw bad(rawName || `header at offset ${pos}`, 'bad tar header checksum (not a tar archive?)');
      const ustar = h.toString('latin1', 257, 263) === 'ustar\0';
      const prefix = ustar ? cstr(h, 345, 155) : '';
      let name = longName ?? pax['path'] ?? (prefix ? `${prefix}/${rawName}` : rawName);
      let size = pax['size'] !== undefined ? Number(pax['size']) : parseNumber(h, 124, 12);
      if (!Number.isSafeInteger(size) || size < 0) throw bad(name, 'invalid size field');
      const dataStart = pos + 512;
      const flag = String.fromCharCode(h[156]!);
      const next = dataStart + Math.ceil(size / 512) * 512;
      if (next > fileSize) throw bad(name, 'truncated archive (member data runs past the end of the file)');
      if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
        if (size > MAX_EXT_HEADER) throw bad(name, 'oversized extended header');
        const data = await readAt(fh, dataStart, size);
        if (flag === 'x') {
          try {
            pax = { ...pax, ...parsePax(data) };
          } catch {
            throw bad(name, 'malformed pax header');
          }
        } else if (flag === 'L') longName = cstr(data, 0, data.length);
        else if (flag === 'K') longLink = cstr(data, 0, data.length);
        pos = next;
        continue;
      }
      const linkname = longLink ?? pax['linkpath'] ?? cstr(h, 157, 100);
      const type: TarMember['type'] =
        flag === '0' || flag === '\0' || flag === '7' ? 'file' : flag === '5' ? 'directory' : flag === '2' ? 'symlink' : flag === '1' ? 'link' : 'other';
      if (type === 'symlink' || type === 'link' || type === 'directory') size = 0;
      name = normaliseMemberName(name);
      if (name !== '') members.set(name, { name, type, offset: dataStart, size, linkname });
      longName = undefined;
      longLink = undefined;
      pax = {};
      pos = next;
    }
    return members;
  } finally {
    await fh.close();
  }
}

/** sha256 and size of a member's bytes, plus (when it is gzip'd) the sha256 of its decompressed bytes. */
export async function digestMember(
  archive: TarArchive,
  m: TarMember,
): Promise<{ digest: Digest; size: number; gzip: boolean; zstd: boolean; uncompressedDigest?: Digest }> {
  const hash = createHash('sha256');
  let first: Buffer | undefined;
  let gunzip: zlib.Gunzip | undefined;
  const inner = createHash('sha256');
  let innerDone: Promise<unknown> = Promise.resolve();
  try {
    for await (const chunk of archive.stream(m) as AsyncIterable<Buffer>) {
      if (first === undefined) {
        first = chunk;
        if (chunk[0] === 0x1f && chunk[1] === 0x8b) {
          gunzip = zlib.createGunzip();
          gunzip.on('data', (d: Buffer) => inner.update(d));
          innerDone = once(gunzip, 'end');
          innerDone.catch(() => undefined);
        }
      }
      hash.update(chunk);
      if (gunzip !== undefined && !gunzip.write(chunk)) await Promise.race([once(gunzip, 'drain'), innerDone]);
    }
    gunzip?.end();
    await innerDone;
  } catch (e) {
    gunzip?.destroy();
    const what = gunzip !== undefined ? 'corrupt gzip data' : 'read error';
    throw new KilnError('E_BAD_ARCHIVE', `${archive.where}: ${m.name}: ${what}: ${(e as Error).message}`, { cause: e });
  }
  const zstd = first !== undefined && first.length >= 4 && first.readUInt32LE(0) === 0xfd2fb528;
  const res = { digest: `sha256:${hash.digest('hex')}` as Digest, size: m.size, gzip: gunzip !== undefined, zstd };
  return gunzip === undefined ? res : { ...res, uncompressedDigest: `sha256:${inner.digest('hex')}` as Digest };
}

export type PackEntry =
  | { name: string; type: 'file'; data: Buffer; mode?: number }
  | { name: string; type: 'file'; file: string; mode?: number }
  | { name: string; type: 'directory'; mode?: number }
  | { name: string; type: 'symlink'; linkname: string };

const FIXED = { mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '' };

async function addEntry(pack: tarStream.Pack, e: PackEntry): Promise<void> {
  let done!: (err?: Error | null) => void;
  const finished = new Promise<void>((res, rej) => (done = (err) => (err ? rej(err) : res())));
  if (e.type === 'directory') {
    pack.entry({ ...FIXED, name: `${e.name}/`, type: 'directory', mode: e.mode ?? 0o755 }, done);
  } else if (e.type === 'symlink') {
    pack.entry({ ...FIXED, name: e.name, type: 'symlink', linkname: e.linkname, mode: 0o120000 /* S_IFLNK: encodes as permission bits 0, as Go writes; tar-stream turns a plain 0 into 0644 */ }, done);
  } else if ('data' in e) {
    pack.entry({ ...FIXED, name: e.name, type: 'file', mode: e.mode ?? 0o644, size: e.data.length }, e.data, done);
  } else {
    const size = (await fs.promises.stat(e.file)).size;
    const w = pack.entry({ ...FIXED, name: e.name, type: 'file', mode: e.mode ?? 0o644, size }, done);
    for await (const chunk of fs.createReadStream(e.file) as AsyncIterable<Buffer>) {
      if (!w.write(chunk)) await once(w, 'drain');
    }
    (w as unknown as { end(): void }).end();
  }
  await finished;
}


/** Packs `entries` (in the given order) into `dest` via `<dest>.tmp-<rand>`, fsync and rename. */
export async function writeTarFile(dest: string, entries: readonly PackEntry[]): Promise<void> {
  const tmp = `${dest}.tmp-${randomSuffix()}`;
  trackTemp(tmp);
  try {
    const pack = tarStream.pack();
    const out = pipeline(pack, fs.createWriteStream(tmp, { flags: 'wx', mode: 0o644 }));
    const failed = out.then(() => new Promise<never>(() => undefined));
    failed.catch(() => undefined);
    for (const e of entries) await Promise.race([addEntry(pack, e), failed]);
    pack.finalize();
    await out;
    await fsyncFile(tmp);
    await fs.promises.rename(tmp, dest);
    await fsyncDir(path.dirname(dest));
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
}

export function randomSuffix(): string {
  return randomBytes(6).toString('hex');
}

/** A hidden sibling of `p`: "<dir>/.<base>.kiln-<what>-<rand>" (same filesystem, so renames work). */
/**
 * Checks that the directory that will hold `p` exists, as podman does: an output path in a
 * missing directory is a user error, and creating directories would leave them behind on abort.
 */
export async function requireParentDir(p: string, where: string): Promise<void> {
  const parent = path.dirname(path.resolve(p));
  const st = await fs.promises.stat(parent).catch(() => undefined);
  if (!st?.isDirectory()) throw new KilnError('E_TRANSPORT', `${where}: cannot write ${p}: directory ${parent} does not exist`);
}

export function siblingTemp(p: string, what: string): string {
  return path.join(path.dirname(p), `.${path.basename(p)}.kiln-${what}-${randomSuffix()}`);
}

/** Writes `file` atomically: temp in the same dir, fsync, rename, fsync dir. */
export async function atomicWrite(file: string, data: string | Buffer): Promise<void> {
  const tmp = `${file}.tmp-${randomSuffix()}`;
  trackTemp(tmp);
  const fh = await fs.promises.open(tmp, 'wx', 0o644);
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    await fs.promises.rename(tmp, file);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await fs.promises.rm(tmp, { force: true });
    throw e;
  }
  await fsyncDir(path.dirname(file));
}

