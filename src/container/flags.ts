/**
 * Parsing of `kiln run/create` flag values into container config parts, with podman's syntax
 * and errors that name the flag: -v/--volume, --mount, --tmpfs, -e/--env-file, --memory,
 * --cpus, --security-opt, --network, --stop-signal, --entrypoint. Pure (reads only env files).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KilnError } from '../errors';
import type { MountRequest, NetworkMode } from '../runtime/spec';

const bad = (flag: string, value: string, why: string) => new KilnError('E_INVALID_ARGUMENT', `${flag} ${JSON.stringify(value)}: ${why}`);

/** A volume the container uses: a bind, a named volume, or an anonymous one (name made at create). */
export type VolumeSpec =
  | { kind: 'bind'; source: string; destination: string; readonly: boolean }
  | { kind: 'named'; name: string; destination: string; readonly: boolean }
  | { kind: 'anonymous'; destination: string; readonly: boolean };

function absDest(flag: string, value: string, dest: string): string {
  if (!dest.startsWith('/')) throw bad(flag, value, `destination ${JSON.stringify(dest)} must be an absolute path`);
  return path.posix.normalize(dest);
}

/** -v [SRC:]DST[:OPTS]: SRC absolute (or ./, ../) = bind, else a volume name; no SRC = anonymous. */
export function parseVolumeFlag(value: string): VolumeSpec {
  const parts = value.split(':');
  if (parts.length > 3 || parts.some((p) => p === '')) throw bad('--volume', value, 'expected [SOURCE:]DESTINATION[:OPTIONS]');
  let opts: string[] = [];
  let src: string | undefined;
  let dst: string;
  if (parts.length === 1) dst = parts[0]!;
  else if (parts.length === 2) {
    if (parts[1]!.startsWith('/')) [src, dst] = [parts[0]!, parts[1]!];
    else {
      dst = parts[0]!;
      opts = parts[1]!.split(',');
    }
  } else {
    [src, dst] = [parts[0]!, parts[1]!];
    opts = parts[2]!.split(',');
  }
  let readonly = false;
  for (const o of opts) {
    if (o === 'ro') readonly = true;
    else if (o === 'rw') readonly = false;
    else if (!['z', 'Z', 'U', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave', 'bind', 'rbind', 'nosuid', 'nodev', 'noexec', 'suid', 'dev', 'exec', 'copy', 'nocopy'].includes(o)) {
      throw bad('--volume', value, `unknown option ${JSON.stringify(o)}`);
    }
  }
  const destination = absDest('--volume', value, dst);
  if (src === undefined) return { kind: 'anonymous', destination, readonly };
  if (src.startsWith('/') || src.startsWith('./') || src.startsWith('../') || src === '.') {
    const source = path.resolve(src);
    if (!fs.existsSync(source)) throw bad('--volume', value, `the source path ${source} does not exist`);
    return { kind: 'bind', source, destination, readonly };
  }
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(src)) throw bad('--volume', value, `${JSON.stringify(src)} is neither an absolute path nor a valid volume name`);
  return { kind: 'named', name: src, destination, readonly };
}

/** Memory and sizes: a number with an optional b/k/m/g suffix (binary units, as podman). */
export function parseBytes(flag: string, value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)i?b?$/i.exec(value.trim());
  if (!m) throw bad(flag, value, 'expected a size like 512m or 1g');
  const mult = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase()]!;
  const n = Math.floor(Number(m[1]) * mult);
  if (n <= 0) throw bad(flag, value, 'must be more than 0');
  return n;
}

