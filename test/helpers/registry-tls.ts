/**
 * A real registry (Debian's docker-registry) on 127.0.0.1 with TLS from a test CA made with
 * openssl and htpasswd (bcrypt) basic auth, for login/pull tests. `certDir` holds the CA as
 * ca.crt, the layout `--cert-dir` expects. Call stop() in after().
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { requireTool, run } from './env';

export interface TlsRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  /** directory with ca.crt (for --cert-dir) */
  certDir: string;
  caPem: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Makes a CA and a server certificate for IP 127.0.0.1 in `dir`. */
export function makeTestCA(dir: string): { caCrt: string; serverCrt: string; serverKey: string } {
  requireTool('openssl');
  fs.mkdirSync(dir, { recursive: true });
  const p = (n: string) => path.join(dir, n);
  run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('ca.key'), '-out', p('ca.crt'), '-days', '2', '-subj', '/CN=kiln test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', p('server.key'), '-out', p('server.csr'), '-subj', '/CN=127.0.0.1']);
  fs.writeFileSync(p('server.ext'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  run('openssl', ['x509', '-req', '-in', p('server.csr'), '-CA', p('ca.crt'), '-CAkey', p('ca.key'), '-CAcreateserial', '-out', p('server.crt'), '-days', '2', '-extfile', p('server.ext')]);
  return { caCrt: p('ca.crt'), serverCrt: p('server.crt'), serverKey: p('server.key') };
}

async function waitReady(host: string, ca: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${log()}`);
    const status = await new Promise<number | undefined>((resolve) => {
      const req = https.get(`https://${host}/v2/`, { ca, timeout: 1000 }, (res) => {
        res.resume();
        resolve(res.statusCode);
      });
      req.on('error', () => resolve(undefined));
      req.on('timeout', () => req.destroy());
    });
    if (status !== undefined) return;
    if (Date.now() > deadline) throw new Error(`docker-registry on ${host} did not answer within 15 s: ${log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts docker-registry over TLS with the given users (htpasswd -B). */
export async function startTlsRegistry(dir: string, users: Record<string, string>): Promise<TlsRegistry> {
  const bin = requireTool('docker-registry');
  requireTool('htpasswd', 'apache2-utils');
  const tlsDir = path.join(dir, 'tls');
  const { caCrt, serverCrt, serverKey } = makeTestCA(tlsDir);
  const certDir = path.join(dir, 'certs.d');
  fs.mkdirSync(certDir, { recursive: true });
  fs.copyFileSync(caCrt, path.join(certDir, 'ca.crt'));
  const htpasswd = Object.entries(users).map(([u, p]) => run('htpasswd', ['-Bbn', u, p]).trim()).join('\n');
  fs.writeFileSync(path.join(dir, 'htpasswd'), `${htpasswd}\n`);
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const config = path.join(dir, 'registry.yml');
  fs.writeFileSync(config, [
    'version: 0.1',
    'log:',
    '  level: error',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${path.join(dir, 'storage')}`,
    'http:',
    `  addr: ${host}`,
    '  tls:',
    `    certificate: ${serverCrt}`,
    `    key: ${serverKey}`,
    'auth:',
    '  htpasswd:',
    '    realm: kiln-test',
    `    path: ${path.join(dir, 'htpasswd')}`,
    '',
  ].join('\n'));
  const child = spawn(bin, ['serve', config], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const caPem = fs.readFileSync(caCrt, 'utf8');
  try {
    await waitReady(host, caPem, child, () => stderr);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return {
    host,
    certDir,
    caPem,
    stop: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }),
  };
}
