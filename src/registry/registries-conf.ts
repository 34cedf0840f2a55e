/**
 * containers-registries.conf(5), version 2: which registry (and mirrors) serves an image name,
 * whether it is insecure or blocked, the unqualified-search registries, short-name aliases and
 * short-name-mode.
 *
 * Files: `opts.confPath`, else $CONTAINERS_REGISTRIES_CONF, else /etc/containers/registries.conf,
 * then the drop-ins `<that path>.d/*.conf` in lexical order (for the default path this is
 * /etc/containers/registries.conf.d as in podman; for a custom path kiln reads the drop-ins next
 * to it rather than /etc's, so a test or user config is self-contained). A drop-in replaces
 * `[[registry]]` entries with the same prefix, `unqualified-search-registries` and
 * `short-name-mode` when it sets them, and adds/overrides `[aliases]`. Files are re-read on
 * every call (they are small; tests change the environment between calls).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import { hasExplicitDomain } from '../image/reference';
import { parseToml, type TomlTable, type TomlValue } from './toml';

export type ShortNameMode = 'enforcing' | 'permissive' | 'disabled';
type PullFromMirror = 'all' | 'digest-only' | 'tag-only';

interface MirrorEntry { location: string; insecure: boolean; pullFromMirror: PullFromMirror }
interface RegistryEntry {
  prefix: string;
  location: string;
  insecure: boolean;
  blocked: boolean;
  mirrorByDigestOnly: boolean;
  mirrors: MirrorEntry[];
  file: string;
}

export interface RegistriesConf {
  /** files read, in order (empty when none exists) */
  files: string[];
  registries: RegistryEntry[];
  search: string[];
  aliases: Map<string, string>;
  shortNameMode: ShortNameMode;
}

export interface ConfOptions { confPath?: string }

export interface RegistryConfig {
  /** the reference with the matched prefix rewritten to the registry's `location` */
  location: string;
  insecure: boolean;
  blocked: boolean;
  /** the reference as rewritten for each mirror that applies to it, in order */
  mirrors: { location: string; insecure: boolean }[];
}

const DEFAULT_CONF = '/etc/containers/registries.conf';

function fail(file: string, msg: string): never {
  throw new KilnError('E_INVALID_ARGUMENT', `${file}: ${msg}`, { hint: 'see containers-registries.conf(5)' });
}

function str(file: string, where: string, v: TomlValue | undefined): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'string') fail(file, `${where} must be a string`);
  return v;
}
function bool(file: string, where: string, v: TomlValue | undefined): boolean {
  if (v === undefined) return false;
  if (typeof v !== 'boolean') fail(file, `${where} must be true or false`);
  return v;
}
function strings(file: string, where: string, v: TomlValue | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) fail(file, `${where} must be an array of strings`);
  return v as string[];
}

