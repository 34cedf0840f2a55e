/**
 * The OCI runtime spec (config.json) of a build or run container, with podman's defaults:
 * its capability set, masked and read-only paths, standard mounts and devices.
 *
 * Deliberate differences from podman, for this engine's hosts:
 * - no seccomp profile and no AppArmor/SELinux label (the capability set, masked paths and
 *   the absence of CAP_MKNOD/CAP_SYS_ADMIN are the confinement);
 * - `linux.resources` is left out unless the caller asks (crun on a hybrid-cgroup host only
 *   runs without it). runc then still applies its default device rules (deny all but the
 *   standard devices); crun through that workaround applies none. Either way /dev is a tmpfs
 *   holding only null, zero, full, random, urandom and tty (and pts/ptmx), and without
 *   CAP_MKNOD no other node can be made. Those six are the OCI spec's default devices, which
 *   runc and crun create themselves: listing them in linux.devices would make runc drop its
 *   allow rules for them (the process then cannot even open /dev/null);
 * - rlimits are clamped to this process's own hard limits (a limit can be lowered but never
 *   raised here, and runc fails the whole start if a spec asks for more).
 * /etc/hosts, /etc/resolv.conf and /etc/hostname are the caller's to provide as bind mounts.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import { readFileInRoot } from './securejoin';
import type { OciProcess } from './types';

/** podman's default capability set (containers.conf default_capabilities). */
export const DEFAULT_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_NET_BIND_SERVICE',
  'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

export const DEFAULT_MASKED_PATHS: readonly string[] = [
  '/proc/acpi', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/sched_debug', '/proc/scsi',
  '/proc/timer_list', '/proc/timer_stats', '/sys/dev/block', '/sys/devices/virtual/powercap',
  '/sys/firmware', '/sys/fs/selinux',
];

export const DEFAULT_READONLY_PATHS: readonly string[] = [
  '/proc/asound', '/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger',
];

/** What is requested when the caller gives no rlimits (podman's as root), before clamping. */
export const DEFAULT_RLIMITS: readonly Rlimit[] = [
  { type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 },
  { type: 'RLIMIT_NPROC', soft: 4194304, hard: 4194304 },
];

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

export type MountRequest =
  | { type: 'bind'; source: string; destination: string; readonly?: boolean }
  | { type: 'tmpfs'; destination: string; /** bytes */ size?: number; /** default 0o1777 */ mode?: number; options?: string[] };

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

/**
 * - 'none' (default): a new network namespace with only `lo`, which runc and crun bring up
 *   themselves for a namespace they create (runc 1.1 adds a "loopback" network; measured for
 *   crun 1.8 too), so 127.0.0.1 works in a build step;
 * - 'host': the host's network namespace (and /sys is then a recursive read-only bind of the
 *   host's, since sysfs can only be mounted by the owner of the netns);
 * - { netns }: join an existing network namespace (e.g. one a bridge plugin configured).
 */
export type NetworkMode = 'none' | 'host' | { netns: string };

export interface SpecOptions {
  /** absolute host path of the mounted rootfs */
  rootfs: string;
  args: string[];
  /** KEY=VALUE; PATH=DEFAULT_PATH is added when absent */
  env?: string[];
  /** absolute path inside the container; default '/' */
  cwd?: string;
  user?: { uid: number; gid: number; additionalGids?: number[] };
  umask?: number;
  /** default 'kiln' */
  hostname?: string;
  network?: NetworkMode;
  /**
   * added after the standard mounts, in this order (parents first); a standard mount at or
   * under one of these destinations is dropped. A read-only bind is read-only recursively.
   */
  mounts?: MountRequest[];
  /** requested limits (default DEFAULT_RLIMITS), clamped to this process's hard limits */
  rlimits?: Rlimit[];
  /** default DEFAULT_CAPABILITIES; names with or without the CAP_ prefix */
  capabilities?: readonly string[];
  noNewPrivileges?: boolean;
  readonlyRootfs?: boolean;
  /** copied verbatim to linux.resources (omitted when absent) */
  resources?: Record<string, unknown>;
  /** linux.cgroupsPath; default: the runtime's choice */
  cgroupsPath?: string;
  annotations?: Record<string, string>;
}

