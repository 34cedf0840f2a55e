/**
 * A real registry (Debian's docker-registry) on 127.0.0.1 with TLS from a test CA made with
 * openssl and htpasswd (bcrypt) basic auth, for login/pull tests. `certDir` holds the CA as
 * ca.crt, the layout `--cert-dir` expects. Call stop() in after().
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireTool, run } from './env';
import { startRegistry } from './registry';

export interface TlsRegistry {
  /** 127.0.0.1:PORT */
  host: string;
  /** directory with ca.crt (for --cert-dir) */
  certDir: string;
  caPem: string;
  stop(): Promise<void>;
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

/** Starts docker-registry over TLS with the given users (htpasswd -B). */
export async function startTlsRegistry(dir: string, users: Record<string, string>): Promise<TlsRegistry> {
  requireTool('htpasswd', 'apache2-utils');
  const tlsDir = path.join(dir, 'tls');
  const { caCrt, serverCrt, serverKey } = makeTestCA(tlsDir);
  const certDir = path.join(dir, 'certs.d');
  fs.mkdirSync(certDir, { recursive: true });
  fs.copyFileSync(caCrt, path.join(certDir, 'ca.crt'));
  const htpasswd = Object.entries(users).map(([u, p]) => run('htpasswd', ['-Bbn', u, p]).trim()).join('\n');
  fs.writeFileSync(path.join(dir, 'htpasswd'), `${htpasswd}\n`);
  const caPem = fs.readFileSync(caCrt, 'utf8');
  const reg = await startRegistry({ dir, tls: { cert: serverCrt, key: serverKey, ca: caPem }, htpasswd: path.join(dir, 'htpasswd') });
  return { host: reg.host, certDir, caPem, stop: () => reg.stop() };
}
