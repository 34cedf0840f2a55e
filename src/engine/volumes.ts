/**
 * Named volumes: podman 4.3.1's `volume create|ls|inspect|rm|prune|exists` semantics. Records
 * and directories live in store/volumes.ts (VolumeStore), whose transaction rules apply. What
 * the container code needs (ensureVolume, volumePath, copyUpIfEmpty, recordUse,
 * removeIfUnused; see container/volumes.ts) is re-exported from here.
 *
 * podman 4.3.1 quirks kept: filters of `ls` and `prune` are ORed (a volume matching any one
 * is listed), a volume may be named by a unique prefix of its name, `volume rm` reports
 * unknown names before removing the others and exits with the code of the last error.
 */
import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { KilnError, asKilnError } from '../errors';
import { goMap } from '../format/units';
import { VOLUME_NAME, type VolumeRecord } from '../store/volumes';
import { removeIfUnused } from '../container/volumes';
import type { EngineContext } from './context';

export type { VolumeRecord } from '../store/volumes';
export {
  assertUsable,
  copyUpIfEmpty,
  ensureVolume,
  ensureVolumeTx,
  recordUse,
  removeIfUnused,
  volumePath,
} from '../container/volumes';

// ---------------------------------------------------------------- create

export interface CreateVolumeOptions {
  /** default: 64 random hex digits */
  name?: string;
  /** only 'local' */
  driver?: string;
  labels?: Record<string, string>;
  /** podman's -o KEY=VALUE, last one of a key wins */
  options?: Record<string, string>;
  /** an existing volume of that name is returned instead of an error */
  ignore?: boolean;
}

/** The keys podman 4.3.1's local driver accepts (compared lower-cased). */
const LOCAL_KEYS = new Set(['device', 'o', 'type', 'uid', 'gid', 'size', 'inodes', 'noquota', 'copy', 'nocopy']);
const INT = /^[+-]?\d+$/;

/**
 * podman's `--label`/`--opt` values: KEY=VALUE or KEY (empty value); the last of a key wins.
 * E_INVALID_ARGUMENT for an empty key, naming the value.
 */
export function parseKeyValues(what: 'labels' | 'options', values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    const key = i < 0 ? v : v.slice(0, i);
    if (key === '') throw new KilnError('E_INVALID_ARGUMENT', `unable to process ${what}: invalid label format: ${JSON.stringify(v)}`);
    out[key] = i < 0 ? '' : v.slice(i + 1);
  }
  return out;
}

/**
 * The local driver's options as podman records them: `o` loses noquota (→ NOQUOTA=true) and
 * keeps uid=/gid= (→ UID/GID, which also own the volume's dirs). Quotas (size, inodes) and
 * driver timeouts are refused as podman does on a filesystem without project quota.
 */
function localOptions(given: Record<string, string>): { options: Record<string, string>; uid?: number; gid?: number } {
  const options: Record<string, string> = {};
  let uid: number | undefined;
  let gid: number | undefined;
  for (const [key, value] of Object.entries(given)) {
    if (key !== 'o') {
      options[key] = value;
      continue;
    }
    const kept: string[] = [];
    for (const o of value.split(',')) {
      const eq = o.indexOf('=');
      const k = (eq < 0 ? o : o.slice(0, eq)).toLowerCase();
      const val = eq < 0 ? undefined : o.slice(eq + 1);
      if (k === 'size' || k === 'inodes') {
        throw new KilnError('E_UNSUPPORTED', `-o o=${o}: volume options size and inodes not supported. Filesystem does not support Project Quota`, { hint: 'kiln sets no quotas on volumes' });
      } else if (k === 'uid' || k === 'gid') {
        const name = k.toUpperCase();
        if (val === undefined) throw new KilnError('E_INVALID_ARGUMENT', `-o o=${value}: ${k} option must provide a ${name}: invalid argument`);
        if (!INT.test(val) || Number(val) < 0) throw new KilnError('E_INVALID_ARGUMENT', `-o o=${value}: cannot convert ${name} ${val} to integer: strconv.Atoi: parsing ${JSON.stringify(val)}: invalid syntax`);
        if (k === 'uid') uid = Number(val);
        else gid = Number(val);
        options[name] = val;
        kept.push(o);
      } else if (k === 'noquota') {
        options.NOQUOTA = 'true';
      } else if (k === 'timeout') {
        throw new KilnError('E_INVALID_ARGUMENT', `-o o=${value}: running volume create option: Volume driver timeout can only be used with non-local volume drivers: invalid argument`);
      } else {
        kept.push(o);
      }
    }
    if (kept.length > 0) options.o = kept.join(',');
  }
  for (const [key, value] of Object.entries(options)) {
    if (!LOCAL_KEYS.has(key.toLowerCase())) throw new KilnError('E_INVALID_ARGUMENT', `-o ${key}: invalid mount option ${key} for driver 'local': invalid argument`, { hint: `the local driver knows ${[...LOCAL_KEYS].join(', ')}` });
    if (key.toLowerCase() === 'device' && (options.type ?? '').toLowerCase() === 'bind' && !fs.existsSync(value)) {
      throw new KilnError('E_INVALID_ARGUMENT', `-o device=${value}: invalid volume option device for driver 'local': stat ${value}: no such file or directory`);
    }
  }
  return { options, ...(uid !== undefined ? { uid } : {}), ...(gid !== undefined ? { gid } : {}) };
}

