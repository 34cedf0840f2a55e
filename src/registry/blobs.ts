/**
 * Blob operations against /v2/<repo>/blobs/…: HEAD, streamed and verified GET, upload
 * (POST then one PUT, or PATCH chunks then PUT for large blobs) and cross-repository mount.
 *
 * Streams returned by openBlob verify while flowing: the last chunk is followed by an
 * E_SIZE_MISMATCH / E_DIGEST_MISMATCH error instead of the end of the stream when the bytes
 * (or their count) differ from the descriptor, so a consumer that stores the stream fails
 * before anything is committed. A truncated response fails the same way.
 */
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { finished } from 'node:stream/promises';
import { KilnError } from '../errors';
import type { Descriptor } from '../image/oci';
import { HashCounter, checkExpected } from '../util/blobfile';
import { sha256, type Digest } from '../util/digest';
import { AuthRetryError, responseHeader, type RegistryClient } from './client';

/** Blobs larger than this are uploaded in PATCH chunks of this size. */
export const CHUNK_SIZE = 64 << 20;

/** Whether the repository has the blob (HEAD 200). */
export async function blobExists(client: RegistryClient, repo: string, digest: Digest): Promise<boolean> {
  const url = client.url(`/v2/${repo}/blobs/${digest}`);
  const res = await client.request('HEAD', url, { scope: `repository:${repo}:pull` });
  await res.body.dump();
  if (res.statusCode === 200) return true;
  if (res.statusCode === 404) return false;
  throw await client.fail('HEAD', url, res, `blob ${digest}`);
}

/** HashCounter that fails at the end of the stream unless size and digest match the descriptor. */
class Verifier extends HashCounter {
  constructor(private readonly desc: Descriptor, private readonly label: string) {
    super(desc.size, label);
  }
  override _flush(cb: TransformCallback): void {
    super._flush((err) => {
      if (err) {
        cb(err);
        return;
      }
      try {
        checkExpected({ digest: this.digest(), size: this.size }, { digest: this.desc.digest, size: this.desc.size, what: this.label });
        cb();
      } catch (e) {
        cb(e as Error);
      }
    });
  }
}

/**
 * Counts only: fails as soon as more than the descriptor's size arrives, and at the end when
 * fewer did; for consumers that hash the bytes themselves (the store's putBlob), so a layer is
 * hashed once, not twice.
 */
class SizeGuard extends Transform {
  private size = 0;
  constructor(private readonly desc: Descriptor, private readonly label: string) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    if (this.size > this.desc.size) cb(new KilnError('E_SIZE_MISMATCH', `${this.label}: more than the expected ${this.desc.size} bytes`));
    else cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    cb(this.size === this.desc.size ? null : new KilnError('E_SIZE_MISMATCH', `${this.label}: expected ${this.desc.size} bytes, got ${this.size}`));
  }
}

/**
 * GETs a blob as a verifying stream (module comment). 404 is E_BLOB_UNKNOWN. With
 * `verify: 'size'` only the size is enforced: for a consumer that verifies the digest itself.
 */
export async function openBlob(client: RegistryClient, repo: string, desc: Descriptor, verify: 'digest' | 'size' = 'digest'): Promise<Readable> {
  const url = client.url(`/v2/${repo}/blobs/${desc.digest}`);
  const what = `${client.host}/${repo}: blob ${desc.digest}`;
  const res = await client.request('GET', url, { scope: `repository:${repo}:pull` });
  if (res.statusCode === 404) {
    await res.body.dump();
    throw new KilnError('E_BLOB_UNKNOWN', `${what}: blob unknown to the registry`);
  }
  if (res.statusCode !== 200) throw await client.fail('GET', url, res, `blob ${desc.digest}`);
  const v = verify === 'digest' ? new Verifier(desc, what) : new SizeGuard(desc, what);
  res.body.on('error', (e) => v.destroy(new KilnError('E_TRANSPORT', `${what}: download failed: ${e.message}`, { cause: e })));
  v.on('close', () => {
    if (!res.body.destroyed) res.body.destroy();
  });
  return res.body.pipe(v);
}

/**
 * Tries to mount a blob from another repository of the same registry; true when the registry
 * did (201). A 202 (it started an upload instead) is cancelled and reported as false.
 */
export async function mountBlob(client: RegistryClient, repo: string, digest: Digest, from: string): Promise<boolean> {
  const url = client.url(`/v2/${repo}/blobs/uploads/?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`);
  const res = await client.request('POST', url, { scope: `repository:${repo}:pull,push repository:${from}:pull` });
  await res.body.dump();
  if (res.statusCode === 201) return true;
  const loc = responseHeader(res.headers, 'location');
  if (res.statusCode === 202 && loc !== undefined) {
    const del = await client.request('DELETE', client.url(loc), { scope: `repository:${repo}:pull,push` }).catch(() => undefined);
    await del?.body.dump();
  }
  return false;
}

async function startUpload(client: RegistryClient, repo: string): Promise<URL> {
  const url = client.url(`/v2/${repo}/blobs/uploads/`);
  const res = await client.request('POST', url, { scope: `repository:${repo}:pull,push`, headers: { 'content-length': '0' } });
  if (res.statusCode !== 202) throw await client.fail('POST', url, res, 'starting a blob upload');
  await res.body.dump();
  const loc = responseHeader(res.headers, 'location');
  if (loc === undefined) throw new KilnError('E_TRANSPORT', `POST ${url.origin}${url.pathname}: the registry sent no upload Location`);
  return new URL(loc, res.url);
}