export interface OciSpec {
  ociVersion: string;
  root: { path: string; readonly: boolean };
  process: OciProcess;
  hostname: string;
  mounts: OciMount[];
  annotations?: Record<string, string>;
  linux: Record<string, unknown>;
}

/** Builds config.json for the options; throws E_INVALID_ARGUMENT naming the bad option. */
export function buildSpec(opts: SpecOptions): OciSpec {
  if (!path.isAbsolute(opts.rootfs)) throw invalid(`rootfs ${JSON.stringify(opts.rootfs)} is not an absolute path`);
  if (opts.args.length === 0) throw invalid('args is empty: a container needs a command to run');
  const cwd = opts.cwd ?? '/';
  if (!cwd.startsWith('/')) throw invalid(`cwd ${JSON.stringify(cwd)} is not an absolute path`);
  const network = opts.network ?? 'none';
  const env = [...(opts.env ?? [])];
  if (!env.some((e) => e.startsWith('PATH='))) env.unshift(`PATH=${DEFAULT_PATH}`);
  const caps = (opts.capabilities ?? DEFAULT_CAPABILITIES).map(capName);
  const user = opts.user ?? { uid: 0, gid: 0 };
  for (const id of [user.uid, user.gid, ...(user.additionalGids ?? [])]) {
    if (!Number.isInteger(id) || id < 0 || id > 0xfffffffe) throw invalid(`user id ${id} is not a valid uid/gid`);
  }

  const proc: OciProcess = {
    terminal: false,
    user: { uid: user.uid, gid: user.gid, ...(user.additionalGids?.length ? { additionalGids: [...user.additionalGids] } : {}), ...(opts.umask !== undefined ? { umask: opts.umask } : {}) },
    args: [...opts.args],
    env,
    cwd,
    capabilities: { bounding: caps, effective: caps, permitted: caps },
    rlimits: clampRlimits(opts.rlimits ?? DEFAULT_RLIMITS),
    noNewPrivileges: opts.noNewPrivileges ?? false,
  };

  const callerMounts = (opts.mounts ?? []).map(toOciMount);
  const covered = (dest: string) => callerMounts.some((m) => dest === m.destination || dest.startsWith(m.destination.replace(/\/$/, '') + '/'));
  const mounts = standardMounts(network === 'host').filter((m) => !covered(m.destination));
  mounts.push(...callerMounts);

  const namespaces: { type: string; path?: string }[] = [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }];
  if (network === 'none') namespaces.push({ type: 'network' });
  else if (typeof network === 'object') namespaces.push({ type: 'network', path: network.netns });

  const linux: Record<string, unknown> = {
    namespaces,
    maskedPaths: [...DEFAULT_MASKED_PATHS],
    readonlyPaths: [...DEFAULT_READONLY_PATHS],
  };
  if (opts.resources) linux.resources = opts.resources;
  if (opts.cgroupsPath) linux.cgroupsPath = opts.cgroupsPath;

  const spec: OciSpec = {
    ociVersion: '1.0.2',
    root: { path: opts.rootfs, readonly: opts.readonlyRootfs ?? false },
    process: proc,
    hostname: opts.hostname ?? 'kiln',
    mounts,
    linux,
  };
  if (opts.annotations) spec.annotations = { ...opts.annotations };
  return spec;
}

/** Writes `spec` as `bundle`/config.json (the bundle directory must exist). */
export function writeSpec(bundle: string, spec: OciSpec): string {
  const file = path.join(bundle, 'config.json');
  fs.writeFileSync(file, JSON.stringify(spec, null, 2));
  return file;
}