function checkName(name: string): void {
  if (!VOLUME_NAME.test(name)) {
    throw new KilnError('E_INVALID_ARGUMENT', `running volume create option: volume name ${JSON.stringify(name)} is invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: invalid argument`);
  }
}

/** `volume create`: the new volume (or, with `ignore`, the existing one). Exists → E_NAME_IN_USE. */
export function createVolume(ctx: EngineContext, o: CreateVolumeOptions = {}): VolumeRecord {
  const name = o.name ?? randomBytes(32).toString('hex');
  checkName(name);
  const driver = o.driver ?? 'local';
  const parsed = localOptions(o.options ?? {});
  const store = ctx.store;
  return store.writeTx(() => {
    const existing = store.volumes.get(name);
    if (existing) {
      if (o.ignore) return existing;
      throw new KilnError('E_NAME_IN_USE', `volume with name ${name} already exists: volume already exists`, { hint: 'use --ignore to accept an existing volume' });
    }
    if (driver !== 'local') {
      throw new KilnError('E_INVALID_ARGUMENT', `--driver ${driver}: volume ${name} uses volume plugin ${driver} but it could not be retrieved: no volume plugin with name ${driver} available: required plugin missing`, {
        hint: 'kiln has only the local driver',
      });
    }
    return store.volumes.createTx({ name, driver, labels: o.labels ?? {}, ...parsed });
  });
}

// ---------------------------------------------------------------- filters

type Filter = (v: VolumeRecord, used: Set<string>) => boolean;

function matchKeyValue(filter: string, map: Record<string, string>): boolean {
  const i = filter.indexOf('=');
  const key = i < 0 ? filter : filter.slice(0, i);
  const value = i < 0 ? '' : filter.slice(i + 1);
  return Object.prototype.hasOwnProperty.call(map, key) && (value === '' || map[key] === value);
}

const DURATION = /^[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const UNIT_MS: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1e3, m: 6e4, h: 3.6e6 };

/** containers/common's until value: a Go duration before now, Unix seconds, or a date/time. */
function untilTime(value: string, now: number): number {
  if (value === '0') return now;
  if (DURATION.test(value)) {
    let ms = 0;
    for (const m of value.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
    return now - (value.startsWith('-') ? -ms : ms);
  }
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value) * 1000;
  const t = Date.parse(value);
  if (Number.isNaN(t)) throw new KilnError('E_INVALID_ARGUMENT', `--filter until=${value}: failed to parse value as time or duration: ${JSON.stringify(value)}`);
  return t;
}

/**
 * podman 4.3.1's volume filters: name (a regular expression), driver, scope, label and opt
 * (KEY or KEY=VALUE), until (created before), dangling (true/1: used by no container,
 * false/0: used). Each value is one filter; a volume passes if any filter matches.
 */
function parseFilters(filters: string[], now = Date.now()): Filter[] {
  return filters.map((f): Filter => {
    const i = f.indexOf('=');
    if (i < 0) throw new KilnError('E_INVALID_ARGUMENT', `--filter ${f}: filter input must be in the form of filter=value: ${f} is invalid`);
    const key = f.slice(0, i);
    const value = f.slice(i + 1);
    switch (key) {
      case 'name': {
        let re: RegExp;
        try {
          re = new RegExp(value);
        } catch (e) {
          throw new KilnError('E_INVALID_ARGUMENT', `--filter ${f}: error parsing regexp: ${(e as Error).message}`);
        }
        return (v) => re.test(v.name);
      }
      case 'driver':
        return (v) => v.driver === value;
      case 'scope':
        return () => value === 'local';
      case 'label':
        return (v) => matchKeyValue(value, v.labels);
      case 'opt':
        return (v) => matchKeyValue(value, v.options);
      case 'until': {
        const t = untilTime(value, now);
        return (v) => v.created < t;
      }
      case 'dangling': {
        const want = new Map([['true', true], ['1', true], ['false', false], ['0', false]]).get(value.toLowerCase());
        if (want === undefined) throw new KilnError('E_INVALID_ARGUMENT', `--filter ${f}: "${value}" is not a valid value for the "dangling" filter - must be true or false`);
        return (v, used) => !used.has(v.name) === want;
      }
      default:
        throw new KilnError('E_INVALID_ARGUMENT', `--filter ${f}: "${key}" is an invalid volume filter`, { hint: 'volume filters: name, driver, scope, label, opt, until, dangling' });
    }
  });
}

