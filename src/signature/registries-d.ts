/**
 * containers-registries.d(5), the part kiln uses: whether sigstore signatures are read from and
 * written to a registry as attachments (`use-sigstore-attachments`). Every *.yaml file of the
 * directory is read; `docker:` maps scopes (host, host/namespace, host/repo) to settings, the
 * most specific scope that sets a field wins, then `default-docker:`. A scope defined
 * in two files is an error, as in containers/image.
 *
 * Directory: --registries.d, else ~/.config/containers/registries.d if it exists, else
 * /etc/containers/registries.d (a missing directory means no settings).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KilnError } from '../errors';
import type { NamedRef } from '../image/reference';
import { dockerScopes } from './policy';

interface Settings {
  'use-sigstore-attachments'?: boolean;
}

export interface RegistriesD {
  dir: string;
  defaultDocker?: Settings;
  docker: Map<string, Settings>;
}

export function registriesDir(explicit?: string): string {
  if (explicit !== undefined) return explicit;
  const user = path.join(process.env['XDG_CONFIG_HOME'] || path.join(os.homedir(), '.config'), 'containers', 'registries.d');
  return fs.existsSync(user) ? user : '/etc/containers/registries.d';
}

function settings(v: unknown, where: string): Settings {
  if (v === null || v === undefined) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw new KilnError('E_INVALID_ARGUMENT', `${where}: must be a mapping`);
  const u = (v as Record<string, unknown>)['use-sigstore-attachments'];
  if (u !== undefined && typeof u !== 'boolean') throw new KilnError('E_INVALID_ARGUMENT', `${where}: use-sigstore-attachments must be true or false`);
  return u === undefined ? {} : { 'use-sigstore-attachments': u };
}

/** Reads every *.yaml file of `dir` (E_INVALID_ARGUMENT naming the file on a bad one). */
export function loadRegistriesD(dir: string): RegistriesD {
  const out: RegistriesD = { dir, docker: new Map() };
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.yaml')).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw new KilnError('E_INVALID_ARGUMENT', `registries.d ${dir}: ${(e as Error).message}`);
  }
  // loaded on first use: a pull reads registries.d only under a sigstoreSigned requirement
  const { parse: parseYaml } = require('yaml') as typeof import('yaml');
  let defaultFrom: string | undefined;
  const from = new Map<string, string>();
  for (const n of names) {
    const file = path.join(dir, n);
    let doc: unknown;
    try {
      doc = parseYaml(fs.readFileSync(file, 'utf8'));
    } catch (e) {
      throw new KilnError('E_INVALID_ARGUMENT', `${file}: invalid YAML: ${(e as Error).message}`);
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new KilnError('E_INVALID_ARGUMENT', `${file}: the top level must be a mapping`);
    const d = doc as Record<string, unknown>;
    if (d['default-docker'] !== undefined) {
      if (defaultFrom !== undefined) throw new KilnError('E_INVALID_ARGUMENT', `${file}: default-docker is already defined in ${defaultFrom}`);
      defaultFrom = file;
      out.defaultDocker = settings(d['default-docker'], `${file}: default-docker`);
    }
    const docker = d['docker'];
    if (docker === undefined || docker === null) continue;
    if (typeof docker !== 'object' || Array.isArray(docker)) throw new KilnError('E_INVALID_ARGUMENT', `${file}: docker must be a mapping of scopes`);
    for (const [scope, v] of Object.entries(docker as Record<string, unknown>)) {
      const prev = from.get(scope);
      if (prev !== undefined) throw new KilnError('E_INVALID_ARGUMENT', `${file}: docker scope ${JSON.stringify(scope)} is already defined in ${prev}`);
      from.set(scope, file);
      out.docker.set(scope, settings(v, `${file}: docker[${JSON.stringify(scope)}]`));
    }
  }
  return out;
}

/**
 * Whether sigstore attachments are used for this reference: the first scope (policy.ts
 * dockerScopes order: reference, repository, namespaces, host, wildcards) that sets it, else
 * default-docker, else false.
 */
export function useSigstoreAttachments(conf: RegistriesD, r: NamedRef): boolean {
  for (const scope of dockerScopes(r)) {
    const s = conf.docker.get(scope);
    if (s?.['use-sigstore-attachments'] !== undefined) return s['use-sigstore-attachments'];
  }
  return conf.defaultDocker?.['use-sigstore-attachments'] ?? false;
}