/** A registry location or prefix: no scheme, no trailing slash. */
function checkLocation(file: string, where: string, v: string): string {
  if (/^[a-z]+:\/\//i.test(v)) fail(file, `${where} ${JSON.stringify(v)} must not contain a scheme`);
  return v.replace(/\/+$/, '');
}

interface Parsed {
  registries: RegistryEntry[];
  search?: string[];
  aliases: Map<string, string>;
  shortNameMode?: ShortNameMode;
}

function parseFile(file: string): Parsed {
  const t = parseToml(fs.readFileSync(file, 'utf8'), file);
  if (typeof t.registries === 'object' && !Array.isArray(t.registries)) {
    fail(file, 'the version 1 format ([registries.search] …) is not supported; use [[registry]] tables and unqualified-search-registries');
  }
  const out: Parsed = { registries: [], aliases: new Map() };
  out.search = strings(file, 'unqualified-search-registries', t['unqualified-search-registries'])?.map((s, i) => checkLocation(file, `unqualified-search-registries[${i}]`, s));
  const mode = str(file, 'short-name-mode', t['short-name-mode']);
  if (mode !== undefined && mode !== '') {
    if (mode !== 'enforcing' && mode !== 'permissive' && mode !== 'disabled') fail(file, `short-name-mode ${JSON.stringify(mode)} is not one of enforcing, permissive, disabled`);
    out.shortNameMode = mode;
  }
  const regs = t.registry ?? [];
  if (!Array.isArray(regs)) fail(file, 'registry must be an array of tables: write [[registry]]');
  regs.forEach((r, i) => out.registries.push(parseRegistry(file, `[[registry]] #${i + 1}`, r)));
  const aliases = t.aliases ?? {};
  if (typeof aliases !== 'object' || Array.isArray(aliases)) fail(file, '[aliases] must be a table');
  for (const [name, value] of Object.entries(aliases)) {
    const v = str(file, `aliases."${name}"`, value)!;
    if (hasExplicitDomain(name)) fail(file, `alias ${JSON.stringify(name)} must be a short name`);
    if (!hasExplicitDomain(v)) fail(file, `alias ${JSON.stringify(name)} = ${JSON.stringify(v)} must be a fully qualified name`);
    out.aliases.set(name, v);
  }
  return out;
}

function parseRegistry(file: string, where: string, r: TomlValue): RegistryEntry {
  if (typeof r !== 'object' || Array.isArray(r)) fail(file, `${where} must be a table`);
  const t = r as TomlTable;
  const location = checkLocation(file, `${where} location`, str(file, `${where} location`, t.location) ?? '');
  const prefix = checkLocation(file, `${where} prefix`, str(file, `${where} prefix`, t.prefix) || location);
  if (prefix === '') fail(file, `${where} has neither location nor prefix`);
  if (prefix.startsWith('*.')) {
    if (location !== '') fail(file, `${where}: a wildcard prefix ${JSON.stringify(prefix)} cannot have a location`);
    if (prefix.includes('/')) fail(file, `${where}: a wildcard prefix ${JSON.stringify(prefix)} must be a host name only`);
  } else if (prefix.includes('*')) fail(file, `${where}: "*" is only allowed at the start of a prefix, as "*.host"`);
  const rawMirrors = t.mirror ?? [];
  if (!Array.isArray(rawMirrors)) fail(file, `${where} mirror must be an array of tables: write [[registry.mirror]]`);
  const mirrors = rawMirrors.map((m, j): MirrorEntry => {
    const mw = `${where} mirror #${j + 1}`;
    if (typeof m !== 'object' || Array.isArray(m)) fail(file, `${mw} must be a table`);
    const loc = str(file, `${mw} location`, m.location);
    if (!loc) fail(file, `${mw} needs a location`);
    const pfm = str(file, `${mw} pull-from-mirror`, m['pull-from-mirror']) || 'all';
    if (pfm !== 'all' && pfm !== 'digest-only' && pfm !== 'tag-only') fail(file, `${mw} pull-from-mirror ${JSON.stringify(pfm)} is not one of all, digest-only, tag-only`);
    return { location: checkLocation(file, `${mw} location`, loc), insecure: bool(file, `${mw} insecure`, m.insecure), pullFromMirror: pfm };
  });
  return {
    prefix,
    location,
    insecure: bool(file, `${where} insecure`, t.insecure),
    blocked: bool(file, `${where} blocked`, t.blocked),
    mirrorByDigestOnly: bool(file, `${where} mirror-by-digest-only`, t['mirror-by-digest-only']),
    mirrors,
    file,
  };
}

/** Reads and merges registries.conf and its drop-ins. */
export function loadRegistriesConf(opts: ConfOptions = {}): RegistriesConf {
  const main = opts.confPath ?? (process.env.CONTAINERS_REGISTRIES_CONF || DEFAULT_CONF);
  const files: string[] = [];
  if (fs.existsSync(main)) files.push(main);
  else if (opts.confPath !== undefined || process.env.CONTAINERS_REGISTRIES_CONF) {
    throw new KilnError('E_INVALID_ARGUMENT', `registries configuration ${main} does not exist`, { hint: 'check $CONTAINERS_REGISTRIES_CONF' });
  }
  const dropDir = `${main}.d`;
  try {
    for (const n of fs.readdirSync(dropDir).filter((n) => n.endsWith('.conf')).sort()) files.push(path.join(dropDir, n));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') throw e;
  }
  const conf: RegistriesConf = { files, registries: [], search: [], aliases: new Map(), shortNameMode: 'enforcing' };
  for (const f of files) {
    const p = parseFile(f);
    for (const r of p.registries) {
      const i = conf.registries.findIndex((x) => x.prefix === r.prefix);
      if (i >= 0) conf.registries[i] = r;
      else conf.registries.push(r);
    }
    if (p.search !== undefined) conf.search = p.search;
    if (p.shortNameMode !== undefined) conf.shortNameMode = p.shortNameMode;
    for (const [k, v] of p.aliases) conf.aliases.set(k, v);
  }
  return conf;
}

/** Length of the part of `ref` matched by `prefix`, or -1. */
function matchLength(ref: string, prefix: string): number {
  if (prefix.startsWith('*.')) {
    const hostEnd = ref.search(/[/@]/);
    const hostPort = hostEnd < 0 ? ref : ref.slice(0, hostEnd);
    const host = hostPort.replace(/:\d*$/, '');
    return host.endsWith(prefix.slice(1)) ? host.length : -1;
  }
  if (ref === prefix) return prefix.length;
  if (!ref.startsWith(prefix)) return -1;
  const c = ref[prefix.length];
  // ":" after a bare host would be a port of another host: "example.com" ≠ "example.com:5000"
  if (c === '/' || c === '@' || (c === ':' && prefix.includes('/'))) return prefix.length;
  return -1;
}

/** The [[registry]] with the longest prefix matching `ref`, and the length it matched. */
function findEntry(conf: RegistriesConf, ref: string): { entry: RegistryEntry; len: number } | undefined {
  let best: { entry: RegistryEntry; len: number } | undefined;
  for (const r of conf.registries) {
    const n = matchLength(ref, r.prefix);
    if (n > (best?.len ?? -1)) best = { entry: r, len: n };
  }
  return best;
}

function configFor(conf: RegistriesConf, ref: string): RegistryConfig {
  const hit = findEntry(conf, ref);
  if (!hit) return { location: ref, insecure: false, blocked: false, mirrors: [] };
  const { entry, len } = hit;
  const rest = ref.slice(len);
  const byDigest = ref.includes('@');
  const mirrors = entry.mirrors
    .filter((m) => (byDigest ? m.pullFromMirror !== 'tag-only' : !entry.mirrorByDigestOnly && m.pullFromMirror !== 'digest-only'))
    .map((m) => ({ location: m.location + rest, insecure: m.insecure }));
  return { location: entry.location === '' ? ref : entry.location + rest, insecure: entry.insecure, blocked: entry.blocked, mirrors };
}

/** The message for a blocked reference: names its registry and the files that could block it. */
function blockedMessage(conf: RegistriesConf, ref: string): string {
  return `registry ${ref.split('/')[0]} is blocked in ${conf.files.join(' or ')}`;
}

/**
 * The registry configuration for a fully qualified reference `host[:port]/repo[:tag|@digest]`:
 * the [[registry]] with the longest matching prefix (`*.host` wildcards match sub-domains),
 * the reference rewritten to its `location`, and the mirrors that apply (mirror-by-digest-only,
 * pull-from-mirror). No match: the reference itself, secure, not blocked, no mirrors.
 * A blocked registry is returned with `blocked: true`; use registryForPull to refuse it.
 */
export function registryFor(ref: string, opts: ConfOptions = {}): RegistryConfig {
  return configFor(loadRegistriesConf(opts), ref);
}

/** registryFor, but a blocked registry is an error (`kiln login` uses this; pull uses pullSources). */
export function registryForPull(ref: string, opts: ConfOptions = {}): RegistryConfig {
  const conf = loadRegistriesConf(opts);
  const r = configFor(conf, ref);
  if (r.blocked) throw new KilnError('E_INVALID_ARGUMENT', blockedMessage(conf, ref));
  return r;
}

/** One place a pull may fetch an image from (pullSources). */
export interface PullSource {
  /** the reference to fetch: the name as rewritten for a [[registry.mirror]] or the [[registry]] location */
  location: string;
  /** this source's own `insecure`: the mirror's, or the registry's for the primary location */
  insecure: boolean;
  /** a [[registry.mirror]]; false for the primary location */
  mirror: boolean;
  /** set when registries.conf forbids this source: the error message, naming the registry and the files */
  blocked?: string;
}

/**
 * Where a pull of the fully qualified `ref` looks, in order, as containers/image does: the
 * mirrors that apply to it (see registryFor), then the primary location, last, so that its
 * error is the one reported when every source fails. A source is `blocked` when the registry it
 * is on is blocked; the primary location also when the registry of `ref` itself is, so a
 * blocked registry can still be pulled from through its mirrors.
 */
export function pullSources(ref: string, opts: ConfOptions = {}): PullSource[] {
  const conf = loadRegistriesConf(opts);
  const r = configFor(conf, ref);
  const source = (location: string, insecure: boolean, mirror: boolean, blockedName?: string): PullSource => {
    const blocked = blockedName ?? (configFor(conf, location).blocked ? location : undefined);
    return { location, insecure, mirror, ...(blocked !== undefined ? { blocked: blockedMessage(conf, blocked) } : {}) };
  };
  return [...r.mirrors.map((m) => source(m.location, m.insecure, true)), source(r.location, r.insecure, false, r.blocked ? ref : undefined)];
}

/** The unqualified-search registries, in order. */
export function unqualifiedSearchRegistries(opts: ConfOptions = {}): string[] {
  return loadRegistriesConf(opts).search;
}

/**
 * The fully qualified candidates for an image name, in the order to try them. Qualified names
 * (including localhost/…) are returned as they are, never searched. A short name resolves
 * through `[aliases]` first; otherwise each unqualified-search registry gives a candidate
 * (docker.io adds library/ to one-component names). With more than one search registry,
 * short-name-mode "enforcing" (the default) is an error — podman would prompt, and kiln never
 * prompts — while "permissive" and "disabled" return all candidates. The tag or digest of
 * `name` is kept; none is added.
 */
export function resolveShortName(name: string, opts: ConfOptions = {}): string[] {
  if (name === '' || /\s/.test(name)) throw new KilnError('E_INVALID_REFERENCE', `invalid image name ${JSON.stringify(name)}`);
  if (hasExplicitDomain(name)) return [name];
  const m = /^([^@]*?)((?::[^:/@]+)?(?:@.+)?)$/.exec(name)!;
  const repo = m[1]!;
  const suffix = m[2]!;
  const conf = loadRegistriesConf(opts);
  const alias = conf.aliases.get(repo);
  if (alias !== undefined) return [alias + suffix];
  const where = conf.files.length ? conf.files.map((f) => `"${f}"`).join(', ') : '';
  if (conf.search.length === 0) {
    const why = where ? `no unqualified-search registries are defined in ${where}` : 'no containers-registries.conf(5) was found';
    throw new KilnError('E_INVALID_REFERENCE', `short-name "${name}" did not resolve to an alias and ${why}`, { hint: 'use a fully qualified name (host/repository), or set unqualified-search-registries or an alias' });
  }
  const candidates = conf.search.map((reg) => `${reg}/${reg === 'docker.io' && !repo.includes('/') ? 'library/' : ''}${repo}${suffix}`);
  if (candidates.length > 1 && conf.shortNameMode === 'enforcing') {
    throw new KilnError('E_INVALID_REFERENCE', `short-name "${name}" is ambiguous: it could be ${candidates.join(', ')}; short-name resolution is enforced but cannot prompt without a TTY`, {
      hint: `use a fully qualified name, or add an alias for "${repo}" in [aliases] of ${where}`,
    });
  }
  return candidates;
}