/** --mount type=bind|volume|tmpfs,… (podman's keys: source/src, destination/dst/target, ro/readonly, tmpfs-size, tmpfs-mode). */
export function parseMountFlag(value: string): VolumeSpec | MountRequest {
  const kv = new Map<string, string>();
  for (const item of value.split(',')) {
    const i = item.indexOf('=');
    kv.set(i < 0 ? item : item.slice(0, i), i < 0 ? 'true' : item.slice(i + 1));
  }
  const type = kv.get('type') ?? 'volume';
  const dst = kv.get('destination') ?? kv.get('dst') ?? kv.get('target');
  if (dst === undefined) throw bad('--mount', value, 'a destination (destination=, dst= or target=) is required');
  const destination = absDest('--mount', value, dst);
  const ro = ['ro', 'readonly'].some((k) => kv.has(k) && kv.get(k) !== 'false');
  const src = kv.get('source') ?? kv.get('src');
  if (type === 'bind') {
    if (src === undefined) throw bad('--mount', value, 'type=bind needs source=');
    const source = path.resolve(src);
    if (!fs.existsSync(source)) throw bad('--mount', value, `the source path ${source} does not exist`);
    return { kind: 'bind', source, destination, readonly: ro };
  }
  if (type === 'volume') {
    if (src === undefined) return { kind: 'anonymous', destination, readonly: ro };
    if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(src)) throw bad('--mount', value, `${JSON.stringify(src)} is not a valid volume name`);
    return { kind: 'named', name: src, destination, readonly: ro };
  }
  if (type === 'tmpfs') {
    const size = kv.get('tmpfs-size');
    const mode = kv.get('tmpfs-mode');
    if (mode !== undefined && !/^[0-7]{3,4}$/.test(mode)) throw bad('--mount', value, 'tmpfs-mode must be octal');
    return { type: 'tmpfs', destination, ...(size !== undefined ? { size: parseBytes('--mount tmpfs-size', size) } : {}), ...(mode !== undefined ? { mode: parseInt(mode, 8) } : {}), ...(ro ? { options: ['ro'] } : {}) };
  }
  throw bad('--mount', value, `type ${JSON.stringify(type)} is not supported (bind, volume, tmpfs)`);
}

/** --tmpfs DST[:OPTS] with mount(8) options (size=, mode=, noexec, …). */
export function parseTmpfsFlag(value: string): MountRequest {
  const i = value.indexOf(':');
  const destination = absDest('--tmpfs', value, i < 0 ? value : value.slice(0, i));
  const opts = i < 0 ? [] : value.slice(i + 1).split(',').filter(Boolean);
  let size: number | undefined;
  let mode: number | undefined;
  const rest: string[] = [];
  for (const o of opts) {
    if (o.startsWith('size=')) size = parseBytes('--tmpfs size', o.slice(5));
    else if (o.startsWith('mode=')) {
      if (!/^[0-7]{3,4}$/.test(o.slice(5))) throw bad('--tmpfs', value, 'mode must be octal');
      mode = parseInt(o.slice(5), 8);
    } else if (/^(ro|rw|noexec|exec|nosuid|suid|nodev|dev|notmpcopyup|tmpcopyup|[ug]id=\d+)$/.test(o)) rest.push(o);
    else throw bad('--tmpfs', value, `unknown option ${JSON.stringify(o)}`);
  }
  return { type: 'tmpfs', destination, ...(size !== undefined ? { size } : {}), ...(mode !== undefined ? { mode } : {}), options: rest.filter((o) => !/tmpcopyup/.test(o)) };
}

