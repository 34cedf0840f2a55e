/**
 * Sigstore signing keys in cosign's file formats, as `skopeo generate-sigstore-key` and
 * `cosign generate-key-pair` write them and podman/skopeo read them:
 *
 * - public key: PEM "PUBLIC KEY" (PKIX SubjectPublicKeyInfo), ECDSA P-256;
 * - private key: PEM "ENCRYPTED COSIGN PRIVATE KEY" (also read: "ENCRYPTED SIGSTORE PRIVATE
 *   KEY") whose body is the JSON of go-securesystemslib's `encrypted` package:
 *   `{"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},"cipher":{"name":"nacl/secretbox",
 *   "nonce"},"ciphertext"}` (base64 fields), the plaintext being the PKCS#8 DER private key.
 *   The key is scrypt(passphrase, salt, N, r, p) → 32 bytes; NaCl secretbox (XSalsa20-Poly1305)
 *   comes from tweetnacl, as Node's crypto has no XSalsa20.
 */
import * as crypto from 'node:crypto';
import nacl from 'tweetnacl';
import { KilnError } from '../errors';

const COSIGN_PEM = 'ENCRYPTED COSIGN PRIVATE KEY';
const SIGSTORE_PEM = 'ENCRYPTED SIGSTORE PRIVATE KEY';
/** What skopeo 1.18 writes (N = 2^16). */
const SCRYPT = { N: 65536, r: 8, p: 1 };

function pem(type: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  return `-----BEGIN ${type}-----\n${b64}-----END ${type}-----\n`;
}

/** The PEM blocks of a file: [type, DER body]. */
function pemBlocks(text: string): [string, Buffer][] {
  const out: [string, Buffer][] = [];
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) out.push([m[1]!, Buffer.from(m[2]!.replace(/\s+/g, ''), 'base64')]);
  return out;
}

function scryptKey(passphrase: Buffer, salt: Buffer, p: { N: number; r: number; p: number }): Buffer {
  return crypto.scryptSync(passphrase, salt, 32, { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r + (1 << 20) });
}

export interface KeyPairPem {
  privateKey: string;
  publicKey: string;
}

/** A new ECDSA P-256 key pair, the private key encrypted with `passphrase` (may be empty). */
export function generateKeyPair(passphrase: Buffer): KeyPairPem {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
  const salt = crypto.randomBytes(32);
  const nonce = crypto.randomBytes(nacl.secretbox.nonceLength);
  const box = nacl.secretbox(pkcs8, nonce, scryptKey(passphrase, salt, SCRYPT));
  const body = {
    kdf: { name: 'scrypt', params: SCRYPT, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(box).toString('base64'),
  };
  return {
    privateKey: pem(COSIGN_PEM, Buffer.from(JSON.stringify(body))),
    publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
  };
}

interface EncryptedBody {
  kdf?: { name?: unknown; params?: { N?: unknown; r?: unknown; p?: unknown }; salt?: unknown };
  cipher?: { name?: unknown; nonce?: unknown };
  ciphertext?: unknown;
}

/**
 * Decrypts a cosign-format private key file's text. `what` names the file in errors; a wrong
 * passphrase is E_SIGNATURE "cannot decrypt".
 */
export function loadPrivateKey(text: string, passphrase: Buffer, what: string): crypto.KeyObject {
  const block = pemBlocks(text).find(([t]) => t === COSIGN_PEM || t === SIGSTORE_PEM);
  if (!block) throw new KilnError('E_SIGNATURE', `${what}: not a sigstore private key (no "${COSIGN_PEM}" PEM block)`, { hint: 'create one with `kiln generate-sigstore-key --output-prefix PREFIX`' });
  let body: EncryptedBody;
  try {
    body = JSON.parse(block[1].toString('utf8')) as EncryptedBody;
  } catch {
    throw new KilnError('E_SIGNATURE', `${what}: the private key's body is not the encrypted-key JSON`);
  }
  const params = body.kdf?.params;
  const num = (v: unknown): number => (typeof v === 'number' && Number.isInteger(v) && v > 0 ? v : NaN);
  const N = num(params?.N), r = num(params?.r), p = num(params?.p);
  if (body.kdf?.name !== 'scrypt' || body.cipher?.name !== 'nacl/secretbox' || [N, r, p].some(Number.isNaN)
      || typeof body.kdf.salt !== 'string' || typeof body.cipher.nonce !== 'string' || typeof body.ciphertext !== 'string') {
    throw new KilnError('E_SIGNATURE', `${what}: unsupported key encryption (want kdf scrypt, cipher nacl/secretbox)`);
  }
  if (N > 1 << 20 || r > 32 || p > 16) throw new KilnError('E_SIGNATURE', `${what}: scrypt parameters N=${N} r=${r} p=${p} are beyond what kiln accepts`);
  const key = scryptKey(passphrase, Buffer.from(body.kdf.salt, 'base64'), { N, r, p });
  const plain = nacl.secretbox.open(Buffer.from(body.ciphertext, 'base64'), Buffer.from(body.cipher.nonce, 'base64'), key);
  if (plain === null) throw new KilnError('E_SIGNATURE', `${what}: cannot decrypt the private key: wrong passphrase`);
  let k: crypto.KeyObject;
  try {
    k = crypto.createPrivateKey({ key: Buffer.from(plain), format: 'der', type: 'pkcs8' });
  } catch (e) {
    throw new KilnError('E_SIGNATURE', `${what}: the decrypted key is not a PKCS#8 private key: ${(e as Error).message}`);
  }
  if (k.asymmetricKeyType !== 'ec' || k.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new KilnError('E_SIGNATURE', `${what}: only ECDSA P-256 keys are supported (this one is ${k.asymmetricKeyType}${k.asymmetricKeyDetails?.namedCurve ? ` ${k.asymmetricKeyDetails.namedCurve}` : ''})`);
  }
  return k;
}

/** The public keys of PEM text (a file may hold several "PUBLIC KEY" blocks). */
export function loadPublicKeys(text: string, what: string): crypto.KeyObject[] {
  const keys = pemBlocks(text).filter(([t]) => t === 'PUBLIC KEY').map(([, der], i) => {
    try {
      return crypto.createPublicKey({ key: der, format: 'der', type: 'spki' });
    } catch (e) {
      throw new KilnError('E_POLICY', `${what}: public key ${i + 1} is not valid: ${(e as Error).message}`);
    }
  });
  if (keys.length === 0) throw new KilnError('E_POLICY', `${what}: no "PUBLIC KEY" PEM block`);
  return keys;
}

/** A key's identifier for Sigstore bundles' `publicKey.hint`: sha256 of its SPKI DER, hex. */
export function keyHint(k: crypto.KeyObject): string {
  const pub = k.type === 'private' ? crypto.createPublicKey(k) : k;
  return crypto.createHash('sha256').update(pub.export({ format: 'der', type: 'spki' })).digest('hex');
}
