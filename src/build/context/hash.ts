/**
 * The content hash of a COPY/ADD source selection: `hashSources(root, selected, opts)`, the
 * cache key of what the copy would write.
 *
 * It is sha256 over a canonical record per copied thing, in selection order (each selected
 * source, then its directory entries parents first, names sorted): the path, the file type,
 * the permission bits including setuid/setgid/sticky, uid:gid only with `ownership` (a COPY
 * --from keeps them; from the build context they become root or --chown, so they must not
 * count), the size and content sha256 of regular files, the target of symlinks, the device
 * number of devices, hard links inside the selection (as "same inode as <path>"), and xattrs
 * (security.capability etc., see xattrs.ts). Never atime/mtime/ctime: touching a file keeps
 * the key.
 *
 * File content digests are memoised for the life of the process in a map keyed by
 * dev:ino:size:mtimeNs:ctimeNs (any write changes ctime, so a hit is the same bytes). Files
 * up to 64 KiB are read synchronously (yielding to the event loop every few hundred), larger
 * ones with at most `HASH_CONCURRENCY` in flight, those over 1 MiB on the worker pool, so the
 * event loop is never held for long.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Digest } from '../../util/digest';
import { KilnError } from '../../errors';
import type { Selected } from './select';
import { readXattrs } from './xattrs';
import { forEachBounded } from '../../util/bounded';
import { runInWorker } from '../../util/pool';
import type { LayerTask } from '../../../workers/layer';

export interface HashOptions {
  /** include uid/gid (true when the copy preserves ownership: COPY --from without --chown) */
  ownership?: boolean;
}

const memo = new Map<string, string>();
const TINY = 64 << 10;
const SMALL = 1 << 20;
const HASH_CONCURRENCY = 16;

/** Number of memoised file digests (for tests and diagnostics). */
export function memoSize(): number {
  return memo.size;
}

function memoKey(st: fs.BigIntStats): string {
  return `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** sha256 (hex) of a regular file's bytes, memoised by identity and change times. */
export async function fileDigest(p: string, st: fs.BigIntStats): Promise<string> {
  const key = memoKey(st);
  const hit = memo.get(key);
  if (hit !== undefined) return hit;
  const h = createHash('sha256');
  try {
    if (st.size <= BigInt(TINY)) {
      h.update(fs.readFileSync(p)); // a few µs: cheaper than four promise round trips
    } else if (st.size <= BigInt(SMALL)) {
      h.update(await fs.promises.readFile(p));
    } else {
      // big files are hashed on the worker pool: the event loop stays free for other stages
      const hex = await runInWorker<LayerTask, string>('layer', { op: 'digest', path: p });
      memo.set(key, hex);
      return hex;
    }
  } catch (e) {
    throw new KilnError('E_IO', `hashing ${p}: ${(e as Error).message}`, { cause: e });
  }
  const hex = h.digest('hex');
  memo.set(key, hex);
  return hex;
}

function typeOf(st: fs.BigIntStats): string {
  if (st.isFile()) return 'f';
  if (st.isDirectory()) return 'd';
  if (st.isSymbolicLink()) return 'l';
  if (st.isCharacterDevice()) return 'c';
  if (st.isBlockDevice()) return 'b';
  if (st.isFIFO()) return 'p';
  return 's';
}

interface Item {
  name: string;
  path: string;
  st: fs.BigIntStats;
  link?: string;
}


export async function hashSources(root: string, selected: Selected[], opts: HashOptions = {}): Promise<Digest> {
  void root; // every selected source carries its host path
  const items: Item[] = [];
  for (const [i, s] of selected.entries()) {
    items.push({ name: `${i}:${s.relPath}:${s.parentsRel}`, path: s.realPath, st: s.st });
    for (const e of s.entries) items.push({ name: `${i}:${s.relPath}/${e.rel}`, path: e.path, st: e.st, link: e.link });
  }
  // Hard links: the first path of each multiply-linked inode carries the content.
  const firstOf = new Map<string, string>();
  const linkedTo = new Map<Item, string>();
  for (const it of items) {
    if (!it.st.isFile() || it.st.nlink < 2n) continue;
    const ino = `${it.st.dev}:${it.st.ino}`;
    const first = firstOf.get(ino);
    if (first === undefined) firstOf.set(ino, it.name);
    else linkedTo.set(it, first);
  }
  const digests = new Map<Item, string>();
  const toHash = items.filter((it) => it.st.isFile() && !linkedTo.has(it));
  let n = 0;
  for (const it of toHash) {
    if (it.st.size > BigInt(TINY)) continue;
    digests.set(it, await fileDigest(it.path, it.st));
    if (++n % 256 === 0) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  await forEachBounded(
    toHash.filter((it) => it.st.size > BigInt(TINY)),
    HASH_CONCURRENCY,
    async (it) => {
      digests.set(it, await fileDigest(it.path, it.st));
    },
  );
  const h = createHash('sha256');
  h.update('kiln-copy-sources-v1\n');
  for (const it of items) {
    const st = it.st;
    const type = typeOf(st);
    let extra: string;
    if (linkedTo.has(it)) extra = `hardlink:${linkedTo.get(it)}`;
    else if (type === 'f') extra = `${st.size}:${digests.get(it)}`;
    else if (type === 'l') extra = it.link ?? fs.readlinkSync(it.path);
    else if (type === 'c' || type === 'b') extra = String(st.rdev);
    else extra = '';
    const owner = opts.ownership ? `${st.uid}:${st.gid}` : '';
    const xattrs = readXattrs(it.path).map(([k, v]) => `${k}=${v.toString('base64')}`);
    h.update(`${JSON.stringify([it.name, type, (Number(st.mode) & 0o7777).toString(8), owner, extra, xattrs])}\n`);
  }
  return `sha256:${h.digest('hex')}`;
}