function standardMounts(hostNetwork: boolean): OciMount[] {
  const sys: OciMount = hostNetwork
    ? { destination: '/sys', type: 'bind', source: '/sys', options: ['rbind', 'rro', 'ro', 'nosuid', 'noexec', 'nodev', 'rprivate'] }
    : { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] };
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    sys,
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

function toOciMount(m: MountRequest): OciMount {
  if (!path.isAbsolute(m.destination)) throw invalid(`mount destination ${JSON.stringify(m.destination)} is not an absolute path`);
  const destination = path.posix.normalize(m.destination);
  if (m.type === 'bind') {
    if (!path.isAbsolute(m.source)) throw invalid(`bind mount source ${JSON.stringify(m.source)} is not an absolute path`);
    return { destination, type: 'bind', source: m.source, options: ['rbind', ...(m.readonly ? ['ro', 'rro'] : ['rw']), 'rprivate'] };
  }
  const options = ['nosuid', 'nodev', `mode=${(m.mode ?? 0o1777).toString(8)}`];
  if (m.size !== undefined) {
    if (!Number.isSafeInteger(m.size) || m.size <= 0) throw invalid(`tmpfs size ${m.size} for ${destination} is not a positive number of bytes`);
    options.push(`size=${m.size}`);
  }
  return { destination, type: 'tmpfs', source: 'tmpfs', options: [...options, ...(m.options ?? [])] };
}

/** A capability name in the spec's form (CAP_X), from `x`, `X` or `CAP_X`; E_INVALID_ARGUMENT for anything else. */
export function capName(c: string): string {
  const name = c.toUpperCase();
  if (!/^[A-Z_]+$/.test(name)) throw invalid(`capability ${JSON.stringify(c)} is not a capability name`);
  return name.startsWith('CAP_') ? name : `CAP_${name}`;
}

/** /proc/self/limits row names of the RLIMIT_* resources. */
const LIMIT_ROWS: Record<string, string> = {
  RLIMIT_CPU: 'Max cpu time', RLIMIT_FSIZE: 'Max file size', RLIMIT_DATA: 'Max data size',
  RLIMIT_STACK: 'Max stack size', RLIMIT_CORE: 'Max core file size', RLIMIT_RSS: 'Max resident set',
  RLIMIT_NPROC: 'Max processes', RLIMIT_NOFILE: 'Max open files', RLIMIT_MEMLOCK: 'Max locked memory',
  RLIMIT_AS: 'Max address space', RLIMIT_LOCKS: 'Max file locks', RLIMIT_SIGPENDING: 'Max pending signals',
  RLIMIT_MSGQUEUE: 'Max msgqueue size', RLIMIT_NICE: 'Max nice priority', RLIMIT_RTPRIO: 'Max realtime priority',
  RLIMIT_RTTIME: 'Max realtime timeout',
};

/** This process's hard limits from /proc/self/limits, by RLIMIT_* name (Infinity = unlimited). */
export function hostHardLimits(limitsText = fs.readFileSync('/proc/self/limits', 'utf8')): Map<string, number> {
  const out = new Map<string, number>();
  const lines = limitsText.split('\n');
  for (const [type, row] of Object.entries(LIMIT_ROWS)) {
    const line = lines.find((l) => l.startsWith(row + ' '));
    if (!line) continue;
    const fields = line.slice(row.length).trim().split(/\s+/);
    const hard = fields[1];
    if (hard === undefined) continue;
    out.set(type, hard === 'unlimited' ? Infinity : Number(hard));
  }
  return out;
}

/**
 * The requested limits with hard lowered to this process's hard limit and soft to at most the
 * result. Throws E_INVALID_ARGUMENT for an unknown type or a value that is not a
 * non-negative safe integer (unlimited cannot be requested).
 */
