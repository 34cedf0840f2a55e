/**
 * An HTTP client for one registry host (OCI distribution-spec), over an undici Agent.
 *
 * Contract:
 *  - Scheme: plain http for localhost, 127.0.0.1, [::1] (any port); https otherwise, falling
 *    back to http when `insecureHttp` and the https connection fails (as podman does with
 *    --tls-verify=false), with certificate verification unless `tlsVerify` is false. Extra CAs come
 *    from `certDir` (every *.crt file, ca.crt included), else from /etc/containers/certs.d/HOST
 *    or /etc/docker/certs.d/HOST when present.
 *  - Auth: a 401 with a WWW-Authenticate challenge is answered once per request, Bearer before
 *    Basic when both are offered: Bearer fetches a token from the realm (service, scope; Basic
 *    credentials when given), cached per scope; Basic sends the credentials. Error messages never contain credentials or tokens.
 *    Authorization is sent only to the registry's own origin (not to an upload Location on
 *    another host, nor to redirect targets); a plain-http token realm of an https registry is
 *    refused. A 401 to a request whose streamed body was already sent fetches a new token and
 *    throws AuthRetryError: the caller restarts with a fresh stream.
 *  - Retries: an idempotent request (GET, HEAD, or `idempotent`, e.g. manifest PUT) whose body
 *    can be replayed (none or a Buffer) is retried on 5xx and on connection errors (ECONNRESET,
 *    ECONNREFUSED, …): 3 attempts in all, backing off 200 ms, then 400 ms. The last failure is
 *    E_TRANSPORT naming method, URL and status. POST and PATCH are never retried.
 *  - Redirects: GET and HEAD follow up to 5 redirects (3xx with Location, resolved against the
 *    URL that answered). A target on another origin (blob storage) gets the request without
 *    Authorization and without the registry's token or retry handling.
 *  - Every response returned has an unconsumed body the caller must consume or destroy.
 */
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Agent } from './undici';
import { registryTls } from './tls';
import { KilnError } from '../errors';
import type { Credentials } from './auth';

export interface RegistryHostOptions {
  tlsVerify: boolean;
  certDir?: string;
  insecureHttp: boolean;
  credentials?: Credentials;
}

export interface RegistryResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** The URL that answered (for resolving relative Location headers). */
  url: URL;
}

export interface RequestOptions {
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  /** The token scope this request needs, e.g. "repository:library/busybox:pull". */
  scope?: string;
  /** Whether 5xx answers and connection errors may be retried; default: GET and HEAD only. */
  idempotent?: boolean;
}

/**
 * Thrown when a request with a streamed (non-replayable) body was answered 401 and a fresh token
 * has been fetched: the operation must be restarted with a new stream (blobs.ts uploadBlob).
 */
export class AuthRetryError extends KilnError {
  constructor(message: string) {
    super('E_TRANSPORT', message, { hint: 'the registry token expired during the upload; retry' });
  }
}

const ATTEMPTS = 3;
/** Redirect hops followed by GET and HEAD. */
const REDIRECTS = 5;
const REDIRECT_CODES = new Set([301, 302, 303, 307, 308]);
const RETRY_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED']);

/** Whether a host is reached over plain http regardless of flags. */
export function isLocalHost(host: string): boolean {
  // "[::1]:5000", "[::1]", "::1", "127.0.0.1:5000", "localhost"
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : (host.match(/:/g) ?? []).length > 1 ? host : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '127.0.0.1' || name === '::1';
}

export interface Challenge { scheme: string; params: Record<string, string> }

/**
 * Parses WWW-Authenticate values (`Bearer realm="…",service="…", Basic realm="…"`; several
 * challenges may share one header) into challenges, scheme and parameter names lowercased.
 */
