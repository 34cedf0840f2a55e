/**
 * Registry credentials in containers-auth.json(5) files, as podman/containers/image keep them.
 *
 * Where: `--authfile`, else $REGISTRY_AUTH_FILE, else ${XDG_RUNTIME_DIR}/containers/auth.json
 * (root: /run/containers/0/auth.json). Reading, when neither --authfile nor $REGISTRY_AUTH_FILE
 * is set, also falls back — in this order, first file with a matching entry wins — to
 * $XDG_CONFIG_HOME/containers/auth.json (~/.config/containers/auth.json) and
 * ~/.docker/config.json. An explicit file is the only one read, as containers/image does.
 *
 * Matching: entries are keyed by `host[:port]` or `host[:port]/namespace/repo`; the longest key
 * that is the reference or a `/`-parent of it wins. Legacy keys (`https://index.docker.io/v1/`)
 * are normalized to their host. Credential helpers (`credHelpers`, `credsStore`) are not
 * supported and are reported as errors naming the helper.
 *
 * Writes are atomic (temp file + fsync + rename, mode 0600, parent dirs created 0700) and keep
 * every other key of the file. No error message ever contains a password or token.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KilnError } from '../errors';

export type Credentials = { username: string; password: string } | { identitytoken: string };

export interface AuthOptions {
  /** --authfile */
  authfile?: string;
  /** --creds USER:PASS */
  creds?: string;
}

interface AuthFile {
  auths?: Record<string, { auth?: string; identitytoken?: string; [k: string]: unknown }>;
  credHelpers?: Record<string, string>;
  credsStore?: string;
  [k: string]: unknown;
}

function home(): string {
  return process.env.HOME || os.homedir();
}

/** The auth file podman writes to (and reads first). */
export function authFilePath(opts: { authfile?: string } = {}): string {
  if (opts.authfile) return opts.authfile;
  if (process.env.REGISTRY_AUTH_FILE) return process.env.REGISTRY_AUTH_FILE;
  const uid = process.getuid?.() ?? 0;
  if (uid === 0) return '/run/containers/0/auth.json';
  const runtime = process.env.XDG_RUNTIME_DIR || `/run/user/${uid}`;
  return path.join(runtime, 'containers', 'auth.json');
}

/** Every file read for credentials, in lookup order. */
export function authFileReadPaths(opts: { authfile?: string } = {}): string[] {
  const primary = authFilePath(opts);
  if (opts.authfile || process.env.REGISTRY_AUTH_FILE) return [primary];
  const cfg = process.env.XDG_CONFIG_HOME || path.join(home(), '.config');
  return [primary, path.join(cfg, 'containers', 'auth.json'), path.join(home(), '.docker', 'config.json')];
}

/**
 * The key under which `registry` is stored: `host[:port]` or `host[:port]/repo/path`, without
 * scheme or trailing slash; a tag or digest is an error (credentials are per repository).
 */
export function normalizeKey(registry: string): string {
  let k = registry.trim().replace(/^https?:\/\//, '').replace(/\/+$/, '');
  if (k === 'index.docker.io' || k.startsWith('index.docker.io/')) k = `docker.io${k.slice('index.docker.io'.length)}`;
  if (k === '' || /\s/.test(k)) throw new KilnError('E_INVALID_ARGUMENT', `invalid registry ${JSON.stringify(registry)}`);
  const slash = k.indexOf('/');
  const repo = slash < 0 ? '' : k.slice(slash);
  if (repo.includes('@') || /:[^/]*$/.test(repo)) {
    throw new KilnError('E_INVALID_ARGUMENT', `credentials key ${JSON.stringify(registry)} has a tag or digest`, { hint: 'give a registry (host[:port]) or a repository without :tag or @digest' });
  }
  return k;
}

/** A legacy key (`https://index.docker.io/v1/`) as its host; other keys unchanged. */
function normalizeFileKey(key: string): string {
  if (!/^https?:\/\//.test(key)) return key;
  const host = key.replace(/^https?:\/\//, '').split('/')[0]!;
  return host === 'index.docker.io' ? 'docker.io' : host;
}

function readAuthFile(file: string): AuthFile | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KilnError('E_IO', `reading auth file ${file}: ${(e as Error).message}`, { cause: e });
  }
  if (text.trim() === '') return {};
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // the parser's message may quote file content (a password): say only where it is
    throw new KilnError('E_INVALID_ARGUMENT', `auth file ${file} is not valid JSON`, { hint: 'fix or remove the file' });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new KilnError('E_INVALID_ARGUMENT', `auth file ${file}: expected a JSON object`);
  }
  const f = data as AuthFile;
  if (f.auths !== undefined && (typeof f.auths !== 'object' || f.auths === null || Array.isArray(f.auths))) {
    throw new KilnError('E_INVALID_ARGUMENT', `auth file ${file}: "auths" must be an object`);
  }
  return f;
}

/** `host`, then each `/`-parent of `host/a/b` from the longest: the lookup order of keys. */
function candidateKeys(key: string): string[] {
  const out = [key];
  for (let i = key.lastIndexOf('/'); i > 0; i = key.lastIndexOf('/', i - 1)) out.push(key.slice(0, i));
  return out;
}