function withDigest(loc: URL, digest: Digest): URL {
  const u = new URL(loc);
  u.searchParams.set('digest', digest);
  return u;
}

/** Reads up to `n` bytes from an async iterator of chunks, keeping the rest in `carry`. */
async function take(it: AsyncIterator<Buffer>, carry: { buf: Buffer; done: boolean }, n: number): Promise<Buffer> {
  const pieces: Buffer[] = carry.buf.length > 0 ? [carry.buf] : [];
  let have = carry.buf.length;
  while (have < n && !carry.done) {
    const r = await it.next();
    if (r.done) carry.done = true;
    else {
      pieces.push(r.value);
      have += r.value.length;
    }
  }
  const all = pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces, have);
  const out = all.subarray(0, n);
  carry.buf = all.subarray(out.length);
  return out;
}

/**
 * Uploads a blob whose digest and size are known. Small blobs go in one PUT streamed from
 * `stream`; larger ones in PATCH chunks of CHUNK_SIZE, then a closing PUT. The bytes are hashed
 * on the way and checked against `digest`/`size` (E_DIGEST_MISMATCH / E_SIZE_MISMATCH); the
 * registry checks the digest too.
 *
 * When the registry token expires while the stream is being sent (client.ts AuthRetryError),
 * the upload starts over (new POST) with `reopen()`'s fresh stream, once; without `reopen` it
 * fails with E_TRANSPORT "token expired during upload; retry".
 */
export async function uploadBlob(
  client: RegistryClient,
  repo: string,
  stream: Readable,
  digest: Digest,
  size: number,
  what: string,
  reopen?: () => Readable,
): Promise<void> {
  let src = stream;
  for (let attempt = 1; ; attempt++) {
    try {
      await uploadOnce(client, repo, src, digest, size, what);
      return;
    } catch (e) {
      if (!(e instanceof AuthRetryError)) throw e;
      src.destroy();
      if (reopen === undefined || attempt >= 2) {
        throw new KilnError('E_TRANSPORT', `${what}: the registry token expired during the upload; retry`, { cause: e, hint: 'run the command again' });
      }
      src = reopen();
    }
  }
}

async function uploadOnce(client: RegistryClient, repo: string, stream: Readable, digest: Digest, size: number, what: string): Promise<void> {
  const scope = `repository:${repo}:pull,push`;
  let loc = await startUpload(client, repo);
  const counter = new HashCounter(size, what);
  const hashed = stream.pipe(counter);
  stream.on('error', (e) => counter.destroy(e));
  // the counter hashes on the thread pool: the registry may answer before the last bytes were
  // hashed, so the check waits for the counter to finish
  const check = async () => {
    await finished(counter, { readable: false });
    checkExpected({ digest: counter.digest(), size: counter.size }, { digest, size, what });
  };
  if (size <= CHUNK_SIZE) {
    const url = withDigest(loc, digest);
    const res = await client.request('PUT', url, { body: hashed, scope, headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) } });
    if (res.statusCode !== 201) {
      // our own digest mismatch is the clearer error, when the whole body was read
      if (counter.writableFinished) await check();
      throw await client.fail('PUT', url, res, `blob ${digest}`);
    }
    await check();
    await res.body.dump();
    return;
  }
  const it = hashed[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const carry = { buf: Buffer.alloc(0), done: false };
  let offset = 0;
  for (;;) {
    const chunk = await take(it, carry, CHUNK_SIZE);
    if (chunk.length === 0) break;
    const res = await client.request('PATCH', loc, {
      body: chunk,
      scope,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(chunk.length), 'content-range': `${offset}-${offset + chunk.length - 1}` },
    });
    if (res.statusCode !== 202) throw await client.fail('PATCH', loc, res, `blob ${digest} chunk at ${offset}`);
    await res.body.dump();
    const next = responseHeader(res.headers, 'location');
    if (next !== undefined) loc = new URL(next, loc);
    offset += chunk.length;
  }
  await check();
  const url = withDigest(loc, digest);
  const res = await client.request('PUT', url, { scope, headers: { 'content-length': '0' } });
  if (res.statusCode !== 201) throw await client.fail('PUT', url, res, `blob ${digest}`);
  await res.body.dump();
}

/** Small blobs (signature payloads, bundles, artifact configs) are read whole, up to this size. */
export const MAX_SMALL_BLOB = 4 << 20;

/** GETs and verifies a small blob whole; E_BAD_MANIFEST when its descriptor says it is too large. */
export async function readSmallBlob(client: RegistryClient, repo: string, desc: Descriptor, what: string): Promise<Buffer> {
  if (desc.size > MAX_SMALL_BLOB) throw new KilnError('E_BAD_MANIFEST', `${what}: ${desc.size} bytes is more than the ${MAX_SMALL_BLOB} allowed`);
  const chunks: Buffer[] = [];
  for await (const c of await openBlob(client, repo, desc)) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Uploads `bytes` unless the repository has them; returns their digest. */
export async function putSmallBlob(client: RegistryClient, repo: string, bytes: Buffer, what: string): Promise<Digest> {
  const digest = sha256(bytes);
  if (!(await blobExists(client, repo, digest))) await uploadBlob(client, repo, Readable.from([bytes]), digest, bytes.length, what, () => Readable.from([bytes]));
  return digest;
}
