/**
 * ADD's remote sources: `fetchUrl(url, dir, checksum?)` downloads an http(s) URL with Node's
 * fetch (redirects followed) into `dir`, as Docker does:
 *
 * - the file is named after the URL path's last segment (percent-decoded; "__unnamed__" when
 *   the path has none, as BuildKit's Dockerfile frontend names it), mode 0600, mtime from the
 *   Last-Modified header when there is one (else now);
 * - it is streamed to a temp file in `dir` while hashed, then renamed into place, so `dir` never
 *   holds a partial file under the final name; an existing file of that name is replaced;
 * - `checksum` ("sha256:<hex>", also sha384/sha512 as --checksum allows) is verified: a
 *   mismatch removes the download and fails with E_DIGEST_MISMATCH naming the URL;
 * - HTTP errors and network failures are E_TRANSPORT; a malformed checksum E_INVALID_ARGUMENT.
 * Returns the path, the sha256 digest of the bytes (the cache key) and the name.
 */
import { createHash, randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { KilnError } from '../../errors';
import type { Digest } from '../../util/digest';

export interface Fetched {
  path: string;
  digest: Digest;
  name: string;
}

const ALGOS: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

function parseChecksum(url: string, c: string): { algo: string; hex: string } {
  const m = /^([a-z0-9]+):([a-f0-9]+)$/.exec(c);
  if (!m || ALGOS[m[1]] !== m[2].length) {
    throw new KilnError('E_INVALID_ARGUMENT', `ADD ${url}: invalid --checksum=${c}`, { hint: 'use sha256:<64 hex digits> (or sha384:/sha512:)' });
  }
  return { algo: m[1], hex: m[2] };
}

/** The file name ADD gives a download: the URL path's last segment. */
export function urlFileName(url: string): string {
  let p: string;
  try {
    p = decodeURIComponent(new URL(url).pathname);
  } catch {
    return '__unnamed__';
  }
  const base = path.posix.basename(p);
  return base === '' || base === '.' || base === '..' || base === '/' ? '__unnamed__' : base;
}

export async function fetchUrl(url: string, dir: string, checksum?: string): Promise<Fetched> {
  const want = checksum === undefined ? undefined : parseChecksum(url, checksum);
  let res: Response;
  try {
    res = await fetch(url, { redirect: 'follow' });
  } catch (e) {
    const cause = (e as { cause?: Error }).cause?.message ?? (e as Error).message;
    throw new KilnError('E_TRANSPORT', `ADD ${url}: ${cause}`, { cause: e });
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel().catch(() => undefined);
    throw new KilnError('E_TRANSPORT', `ADD ${url}: HTTP ${res.status} ${res.statusText}`.trimEnd());
  }
  const name = urlFileName(url);
  const tmp = path.join(dir, `.${name}.${randomBytes(6).toString('hex')}.part`);
  const sha = createHash('sha256');
  const other = want && want.algo !== 'sha256' ? createHash(want.algo) : undefined;
  const hasher = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sha.update(chunk);
      other?.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream), hasher, fs.createWriteStream(tmp, { flags: 'wx', mode: 0o600 }));
  } catch (e) {
    await fs.promises.rm(tmp, { force: true });
    throw new KilnError('E_TRANSPORT', `ADD ${url}: download failed: ${(e as Error).message}`, { cause: e });
  }
  const hex = sha.digest('hex');
  const gotHex = other ? other.digest('hex') : hex;
  if (want && gotHex !== want.hex) {
    await fs.promises.rm(tmp, { force: true });
    throw new KilnError('E_DIGEST_MISMATCH', `ADD ${url}: checksum mismatch: expected ${want.algo}:${want.hex}, got ${want.algo}:${gotHex}`, {
      hint: 'the file at the URL is not the one --checksum names; nothing was added',
    });
  }
  await fs.promises.chmod(tmp, 0o600);
  const lm = res.headers.get('last-modified');
  const mtime = lm ? new Date(lm) : null;
  if (mtime && !Number.isNaN(mtime.getTime())) await fs.promises.utimes(tmp, mtime, mtime);
  const final = path.join(dir, name);
  await fs.promises.rename(tmp, final);
  return { path: final, digest: `sha256:${hex}`, name };
}