/** `volume ls`: the volumes (by name) that match any of `filters` (all when none). */
export function listVolumes(ctx: EngineContext, o: { filters?: string[] } = {}): VolumeRecord[] {
  const fs_ = parseFilters(o.filters ?? []);
  const all = ctx.store.volumes.list();
  if (fs_.length === 0) return all;
  const used = ctx.store.volumes.usedNames();
  return all.filter((v) => fs_.some((f) => f(v, used)));
}

// ---------------------------------------------------------------- inspect

const pad = (n: number, w = 2) => String(Math.trunc(Math.abs(n))).padStart(w, '0');

/** The local wall clock of `ms` and its UTC offset in minutes, "YYYY-MM-DD", "hh:mm:ss.fff". */
function localParts(ms: number): { date: string; time: string; offset: number } {
  const d = new Date(ms);
  const frac = d.getMilliseconds() > 0 ? `.${pad(d.getMilliseconds(), 3).replace(/0+$/, '')}` : '';
  return {
    date: `${pad(d.getFullYear(), 4)}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`,
    time: `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}${frac}`,
    offset: -d.getTimezoneOffset(),
  };
}

/** Go's RFC3339Nano of a time in the local zone (as podman stores CreatedAt): "…Z" or "…+01:00". */
export function rfc3339Local(ms: number): string {
  const p = localParts(ms);
  const off = p.offset === 0 ? 'Z' : `${p.offset < 0 ? '-' : '+'}${pad(p.offset / 60)}:${pad(p.offset % 60)}`;
  return `${p.date}T${p.time}${off}`;
}

/** Go's time.Time.String() of that stored time: "… +0000 UTC", or "… +0100 +0100" (a fixed zone). */
export function goTimeLocal(ms: number): string {
  const p = localParts(ms);
  const off = `${p.offset < 0 ? '-' : '+'}${pad(p.offset / 60)}${pad(p.offset % 60)}`;
  return `${p.date} ${p.time} ${off} ${p.offset === 0 ? 'UTC' : off}`;
}

/** podman 4.3.1's InspectVolumeData, every field present (what --format templates see). */
export interface VolumeData {
  Name: string;
  Driver: string;
  Mountpoint: string;
  /** Go's time.Time printing; JSON output has RFC 3339 */
  CreatedAt: string;
  Status: Record<string, unknown>;
  Labels: Record<string, string>;
  Scope: string;
  Options: Record<string, string>;
  UID: number;
  GID: number;
  Anonymous: boolean;
  MountCount: number;
  NeedsCopyUp: boolean;
  NeedsChown: boolean;
  Timeout: number;
}

/** The template view of a volume. MountCount is 0: kiln keeps no mount counts of volumes. */
export function volumeData(ctx: EngineContext, v: VolumeRecord): VolumeData {
  const uid = v.options.UID !== undefined ? Number(v.options.UID) : 0;
  const gid = v.options.GID !== undefined ? Number(v.options.GID) : 0;
  return {
    Name: v.name,
    Driver: v.driver,
    Mountpoint: ctx.store.volumes.dataPath(v.name),
    CreatedAt: goTimeLocal(v.created),
    Status: goMap({}),
    Labels: goMap({ ...v.labels }),
    Scope: 'local',
    Options: goMap({ ...v.options }),
    UID: uid,
    GID: gid,
    Anonymous: v.anonymous,
    MountCount: 0,
    NeedsCopyUp: !v.filled,
    NeedsChown: !v.filled && v.options.UID === undefined && v.options.GID === undefined,
    Timeout: 0,
  };
}

/** The JSON view (podman's field order; omitempty fields left out when zero). */
export function volumeJson(ctx: EngineContext, v: VolumeRecord): Record<string, unknown> {
  const d = volumeData(ctx, v);
  return {
    Name: d.Name,
    Driver: d.Driver,
    Mountpoint: d.Mountpoint,
    CreatedAt: rfc3339Local(v.created),
    Labels: d.Labels,
    Scope: d.Scope,
    Options: d.Options,
    ...(d.UID ? { UID: d.UID } : {}),
    ...(d.GID ? { GID: d.GID } : {}),
    ...(d.Anonymous ? { Anonymous: true } : {}),
    MountCount: d.MountCount,
    ...(d.NeedsCopyUp ? { NeedsCopyUp: true } : {}),
    ...(d.NeedsChown ? { NeedsChown: true } : {}),
  };
}

/**
 * `volume inspect`: the volumes found (in argument order; all by name with `all`) and one
 * E_VOLUME_UNKNOWN ("no such volume X") per name not found. An ambiguous prefix throws.
 */