export function parseChallenges(headers: readonly string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const h of headers) {
    let cur: Challenge | undefined;
    let i = 0;
    while (i < h.length) {
      while (i < h.length && /[\s,]/.test(h[i]!)) i++;
      const tok = /^[\w.~+/-]+/.exec(h.slice(i))?.[0];
      if (!tok) break;
      i += tok.length;
      while (i < h.length && h[i] === ' ') i++;
      if (h[i] !== '=') {
        cur = { scheme: tok.toLowerCase(), params: {} };
        out.push(cur);
        continue;
      }
      i++;
      while (i < h.length && h[i] === ' ') i++;
      let v = '';
      if (h[i] === '"') {
        for (i++; i < h.length && h[i] !== '"'; i++) v += h[i] === '\\' ? h[++i] ?? '' : h[i];
        i++;
      } else {
        const m = /^[^,\s]*/.exec(h.slice(i))![0];
        v = m;
        i += m.length;
      }
      if (cur) cur.params[tok.toLowerCase()] = v;
    }
  }
  return out;
}

/** A header's values as a list (undici gives a string, or an array for a repeated header). */
export function headerValues(h: RegistryResponse['headers'], name: string): string[] {
  const v = h[name.toLowerCase()];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function header(h: RegistryResponse['headers'], name: string): string | undefined {
  const v = h[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export { header as responseHeader };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class RegistryClient {
  base: URL;
  private fallback: boolean;
  private readonly agent: Agent;
  private readonly tokens = new Map<string, string>();
  private basic = false;

  constructor(readonly host: string, private readonly opts: RegistryHostOptions) {
    const scheme = isLocalHost(host) ? 'http' : 'https';
    this.base = new URL(`${scheme}://${host}`);
    this.fallback = scheme === 'https' && opts.insecureHttp;
    const connect = scheme === 'https' ? registryTls(host, opts.certDir, opts.tlsVerify) : { rejectUnauthorized: opts.tlsVerify };
    this.agent = new Agent({ connect, connections: 8 });
  }

  /** A URL for an API path ("/v2/…") or a Location header value (relative or absolute). */
  url(p: string): URL {
    return new URL(p, this.base);
  }

  /**
   * Sends one request, handling auth challenges, retries and redirects (module comment).
   * Non-2xx answers are returned, not thrown; `fail` turns them into errors.
   */
  async request(method: string, target: string | URL, o: RequestOptions = {}): Promise<RegistryResponse> {
    const url = typeof target === 'string' ? this.url(target) : target;
    let res = await this.requestRegistry(method, url, o);
    if (method !== 'GET' && method !== 'HEAD') return res;
    for (let hop = 0; REDIRECT_CODES.has(res.statusCode); hop++) {
      const loc = header(res.headers, 'location');
      if (loc === undefined) return res;
      await res.body.dump();
      const next = new URL(loc, res.url);
      if (hop >= REDIRECTS) throw new KilnError('E_TRANSPORT', `${method} ${this.show(url)}: more than ${REDIRECTS} redirects`);
      if (next.protocol !== 'http:' && next.protocol !== 'https:') {
        throw new KilnError('E_TRANSPORT', `${method} ${this.show(url)}: redirected to unsupported URL scheme ${next.protocol}`);
      }
      res = next.origin === this.base.origin ? await this.requestRegistry(method, next, o) : await this.sendElsewhere(method, next, o);
    }
    return res;
  }

  /** One request to another origin (a redirect target): no Authorization, no auth or retry handling. */
  private async sendElsewhere(method: string, url: URL, o: RequestOptions): Promise<RegistryResponse> {
    const headers: Record<string, string> = { 'user-agent': 'kiln' };
    for (const [k, v] of Object.entries(o.headers ?? {})) if (k.toLowerCase() !== 'authorization') headers[k] = v;
    try {
      const r = await this.agent.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method: method as 'GET', headers });
      return { statusCode: r.statusCode, headers: r.headers, body: r.body, url };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? '';
      throw new KilnError('E_TRANSPORT', `${method} ${this.show(url)} (redirected by ${this.host}): ${(e as Error).message}${code ? ` (${code})` : ''}`, { cause: e });
    }
  }

  /** One request to the registry (or an upload URL it named), with auth challenges and retries. */
  private async requestRegistry(method: string, target: URL, o: RequestOptions): Promise<RegistryResponse> {
    let url = target;
    let authed = false;
    const replayable = !(o.body && !Buffer.isBuffer(o.body));
    const retry = replayable && (o.idempotent ?? (method === 'GET' || method === 'HEAD'));
    for (let attempt = 1; ; attempt++) {
      let res: RegistryResponse;
      try {
        res = await this.send(method, url, o);
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (this.fallback && url.origin === this.base.origin && replayable) {
          // --tls-verify=false: this registry may speak plain http
          this.fallback = false;
          this.base = new URL(`http://${this.host}`);
          url = new URL(url.href.replace(/^https:/, 'http:'));
          attempt--;
          continue;
        }
        if (retry && RETRY_CODES.has(code) && attempt < ATTEMPTS) {
          await sleep(100 * 2 ** attempt);
          continue;
        }
        throw new KilnError('E_TRANSPORT', `${method} ${this.show(url)}: ${(e as Error).message}${code ? ` (${code})` : ''}`, {
          cause: e,
          ...(code === 'ECONNREFUSED' ? { hint: `is a registry listening on ${this.base.origin}?` } : {}),
          ...(/certificate|self.signed|SSL|EPROTO/i.test(`${code} ${(e as Error).message}`)
            ? { hint: 'use --tls-verify=false for a registry without a trusted TLS certificate, or --cert-dir with its CA' }
            : {}),
        });
      }
      this.fallback = false;
      if (res.statusCode === 401 && !authed && url.origin === this.base.origin) {
        const challenges = parseChallenges(headerValues(res.headers, 'www-authenticate'));
        await res.body.dump();
        if (await this.authenticate(challenges, o.scope)) {
          if (!replayable) {
            // the streamed body is gone: the caller must start over with a fresh stream
            throw new AuthRetryError(`${method} ${this.show(url)}: the registry asked for authentication again after the request body was sent`);
          }
          authed = true;
          attempt--;
          continue;
        }
        throw await this.fail(method, url, { ...res, statusCode: 401 }, 'authentication required');
      }
      if (res.statusCode >= 500 && attempt < ATTEMPTS && retry) {
        await res.body.dump();
        await sleep(100 * 2 ** attempt);
        continue;
      }
      return res;
    }
  }

  /** Sends once; Authorization goes only to the registry's own origin. */
  private async send(method: string, url: URL, o: RequestOptions): Promise<RegistryResponse> {
    const headers: Record<string, string> = { 'user-agent': 'kiln', ...o.headers };
    const auth = url.origin === this.base.origin ? this.authHeader(o.scope) : undefined;
    if (auth !== undefined) headers['authorization'] = auth;
    const r = await this.agent.request({ origin: url.origin, path: `${url.pathname}${url.search}`, method: method as 'GET', headers, body: o.body ?? null });
    return { statusCode: r.statusCode, headers: r.headers, body: r.body, url };
  }

  private authHeader(scope: string | undefined): string | undefined {
    const t = this.tokens.get(scope ?? '') ?? this.tokens.get('');
    if (t !== undefined) return `Bearer ${t}`;
    const c = this.opts.credentials;
    if (this.basic && c && 'username' in c) return `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
    return undefined;
  }

  /**
   * Answers a 401's challenges: Bearer (with a realm) first, else Basic; false when they cannot
   * be answered (none of these, no credentials for Basic, Basic already tried).
   */
  private async authenticate(challenges: Challenge[], scope: string | undefined): Promise<boolean> {
    const c = this.opts.credentials;
    const bearer = challenges.find((ch) => ch.scheme === 'bearer' && ch.params['realm'] !== undefined);
    if (bearer === undefined) {
      if (!challenges.some((ch) => ch.scheme === 'basic') || !c || !('username' in c) || this.basic) return false;
      this.basic = true;
      return true;
    }
    const params = bearer.params;
    let realm: URL;
    try {
      realm = new URL(params['realm']);
    } catch {
      throw new KilnError('E_TRANSPORT', `${this.host}: the registry sent an invalid token realm ${JSON.stringify(params['realm'])}`);
    }
    if (realm.protocol !== 'https:' && realm.protocol !== 'http:') {
      throw new KilnError('E_TRANSPORT', `${this.host}: unsupported token realm scheme ${realm.protocol}`);
    }
    if (realm.protocol === 'http:' && this.base.protocol === 'https:') {
      throw new KilnError('E_TRANSPORT', `${this.host}: refusing to get a token over plain http from ${realm.origin} for an https registry`, {
        hint: 'the registry\'s WWW-Authenticate realm must be an https URL',
      });
    }
    const q = new URLSearchParams();
    if (params['service'] !== undefined) q.set('service', params['service']);
    for (const s of (scope ?? params['scope'] ?? '').split(' ').filter(Boolean)) q.append('scope', s);
    const headers: Record<string, string> = { 'user-agent': 'kiln' };
    let res;
    if (c && 'identitytoken' in c) {
      q.set('grant_type', 'refresh_token');
      q.set('refresh_token', c.identitytoken);
      q.set('client_id', 'kiln');
      headers['content-type'] = 'application/x-www-form-urlencoded';
      res = await this.agent.request({ origin: realm.origin, path: realm.pathname, method: 'POST', headers, body: q.toString() });
    } else {
      if (c) headers['authorization'] = `Basic ${Buffer.from(`${c.username}:${c.password}`).toString('base64')}`;
      const sep = realm.search ? '&' : '?';
      res = await this.agent.request({ origin: realm.origin, path: `${realm.pathname}${realm.search}${q.size ? sep + q.toString() : ''}`, method: 'GET', headers });
    }
    const text = await res.body.text();
    if (res.statusCode !== 200) {
      throw new KilnError('E_TRANSPORT', `${this.host}: getting an auth token from ${realm.origin}${realm.pathname} failed: HTTP ${res.statusCode}`, {
        hint: c ? 'check the credentials (--creds or --authfile)' : 'log in or pass --creds USER:PASS',
      });
    }
    let tok: unknown;
    try {
      const j = JSON.parse(text) as Record<string, unknown>;
      tok = j['token'] ?? j['access_token'];
    } catch {
      tok = undefined;
    }
    if (typeof tok !== 'string' || tok === '') throw new KilnError('E_TRANSPORT', `${this.host}: the token server ${realm.origin} returned no token`);
    this.tokens.set(scope ?? '', tok);
    return true;
  }

  /** A URL for messages: without query (upload state, tokens) and without userinfo. */
  private show(url: URL): string {
    return `${url.origin}${url.pathname}`;
  }

  /**
   * Turns an unexpected answer into E_TRANSPORT (E_IMAGE_UNKNOWN for 404 when `notFound` says
   * what was missing), including the registry's error codes and messages. Consumes the body.
   */
  async fail(method: string, url: URL, res: RegistryResponse, what?: string, notFound?: string): Promise<KilnError> {
    let detail = '';
    try {
      const text = (await res.body.text()).slice(0, 4096);
      const j = JSON.parse(text) as { errors?: { code?: string; message?: string }[] };
      detail = (j.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
    } catch {
      detail = '';
    }
    if (res.statusCode === 404 && notFound !== undefined) {
      return new KilnError('E_IMAGE_UNKNOWN', `${notFound}${detail ? ` (${detail})` : ''}`);
    }
    const msg = `${method} ${this.show(url)}: HTTP ${res.statusCode}${what ? ` (${what})` : ''}${detail ? `: ${detail}` : ''}`;
    const retried = method === 'GET' || method === 'HEAD' || (method === 'PUT' && url.pathname.includes('/manifests/'));
    return new KilnError('E_TRANSPORT', res.statusCode >= 500 && retried ? `${msg} after ${ATTEMPTS} attempts` : msg, {
      ...(res.statusCode === 401 || res.statusCode === 403 ? { hint: 'check the credentials (--creds or --authfile) and that they grant access' } : {}),
    });
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
