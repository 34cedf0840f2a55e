/**
 * A throwaway OCI registry for tests and benches: Debian's `docker-registry` (distribution) on
 * 127.0.0.1:<free port>, plain http or TLS with basic auth. `stop()` kills it and waits for it.
 * Also: `sandboxes`, the empty stores a suite pulls into.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireTool, sandbox, type Sandbox } from './env';
import { teardown } from './build-e2e';

export interface TestRegistry {
  /** "127.0.0.1:PORT" (or the `address` asked for) */
  host: string;
  /** the registry's output: its access log ("POST /v2/… HTTP/1.1" 201 …) and errors; read it before stop() */
  log: string;
  /** distribution's storage root (…/docker/registry/v2/blobs/sha256/xx/<hex>/data holds blobs) */
  storage: string;
  stop(): Promise<void>;
  /** SIGTERM without waiting (for signal handlers) */
  kill(): void;
}

export interface RegistryOptions {
  /** where config, log and storage go (kept by stop()); default a fresh temp dir that stop() removes */
  dir?: string;
  /** serve https with this certificate and key; readiness is checked against `ca` */
  tls?: { cert: string; key: string; ca: string };
  /** htpasswd (bcrypt) file: basic auth for every request */
  htpasswd?: string;
  /**
   * loopback address to listen on (default 127.0.0.1); another one, such as 127.0.0.2, is not
   * one that kiln reaches over plain http by default, so it needs `insecure` or --tls-verify=false
   */
  address?: string;
}

export function freePort(address = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, address, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Any HTTP answer on /v2/ (200, or 401 behind auth) means the registry is up. */
function answers(url: string, ca?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = (ca ? https : http).get(url, { ca, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode !== undefined);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
  });
}

async function waitReady(url: string, ca: string | undefined, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  let spawnError: Error | undefined;
  child.once('error', (e) => (spawnError = e));
  while (Date.now() < deadline) {
    if (spawnError) throw new Error(`docker-registry: ${spawnError.message} (apt-get install -y docker-registry)`);
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${fs.readFileSync(log, 'utf8')}`);
    if (await answers(url, ca)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer on ${url}: ${fs.readFileSync(log, 'utf8')}`);
}

/**
 * Starts Debian's docker-registry on 127.0.0.1:<free port> (plain http, or https with
 * `tls`, basic auth with `htpasswd`); the caller must `stop()` it (in after()).
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<TestRegistry> {
  requireTool('docker-registry');
  const dir = opts.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-registry-'));
  fs.mkdirSync(dir, { recursive: true });
  const storage = path.join(dir, 'data');
  const address = opts.address ?? '127.0.0.1';
  const host = `${address}:${await freePort(address)}`;
  const config = path.join(dir, 'config.yml');
  const lines = ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${storage}`, '  delete:', '    enabled: true', 'http:', `  addr: ${host}`];
  if (opts.tls) lines.push('  tls:', `    certificate: ${opts.tls.cert}`, `    key: ${opts.tls.key}`);
  if (opts.htpasswd) lines.push('auth:', '  htpasswd:', '    realm: kiln-test', `    path: ${opts.htpasswd}`);
  fs.writeFileSync(config, `${lines.join('\n')}\n`);
  const log = path.join(dir, 'registry.log');
  const out = fs.openSync(log, 'w');
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const removeDir = () => {
    if (opts.dir === undefined) fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(`${opts.tls ? 'https' : 'http'}://${host}/v2/`, opts.tls?.ca, child, log);
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    removeDir();
    throw e;
  }
  const kill = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  };
  return {
    host,
    log,
    storage,
    kill,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        kill();
        await exited;
      }
      removeDir();
    },
  };
}

/** The on-disk file the registry serves for a blob. */
export function registryBlobPath(reg: TestRegistry, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}

export interface SandboxPool {
  /** a new empty store (for a pull that must not find anything cached) */
  fresh(): Sandbox;
  /** tears down every store `fresh` made (call in after()) */
  teardownAll(): void;
}

/** Empty stores for one suite's pulls, named `PREFIX…`, torn down together (build-e2e.ts teardown). */
export function sandboxes(prefix: string): SandboxPool {
  const made: Sandbox[] = [];
  return {
    fresh() {
      const s = sandbox(prefix);
      made.push(s);
      return s;
    },
    teardownAll() {
      for (const s of made.splice(0)) teardown(s);
    },
  };
}