export function clampRlimits(requested: readonly Rlimit[], hard: Map<string, number> = hostHardLimits()): Rlimit[] {
  return requested.map((r) => {
    const type = r.type.toUpperCase().startsWith('RLIMIT_') ? r.type.toUpperCase() : `RLIMIT_${r.type.toUpperCase()}`;
    if (!(type in LIMIT_ROWS)) throw invalid(`unknown rlimit ${JSON.stringify(r.type)}`);
    for (const v of [r.soft, r.hard]) {
      if (!Number.isSafeInteger(v) || v < 0) throw invalid(`rlimit ${type} value ${v} is not a non-negative integer`);
    }
    if (r.soft > r.hard) throw invalid(`rlimit ${type}: soft limit ${r.soft} is above the hard limit ${r.hard}`);
    const max = hard.get(type) ?? Infinity;
    const h = Math.min(r.hard, max);
    return { type, soft: Math.min(r.soft, h), hard: h };
  });
}

function invalid(msg: string): KilnError {
  return new KilnError('E_INVALID_ARGUMENT', `container spec: ${msg}`);
}

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
}

const MAX_ID = 2 ** 31 - 1;

/**
 * Resolves a Containerfile USER value (`name`, `uid`, `name:group`, `uid:gid`, mixed, or ''
 * for root) against the rootfs's /etc/passwd and /etc/group, with runc's (and so docker's)
 * rules: a name must exist in passwd; a numeric uid need not (gid is then 0); an explicit
 * group (name, or number even without an entry) sets the gid and suppresses supplementary
 * groups; otherwise the supplementary groups are those of /etc/group listing the user's name.
 * The files are read with secureJoin/O_NOFOLLOW: a symlinked /etc/passwd resolves inside the
 * rootfs, never to the host's. Errors are E_BUILD with runc's wording.
 */
export function resolveUser(rootfs: string, user: string): ResolvedUser {
  const colon = user.indexOf(':');
  const userArg = colon < 0 ? user : user.slice(0, colon);
  const groupArg = colon < 0 ? '' : user.slice(colon + 1);
  const uidArg = numericId(userArg, user);
  const gidArg = numericId(groupArg, user);

  const result: ResolvedUser = { uid: 0, gid: 0, additionalGids: [] };
  let userName = '';
  const entry = userArg === '' ? undefined : readDb(rootfs, '/etc/passwd', 7).find((f) => (uidArg === undefined ? f[0] === userArg : Number(f[2]) === uidArg));
  if (entry) {
    userName = entry[0] as string;
    result.uid = Number(entry[2]);
    result.gid = Number(entry[3]);
  } else if (userArg !== '') {
    if (uidArg === undefined) throw new KilnError('E_BUILD', `unable to find user ${userArg}: no matching entries in passwd file`);
    result.uid = uidArg;
  }

  if (groupArg !== '' || userName !== '') {
    const groups = readDb(rootfs, '/etc/group', 4).filter((f) => {
      if (groupArg === '') return (f[3] ?? '').split(',').includes(userName);
      return gidArg === undefined ? f[0] === groupArg : Number(f[2]) === gidArg;
    });
    if (groupArg !== '') {
      const g = groups[0];
      if (g) result.gid = Number(g[2]);
      else if (gidArg !== undefined) result.gid = gidArg;
      else throw new KilnError('E_BUILD', `unable to find group ${groupArg}: no matching entries in group file`);
    } else {
      result.additionalGids = groups.map((g) => Number(g[2]));
    }
  }
  return result;
}

/** The number if `s` is all digits (range-checked), else undefined. */
function numericId(s: string, whole: string): number | undefined {
  if (!/^\d+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > MAX_ID) throw new KilnError('E_BUILD', `user ${JSON.stringify(whole)}: uids and gids must be in range 0-${MAX_ID}`);
  return n;
}

/** Well-formed lines of a colon-separated database in the rootfs (numeric id in field 3); [] if absent. */
function readDb(rootfs: string, file: string, minFields: number): string[][] {
  const data = readFileInRoot(rootfs, file);
  if (!data) return [];
  return data
    .toString('utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'))
    .filter((f) => f.length >= minFields && /^\d+$/.test(f[2] ?? '') && (minFields < 7 || /^\d+$/.test(f[3] ?? '')));
}