function decodeEntry(file: string, key: string, entry: { auth?: unknown; identitytoken?: unknown }): Credentials | undefined {
  if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') return { identitytoken: entry.identitytoken };
  if (entry.auth === undefined || entry.auth === '') return undefined;
  if (typeof entry.auth !== 'string') throw new KilnError('E_INVALID_ARGUMENT', `auth file ${file}: auths["${key}"].auth must be a string`);
  const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw new KilnError('E_INVALID_ARGUMENT', `auth file ${file}: auths["${key}"].auth is not base64 of "user:password"`);
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

function helperError(file: string, helper: string, registry: string): KilnError {
  return new KilnError('E_UNSUPPORTED', `auth file ${file} asks for credential helper docker-credential-${helper} for ${registry}: credential helpers are not supported by kiln`, {
    hint: `log in with "kiln login ${registry}" (or pass --creds) so that the credentials are stored in the auth file`,
  });
}

/** Parses --creds `user:password`; kiln never prompts, so a missing password is an error. */
export function parseCreds(creds: string): { username: string; password: string } {
  const colon = creds.indexOf(':');
  if (colon < 0) {
    throw new KilnError('E_INVALID_ARGUMENT', `--creds: no password given for user ${JSON.stringify(creds)}, and kiln does not prompt for one`, { hint: 'use --creds USER:PASSWORD' });
  }
  const username = creds.slice(0, colon);
  const password = creds.slice(colon + 1);
  if (username === '') throw new KilnError('E_INVALID_ARGUMENT', '--creds: the user name is empty', { hint: 'use --creds USER:PASSWORD' });
  if (password === '') {
    throw new KilnError('E_INVALID_ARGUMENT', `--creds: the password for user ${JSON.stringify(username)} is empty, and kiln does not prompt for one`, { hint: 'use --creds USER:PASSWORD' });
  }
  return { username, password };
}

/**
 * The credentials to use for `registry` (`host[:port]` or an image reference without
 * transport; a tag or digest is ignored): --creds, else the longest matching auth file entry.
 * undefined = anonymous.
 */
export function resolveAuth(registry: string, opts: AuthOptions = {}): Credentials | undefined {
  if (opts.creds !== undefined) return parseCreds(opts.creds);
  const key = normalizeKey(stripTagDigest(registry));
  const host = key.split('/')[0]!;
  const wanted = candidateKeys(key);
  for (const file of authFileReadPaths(opts)) {
    const f = readAuthFile(file);
    if (!f) continue;
    const helper = f.credHelpers?.[host];
    if (typeof helper === 'string' && helper !== '') throw helperError(file, helper, host);
    const entries = new Map<string, { auth?: unknown; identitytoken?: unknown }>();
    for (const [k, v] of Object.entries(f.auths ?? {})) {
      const nk = normalizeFileKey(k);
      // an exact (normalized) key wins over a legacy spelling of the same host
      if (typeof v === 'object' && v !== null && (!entries.has(nk) || nk === k)) entries.set(nk, v);
    }
    for (const k of wanted) {
      const e = entries.get(k);
      if (e) return decodeEntry(file, k, e);
    }
    if (typeof f.credsStore === 'string' && f.credsStore !== '') throw helperError(file, f.credsStore, host);
  }
  return undefined;
}

function stripTagDigest(ref: string): string {
  const at = ref.indexOf('@');
  let r = at >= 0 ? ref.slice(0, at) : ref;
  const slash = r.indexOf('/');
  if (slash >= 0) r = r.replace(/:[^/]*$/, '');
  return r;
}

/** Writes `data` as JSON to `file` atomically with mode 0600, creating its parents with 0700. */
function writeAuthFile(file: string, data: AuthFile): void {
  const dir = path.dirname(path.resolve(file));
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${Date.now().toString(36)}.tmp`);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o600);
    fs.writeFileSync(fd, `${JSON.stringify(data, null, '\t')}\n`);
    fs.fchmodSync(fd, 0o600);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    fd = undefined;
    fs.renameSync(tmp, file);
  } catch (e) {
    if (fd !== undefined) fs.closeSync(fd);
    fs.rmSync(tmp, { force: true });
    throw new KilnError('E_IO', `writing auth file ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // a directory that cannot be fsynced (some network file systems): the rename is done
  }
}

/** Stores credentials for `registry` (`host[:port]` or `host/repo`) in the primary auth file. */
export function saveAuth(registry: string, creds: Credentials, opts: { authfile?: string } = {}): void {
  const key = normalizeKey(registry);
  const file = authFilePath(opts);
  const data = readAuthFile(file) ?? {};
  const auths = { ...(data.auths ?? {}) };
  auths[key] = 'identitytoken' in creds
    ? { auth: '', identitytoken: creds.identitytoken }
    : { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  writeAuthFile(file, { ...data, auths });
}

/** Removes the entry for `registry` from the primary auth file; false when there was none. */
export function removeAuth(registry: string, opts: { authfile?: string } = {}): boolean {
  const key = normalizeKey(registry);
  const file = authFilePath(opts);
  const data = readAuthFile(file);
  if (!data?.auths) return false;
  const auths = { ...data.auths };
  const before = Object.keys(auths).length;
  for (const k of Object.keys(auths)) if (normalizeFileKey(k) === key) delete auths[k];
  if (Object.keys(auths).length === before) return false;
  writeAuthFile(file, { ...data, auths });
  return true;
}

/** Removes every entry of `auths` in the primary auth file (other keys are kept). */
export function removeAllAuth(opts: { authfile?: string } = {}): void {
  const file = authFilePath(opts);
  const data = readAuthFile(file);
  if (!data) return;
  writeAuthFile(file, { ...data, auths: {} });
}

/** The fallback file (e.g. ~/.docker/config.json) holding an entry for `registry`, if any: for logout's hint. */
export function loggedInElsewhere(registry: string, opts: { authfile?: string } = {}): string | undefined {
  const key = normalizeKey(registry);
  for (const file of authFileReadPaths(opts).slice(1)) {
    const f = readAuthFile(file);
    if (f?.auths && Object.keys(f.auths).some((k) => normalizeFileKey(k) === key)) return file;
  }
  return undefined;
}
