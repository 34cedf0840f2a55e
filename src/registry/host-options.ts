/**
 * The per-host connection settings of a registry command from its flags (--tls-verify,
 * --cert-dir, --authfile, --creds) and containers-registries.conf(5): a registry marked
 * `insecure = true` there is reached without TLS verification and may fall back to http, as
 * with --tls-verify=false. Credentials come from --creds, else the auth file (registry/auth.ts).
 * A pull source (a [[registry.mirror]] or the primary location, engine/pull.ts) brings its own
 * `insecure` and keeps --creds off other registries than the one asked for, as podman does.
 */
import { KilnError } from '../errors';
import { parseGoBool } from '../build/frontend/flags';
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

/** How a pull reaches one of its sources (registries-conf.ts pullSources). */
export interface PullEndpoint {
  /** the source's own `insecure` in registries.conf; it replaces the lookup by repository */
  insecure: boolean;
  /** the registry of the name asked for: --creds are sent only to a source on it */
  primaryDomain: string;
}

/** Connection settings for `host`; `ref` is the repository, `endpoint` set for a pull source. */
export type HostOptionsFn = (host: string, ref?: string, endpoint?: PullEndpoint) => RegistryHostOptions;

/** Parses --tls-verify's value (true, false, or commander's boolean). */
export function tlsVerifyFlag(v: boolean | string | undefined): boolean {
  if (v === undefined || v === true) return true;
  if (v === false) return false;
  const b = parseGoBool(v) ?? (/^no$/i.test(v) ? false : /^yes$/i.test(v) ? true : undefined);
  if (b === undefined) throw new KilnError('E_INVALID_ARGUMENT', `--tls-verify ${JSON.stringify(v)}: want true or false`, { hint: 'write --tls-verify=false' });
  return b;
}

/**
 * A hostOptions function (transports/docker.ts RegistryOptions) for these flags. `ref` is the
 * repository asked for (`docker.io/library/busybox`, `host:port/ns/repo`): credentials and
 * registries.conf settings are looked up for it, so per-repository auth.json keys match; the
 * Docker Hub API host registry-1.docker.io is looked up as docker.io. With `endpoint` (a pull
 * source), its `insecure` applies instead of registries.conf's entry for `ref`, and --creds only
 * when `ref` is on `endpoint.primaryDomain` (a mirror elsewhere gets the auth file's credentials).
 */
export function hostOptionsFor(flags: RegistryFlags): HostOptionsFn {
  const verify = tlsVerifyFlag(flags.tlsVerify);
  return (host, ref, endpoint) => {
    const name = host === 'registry-1.docker.io' ? 'docker.io' : host;
    const repo = ref !== undefined ? ref.replace(/^registry-1\.docker\.io(?=\/|$)/, 'docker.io') : undefined;
    const insecure = !verify || (endpoint?.insecure ?? registryFor(repo !== undefined && repo.includes('/') ? repo : `${name}/x`).insecure);
    const domain = (repo ?? name).split('/')[0];
    const creds = flags.creds !== undefined && (endpoint === undefined || domain === endpoint.primaryDomain) ? flags.creds : undefined;
    const credentials = resolveAuth(repo ?? name, { ...(flags.authfile !== undefined ? { authfile: flags.authfile } : {}), ...(creds !== undefined ? { creds } : {}) });
    return {
      tlsVerify: !insecure,
      insecureHttp: insecure,
      ...(flags.certDir !== undefined ? { certDir: flags.certDir } : {}),
      ...(credentials ? { credentials } : {}),
    };
  };
}
