/**
 * `generate-sigstore-key`: writes PREFIX.private (cosign-encrypted ECDSA P-256 key, mode 0600)
 * and PREFIX.pub (PEM), as `skopeo generate-sigstore-key` does. Existing files are never
 * overwritten; each file is written to a temp name, fsynced and renamed, and on any failure
 * neither is left behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import { generateKeyPair } from '../signature/cosign-key';

export interface GenerateKeyOptions {
  outputPrefix: string;
  passphrase: Buffer;
}

function writeNew(file: string, text: string, mode: number): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, 'wx', mode);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    // link(2) fails if `file` appeared meanwhile: never overwrite
    fs.linkSync(tmp, file);
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** Returns the two paths written. */
export function generateSigstoreKey(opts: GenerateKeyOptions): { privateKey: string; publicKey: string } {
  if (opts.outputPrefix === '') throw new KilnError('E_INVALID_ARGUMENT', '--output-prefix must not be empty');
  const priv = `${opts.outputPrefix}.private`;
  const pub = `${opts.outputPrefix}.pub`;
  for (const f of [priv, pub]) {
    if (fs.existsSync(f)) throw new KilnError('E_INVALID_ARGUMENT', `refusing to overwrite existing ${f}`);
  }
  const pair = generateKeyPair(opts.passphrase);
  let wrote = false;
  try {
    writeNew(priv, pair.privateKey, 0o600);
    wrote = true;
    writeNew(pub, pair.publicKey, 0o644);
  } catch (e) {
    // only our own private key: a file that appeared meanwhile (EEXIST) is someone else's
    if (wrote) fs.rmSync(priv, { force: true });
    throw new KilnError('E_IO', `writing ${opts.outputPrefix}.{private,pub}: ${(e as Error).message}`, { cause: e });
  }
  return { privateKey: priv, publicKey: pub };
}