export function inspectVolumes(ctx: EngineContext, refs: string[], o: { all?: boolean } = {}): { volumes: VolumeRecord[]; errors: KilnError[] } {
  const store = ctx.store;
  if (o.all) return { volumes: store.volumes.list(), errors: [] };
  const volumes: VolumeRecord[] = [];
  const errors: KilnError[] = [];
  for (const ref of refs) {
    let v: VolumeRecord | undefined;
    try {
      v = store.volumes.find(ref);
    } catch (e) {
      const k = asKilnError(e);
      throw new KilnError(k.code, `inspecting volume ${ref}: ${k.message}`, k.hint === undefined ? {} : { hint: k.hint });
    }
    if (v) volumes.push(v);
    else errors.push(new KilnError('E_VOLUME_UNKNOWN', `no such volume ${ref}`));
  }
  return { volumes, errors };
}

/** `volume exists`: an exact name. */
export function volumeExists(ctx: EngineContext, name: string): boolean {
  return ctx.store.volumes.get(name) !== undefined;
}

// ---------------------------------------------------------------- rm, prune

/** Removes the given containers (forced, stopping running ones within `timeout` seconds). */
export type RemoveContainers = (ids: string[], opts: { timeout?: number }) => Promise<void>;

export interface RemoveVolumesOptions {
  all?: boolean;
  /** remove the containers using a volume too (via removeContainers); unknown names are no error */
  force?: boolean;
  /** seconds to wait for running containers to stop (podman's -t) */
  timeout?: number;
  /** the container code's removal; without it a forced removal of a used volume fails */
  removeContainers?: RemoveContainers;
}

/** Removes one volume in a transaction of its own, then its files. */
async function removeOne(ctx: EngineContext, name: string): Promise<void> {
  ctx.store.writeTx(() => ctx.store.volumes.removeTx(name));
  await ctx.store.emptyTrash();
}

/**
 * `volume rm`: unknown names are reported first (podman's order), then each volume is removed.
 * A used volume is E_VOLUME_IN_USE unless `force`, which removes its containers first through
 * `removeContainers` (E_UNSUPPORTED when that is not given). Errors are collected, not thrown.
 */
export async function removeVolumes(ctx: EngineContext, refs: string[], o: RemoveVolumesOptions = {}): Promise<{ removed: string[]; errors: KilnError[] }> {
  const store = ctx.store;
  const removed: string[] = [];
  const errors: KilnError[] = [];
  const targets: string[] = [];
  if (o.all) targets.push(...store.volumes.list().map((v) => v.name));
  else {
    for (const ref of refs) {
      try {
        const v = store.volumes.find(ref);
        if (v) targets.push(v.name);
        else if (!o.force) errors.push(new KilnError('E_VOLUME_UNKNOWN', `no volume with name "${ref}" found: no such volume`));
      } catch (e) {
        errors.push(asKilnError(e));
      }
    }
  }
  for (const name of [...new Set(targets)]) {
    try {
      const users = store.volumes.usersOf(name);
      if (users.length > 0 && o.force) {
        if (!o.removeContainers) {
          throw new KilnError('E_UNSUPPORTED', `volume ${name} is being used by the following container(s): ${users.join(', ')}: removing them with the volume needs kiln's container support, which this build lacks`, {
            hint: 'remove the containers first',
          });
        }
        await o.removeContainers(users, o.timeout === undefined ? {} : { timeout: o.timeout });
      }
      await removeOne(ctx, name);
      removed.push(name);
    } catch (e) {
      errors.push(asKilnError(e));
    }
  }
  return { removed, errors };
}

/** podman's `volume rm` exit code: that of the last error (1 no such volume, 2 in use), else 125. */
export function volumeRmExitCode(errors: KilnError[]): number {
  let code = 0;
  for (const e of errors) code = e.code === 'E_VOLUME_UNKNOWN' ? 1 : e.code === 'E_VOLUME_IN_USE' ? 2 : code === 0 ? 125 : code;
  return code;
}

/** What `volume prune` would remove: volumes no container uses that match any filter. */
export function pruneCandidates(ctx: EngineContext, o: { filters?: string[] } = {}): string[] {
  const used = ctx.store.volumes.usedNames();
  return listVolumes(ctx, o).filter((v) => !used.has(v.name)).map((v) => v.name);
}

/** `volume prune`: removes the candidates (skipping any a container took meanwhile). */
export async function pruneVolumes(ctx: EngineContext, o: { filters?: string[] } = {}): Promise<{ removed: string[]; errors: KilnError[] }> {
  const removed: string[] = [];
  const errors: KilnError[] = [];
  for (const name of pruneCandidates(ctx, o)) {
    try {
      if (await removeIfUnused(ctx, name)) removed.push(name);
    } catch (e) {
      errors.push(asKilnError(e));
    }
  }
  return { removed, errors };
}
