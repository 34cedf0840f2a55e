/**
 * The per-host connection settings of a registry command from its flags (--tls-verify,
 * --cert-dir, --authfile, --creds) and containers-registries.conf(5): a registry marked
 * `insecure = true` there is reached without TLS verification and may fall back to http, as
 * with --tls-verify=false. Credentials come from --creds, else the auth file (registry/auth.ts).
 */
import { resolveAuth } from './auth';
import { registryFor } from './registries-conf';
import type { RegistryHostOptions } from './client';

export interface RegistryFlags {
  /** commander's value of --tls-verify[=BOOL]; undefined = true */
  tlsVerify?: boolean | string;
  certDir?: string;
  authfile?: string;
  creds?: string;
}

/** Parses --tls-verify's value (true, false, or commander's boolean). */
export function tlsVerifyFlag(v: boolean | string | undefined): boolean {
  if (v === undefined || v === true) return true;
  if (v === false) return false;
  return !/^(false|0|no)$/i.test(v);
}

/**
 * A hostOptions function (transports/docker.ts RegistryOptions) for these flags. `ref` is the
 * repository asked for (`docker.io/library/busybox`, `host:port/ns/repo`): credentials and
 * registries.conf settings are looked up for it, so per-repository auth.json keys match; the
 * Docker Hub API host registry-1.docker.io is looked up as docker.io.
 */
export function hostOptionsFor(flags: RegistryFlags): (host: string, ref?: string) => RegistryHostOptions {
  const verify = tlsVerifyFlag(flags.tlsVerify);
  return (host: string, ref?: string) => {
    const name = host === 'registry-1.docker.io' ? 'docker.io' : host;
    const repo = ref !== undefined ? ref.replace(/^registry-1\.docker\.io(?=\/|$)/, 'docker.io') : undefined;
    const conf = registryFor(repo !== undefined && repo.includes('/') ? repo : `${name}/x`);
    const insecure = !verify || conf.insecure;
    const credentials = resolveAuth(repo ?? name, { ...(flags.authfile !== undefined ? { authfile: flags.authfile } : {}), ...(flags.creds !== undefined ? { creds: flags.creds } : {}) });
    return {
      tlsVerify: !insecure,
      insecureHttp: insecure,
      ...(flags.certDir !== undefined ? { certDir: flags.certDir } : {}),
      ...(credentials ? { credentials } : {}),
    };
  };
}
