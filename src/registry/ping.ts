/**
 * Checks credentials against a registry the way `podman login` does: GET /v2/, and on a 401
 * answer the WWW-Authenticate challenge — Basic (retry with basic auth) or Bearer (fetch a token
 * from the realm with basic auth, or with the identity token as an OAuth2 refresh token, then
 * retry with it). Independent of RegistryClient on purpose (a bare undici Agent); it shares
 * client.ts's challenge parsing.
 *
 * TLS: https first, verifying against the system CAs plus the `*.crt` files of the cert dir
 * (--cert-dir, else /etc/containers/certs.d/HOST, else /etc/docker/certs.d/HOST), and the
 * client certificate `*.cert` + `*.key` found there. Plain http is tried after an https
 * connection failure only when allowed: an insecure registry, --tls-verify=false, or a
 * loopback host (localhost, 127.0.0.1, ::1).
 */
import type { Dispatcher } from 'undici';
import { Agent } from './undici';
import { registryTls } from './tls';
import { headerValues, isLocalHost, parseChallenges, type Challenge } from './client';
import { KilnError } from '../errors';
import type { Credentials } from './auth';

export interface PingOptions {
  /** false: do not verify TLS certificates, and allow http */
  tlsVerify?: boolean;
  certDir?: string;
  /** the registry is insecure in registries.conf */
  insecure?: boolean;
  /** request timeout in ms (default 30 s) */
  timeoutMs?: number;
}

export type PingResult = 'ok' | 'unauthorized';

function basic(c: { username: string; password: string }): string {
  return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
}

async function get(d: Dispatcher, url: string, timeoutMs: number, headers: Record<string, string> = {}) {
  const u = new URL(url);
  const r = await d.request({ origin: u.origin, path: `${u.pathname}${u.search}`, method: 'GET', headers: { 'user-agent': 'kiln', ...headers }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const body = await r.body.text();
  return { status: r.statusCode, headers: r.headers, body };
}

async function fetchToken(d: Dispatcher, ch: Challenge, creds: Credentials | undefined, timeoutMs: number): Promise<string | 'unauthorized'> {
  const realm = ch.params.realm;
  if (!realm) throw new KilnError('E_TRANSPORT', 'the registry asked for a Bearer token without naming a realm');
  const u = new URL(realm);
  if (ch.params.service) u.searchParams.set('service', ch.params.service);
  if (ch.params.scope) u.searchParams.set('scope', ch.params.scope);
  let r: { status: number; body: string };
  if (creds && 'identitytoken' in creds) {
    const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: creds.identitytoken, client_id: 'kiln', service: ch.params.service ?? '' });
    if (ch.params.scope) form.set('scope', ch.params.scope);
    const res = await d.request({ origin: u.origin, path: u.pathname, method: 'POST', body: form.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }, headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
    r = { status: res.statusCode, body: await res.body.text() };
  } else {
    if (creds) u.searchParams.set('account', creds.username);
    r = await get(d, u.toString(), timeoutMs, creds ? { authorization: basic(creds) } : {});
  }
  if (r.status === 401 || r.status === 403) return 'unauthorized';
  if (r.status !== 200) throw new KilnError('E_TRANSPORT', `token server ${u.origin}${u.pathname} answered ${r.status}`);
  let tok: unknown;
  try {
    const j = JSON.parse(r.body) as { token?: unknown; access_token?: unknown };
    tok = j.token ?? j.access_token;
  } catch {
    tok = undefined;
  }
  if (typeof tok !== 'string' || tok === '') throw new KilnError('E_TRANSPORT', `token server ${u.origin}${u.pathname} returned no token`);
  return tok;
}

async function pingAt(d: Dispatcher, base: string, creds: Credentials | undefined, timeoutMs: number): Promise<PingResult> {
  const first = await get(d, `${base}/v2/`, timeoutMs);
  if (first.status === 200) return 'ok';
  if (first.status !== 401) throw new KilnError('E_TRANSPORT', `${base}/v2/ answered ${first.status}, not a registry API v2 response`);
  const challenges = parseChallenges(headerValues(first.headers, 'www-authenticate'));
  const bearer = challenges.find((c) => c.scheme === 'bearer');
  let auth: string;
  if (bearer) {
    const tok = await fetchToken(d, bearer, creds, timeoutMs);
    if (tok === 'unauthorized') return 'unauthorized';
    auth = `Bearer ${tok}`;
  } else if (challenges.some((c) => c.scheme === 'basic')) {
    if (!creds || 'identitytoken' in creds) return 'unauthorized';
    auth = basic(creds);
  } else {
    throw new KilnError('E_TRANSPORT', `${base}/v2/ asked for authentication without a Basic or Bearer challenge`);
  }
  const second = await get(d, `${base}/v2/`, timeoutMs, { authorization: auth });
  if (second.status === 200) return 'ok';
  if (second.status === 401 || second.status === 403) return 'unauthorized';
  throw new KilnError('E_TRANSPORT', `${base}/v2/ answered ${second.status}`);
}

/**
 * Whether `creds` (undefined = anonymous) are accepted by `registry` (`host[:port]`).
 * Connection and protocol failures are KilnErrors (E_TRANSPORT) naming the URL.
 */
export async function pingRegistry(registry: string, creds: Credentials | undefined, opts: PingOptions = {}): Promise<PingResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const t = registryTls(registry, opts.certDir, opts.tlsVerify !== false && !opts.insecure);
  const agent = new Agent({ connect: { ...t, timeout: timeoutMs } });
  try {
    try {
      return await pingAt(agent, `https://${registry}`, creds, timeoutMs);
    } catch (e) {
      if (e instanceof KilnError) throw e;
      const httpAllowed = opts.insecure || opts.tlsVerify === false || isLocalHost(registry);
      if (!httpAllowed) throw connectionError(`https://${registry}/v2/`, e);
      try {
        return await pingAt(agent, `http://${registry}`, creds, timeoutMs);
      } catch (e2) {
        // the https failure is the one that matters (a TLS port answers http with 400)
        throw connectionError(`https://${registry}/v2/`, e, `http://${registry}/v2/`, e2);
      }
    }
  } finally {
    await agent.close();
  }
}

function describe(e: unknown): string {
  const err = e as { message?: string; code?: string; cause?: { message?: string; code?: string } };
  const c = err.cause?.message ?? '';
  return [err.message, c && c !== err.message ? c : ''].filter(Boolean).join(': ');
}

function connectionError(url: string, e: unknown, url2?: string, e2?: unknown): KilnError {
  const msg = url2 ? `pinging ${url}: ${describe(e)}; ${url2}: ${describe(e2)}` : `pinging ${url}: ${describe(e)}`;
  return new KilnError('E_TRANSPORT', msg, { hint: 'for a registry with a private CA use --cert-dir DIR (with ca.crt); for a plain-http registry use --tls-verify=false', cause: e });
}
