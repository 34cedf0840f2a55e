/**
 * Writing content-addressed files safely: stream into a temp file in `tmpDir` (same filesystem
 * as the final path), hash and count while streaming, compare with what was expected, fsync,
 * and only then hand the verified temp file to the caller, who renames it into place (usually
 * under a lock). On any failure the temp file is removed: nothing unverified becomes visible.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError } from '../errors';
import { HashCounter } from './hash-counter';
import type { Digest } from './digest';

export interface Expected {
  digest?: Digest;
  size?: number;
  /** Used in error messages: "layer 2 of docker-archive:/x.tar". */
  what?: string;
}

export interface VerifiedTemp {
  tmpPath: string;
  digest: Digest;
  size: number;
}

export { HashCounter };

export function tempName(dir: string, prefix = 'blob'): string {
  return path.join(dir, `${prefix}-${randomBytes(8).toString('hex')}`);
}

/** Checks a finished hash against expectations; throws E_SIZE_MISMATCH / E_DIGEST_MISMATCH. */
export function checkExpected(got: { digest: Digest; size: number }, expected: Expected): void {
  const what = expected.what ?? 'blob';
  if (expected.size !== undefined && got.size !== expected.size) {
    throw new KilnError('E_SIZE_MISMATCH', `${what}: expected ${expected.size} bytes, got ${got.size}`);
  }
  if (expected.digest !== undefined && got.digest !== expected.digest) {
    throw new KilnError('E_DIGEST_MISMATCH', `${what}: digest mismatch: expected ${expected.digest}, got ${got.digest}`, {
      hint: 'the source is corrupt or was modified; nothing was stored',
    });
  }
}

/**
 * Streams `src` to a fresh temp file in tmpDir, verified and fsynced. The caller renames or
 * removes it. `opts.through`: a pass-through stream the bytes also flow through (after the
 * hashing) on their way to the file, e.g. to compute something else in the same pass;
 * `opts.highWaterMark`: the file stream's buffer.
 */
export async function writeVerifiedTemp(src: Readable, tmpDir: string, expected: Expected = {}, opts: { through?: Transform; highWaterMark?: number } = {}): Promise<VerifiedTemp> {
  const tmpPath = tempName(tmpDir);
  const counter = new HashCounter(expected.size, expected.what);
  const file = fs.createWriteStream(tmpPath, { flags: 'wx', mode: 0o644, highWaterMark: opts.highWaterMark });
  try {
    await (opts.through ? pipeline(src, counter, opts.through, file) : pipeline(src, counter, file));
    const got = { digest: counter.digest(), size: counter.size };
    checkExpected(got, expected);
    await fsyncFile(tmpPath);
    return { tmpPath, ...got };
  } catch (e) {
    await fs.promises.rm(tmpPath, { force: true });
    src.destroy();
    throw e;
  }
}

/**
 * fsyncs a file or directory by path (a read-only descriptor suffices on Linux): a written
 * file's data, or a directory so that a rename inside it survives a crash.
 */
export async function fsyncPath(p: string): Promise<void> {
  const fd = await fs.promises.open(p, 'r');
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/** @see fsyncPath */
export const fsyncFile = fsyncPath;
/** @see fsyncPath */
export const fsyncDir = fsyncPath;
