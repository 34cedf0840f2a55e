/**
 * TLS settings for talking to a registry, shared by the client (pull, push) and login's ping:
 * the CAs of --cert-dir (else /etc/containers/certs.d/HOST, /etc/docker/certs.d/HOST) are
 * added to the system roots, and a client certificate (NAME.cert with NAME.key) is sent
 * when the dir has one — the layout containers/image reads.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { KilnError } from '../errors';

export interface RegistryTls {
  ca?: string[];
  cert?: Buffer;
  key?: Buffer;
  rejectUnauthorized: boolean;
}

export function registryTls(host: string, certDir: string | undefined, verify: boolean): RegistryTls {
  const dirs = certDir !== undefined ? [certDir] : [path.join('/etc/containers/certs.d', host), path.join('/etc/docker/certs.d', host)];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir).sort();
    } catch (e) {
      if (certDir !== undefined) throw new KilnError('E_INVALID_ARGUMENT', `--cert-dir ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
      continue;
    }
    const cas = names.filter((n) => n.endsWith('.crt')).map((n) => fs.readFileSync(path.join(dir, n), 'utf8'));
    const certName = names.find((n) => n.endsWith('.cert'));
    const out: RegistryTls = { rejectUnauthorized: verify };
    if (cas.length) out.ca = [...tls.rootCertificates, ...cas];
    if (certName) {
      const keyName = `${certName.slice(0, -'.cert'.length)}.key`;
      if (!names.includes(keyName)) throw new KilnError('E_INVALID_ARGUMENT', `${path.join(dir, certName)} has no matching key ${keyName}`);
      out.cert = fs.readFileSync(path.join(dir, certName));
      out.key = fs.readFileSync(path.join(dir, keyName));
    }
    return out;
  }
  return { rejectUnauthorized: verify };
}
