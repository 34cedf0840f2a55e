/**
 * A throwaway OCI registry for tests: Debian's `docker-registry` (distribution) serving plain
 * http on 127.0.0.1:<free port>, storing under a temp dir. `stop()` kills it and waits for it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { requireTool } from './env';

export interface TestRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  /** distribution's storage root (…/docker/registry/v2/blobs/sha256/xx/<hex>/data holds blobs) */
  storage: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

async function waitReady(host: string, child: ChildProcess, log: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${fs.readFileSync(log, 'utf8')}`);
    const ok = await fetch(`http://${host}/v2/`).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`docker-registry did not answer on ${host}: ${fs.readFileSync(log, 'utf8')}`);
}

/** Starts a registry; the caller must `stop()` it (in after()). */
export async function startRegistry(): Promise<TestRegistry> {
  requireTool('docker-registry');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-registry-'));
  const storage = path.join(dir, 'data');
  const host = `127.0.0.1:${await freePort()}`;
  const config = path.join(dir, 'config.yml');
  fs.writeFileSync(
    config,
    ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${storage}`, '  delete:', '    enabled: true', 'http:', `  addr: ${host}`, ''].join('\n'),
  );
  const log = path.join(dir, 'registry.log');
  const out = fs.openSync(log, 'w');
  const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  try {
    await waitReady(host, child, log);
  } catch (e) {
    child.kill('SIGKILL');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    host,
    storage,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The on-disk file the registry serves for a blob. */
export function registryBlobPath(reg: TestRegistry, digest: string): string {
  const hex = digest.replace(/^sha256:/, '');
  return path.join(reg.storage, 'docker', 'registry', 'v2', 'blobs', 'sha256', hex.slice(0, 2), hex, 'data');
}