/** -e KEY=VALUE, or -e KEY (the value from kiln's environment; dropped when unset), and --env-file lines. */
export function parseEnv(envs: string[], envFiles: string[], hostEnv: NodeJS.ProcessEnv = process.env): string[] {
  const out: string[] = [];
  const add = (flag: string, e: string) => {
    const i = e.indexOf('=');
    if (i === 0) throw bad(flag, e, 'the variable name is empty');
    if (i > 0) out.push(e);
    else if (e.endsWith('*')) {
      for (const [k, v] of Object.entries(hostEnv)) if (k.startsWith(e.slice(0, -1)) && v !== undefined) out.push(`${k}=${v}`);
    } else if (hostEnv[e] !== undefined) out.push(`${e}=${hostEnv[e]}`);
  };
  for (const f of envFiles) {
    let text: string;
    try {
      text = fs.readFileSync(f, 'utf8');
    } catch (e) {
      throw new KilnError('E_INVALID_ARGUMENT', `--env-file ${f}: ${(e as Error).message}`);
    }
    for (const [n, raw] of text.split('\n').entries()) {
      const line = raw.replace(/\r$/, '').trim();
      if (line === '' || line.startsWith('#')) continue;
      try {
        add('--env-file', line);
      } catch (e) {
        throw new KilnError('E_INVALID_ARGUMENT', `--env-file ${f}, line ${n + 1}: ${(e as Error).message}`);
      }
    }
  }
  for (const e of envs) add('--env', e);
  return out;
}

/** Merges KEY=VALUE lists: later keys replace earlier ones in place. */
export function mergeEnv(base: readonly string[], over: readonly string[]): string[] {
  const out = [...base];
  for (const e of over) {
    const k = e.slice(0, e.indexOf('='));
    const i = out.findIndex((x) => x.slice(0, x.indexOf('=')) === k);
    if (i >= 0) out[i] = e;
    else out.push(e);
  }
  return out;
}

export interface SecurityOpts {
  noNewPrivileges: boolean;
  seccomp: string;
}

/** --security-opt no-new-privileges[=true|false], seccomp=unconfined|PATH, label=disable (accepted: no SELinux here). */
export function parseSecurityOpts(values: string[]): SecurityOpts {
  const r: SecurityOpts = { noNewPrivileges: false, seccomp: 'default' };
  for (const v of values) {
    if (v === 'no-new-privileges' || v === 'no-new-privileges=true' || v === 'no-new-privileges:true') r.noNewPrivileges = true;
    else if (v === 'no-new-privileges=false' || v === 'no-new-privileges:false') r.noNewPrivileges = false;
    else if (v.startsWith('seccomp=') || v.startsWith('seccomp:')) {
      const p = v.slice(8);
      if (p === '') throw bad('--security-opt', v, 'seccomp= needs unconfined or a profile path');
      r.seccomp = p === 'unconfined' ? 'unconfined' : path.resolve(p);
    } else if (v === 'label=disable' || v === 'label:disable') continue;
    else throw bad('--security-opt', v, 'supported: no-new-privileges, seccomp=unconfined|PATH, label=disable');
  }
  return r;
}

/** --network none|host (the default is a loopback-only namespace; bridge networks come later). */
export function parseNetwork(value: string | undefined): NetworkMode {
  if (value === undefined || value === 'none' || value === 'private') return 'none';
  if (value === 'host') return 'host';
  throw bad('--network', value, 'only none (loopback only, the default) and host are supported; bridge networks are not implemented yet');
}

/** A signal name (TERM, SIGTERM) or number → "SIGTERM"-style name. */
export function parseSignal(flag: string, value: string): string {
  const sigs = os.constants.signals as Record<string, number>;
  if (/^\d+$/.test(value)) {
    const name = Object.keys(sigs).find((k) => sigs[k] === Number(value));
    if (!name) throw bad(flag, value, 'not a signal number');
    return name;
  }
  const name = value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`;
  if (!(name in sigs)) throw bad(flag, value, 'not a signal name');
  return name;
}

/** --entrypoint: a JSON array, or one string (the command, no shell), or "" (none). */
export function parseEntrypoint(value: string): string[] {
  if (value === '') return [];
  if (value.trim().startsWith('[')) {
    try {
      const a = JSON.parse(value) as unknown;
      if (Array.isArray(a) && a.every((x) => typeof x === 'string')) return a as string[];
    } catch {
      /* fall through */
    }
    throw bad('--entrypoint', value, 'a JSON array must be a list of strings');
  }
  return [value];
}
