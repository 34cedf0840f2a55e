/**
 * `kiln top CONTAINER [DESCRIPTORS...]`: the container's processes as podman 4.3 shows them
 * (its psgo library), read from the host's /proc:
 *
 * - The processes are those in the pid namespace of the container's init process (state.pid),
 *   ordered by their pid inside the container. PID, PPID and PGID are the in-container numbers
 *   (NSpid/NSpgid); a process whose parent is outside the container (an exec'd one) has PPID 0.
 * - Default descriptors (`ps -ef`-like): user pid ppid pcpu etime tty time args. The others:
 *   comm group rgroup ruser nice pgid vsz state stime seccomp label capamb capinh capprm capeff
 *   capbnd hpid huser hgroup, and the AIX codes (%C %G %P %U %a %c %g %n %p %r %t %u %x %y %z).
 *   Several may be given in one argument, comma-separated. User and group names come from the
 *   container's /etc/passwd and /etc/group (hpid/huser/hgroup: the host's); a name that is not
 *   found shows as the number.
 * - Formats are psgo's: ELAPSED is a Go duration since the start (to whole seconds of start
 *   time), TIME the CPU time in whole seconds as a Go duration, %CPU = 100 × TIME / ELAPSED with
 *   three decimals, COMMAND (args) the NUL-separated command line joined by spaces (psgo keeps
 *   the trailing empty field, so it ends with a space), or "[name]" when it is empty.
 * - An unknown descriptor makes podman run `ps` with the arguments as given inside the
 *   container; so does kiln (through exec), returning ps's lines without the ps process's own.
 *
 * Errors: E_CONTAINER_UNKNOWN; E_CONTAINER_STATE "top can only be used on running containers";
 * E_RUNTIME when the ps fallback fails.
 */
import * as fs from 'node:fs';
import { Writable } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { KilnError } from '../errors';
import type { EngineContext } from '../engine/context';
import { readFileInRoot } from '../runtime/securejoin';
import { execInContainer } from './exec';
import { lookup } from './lifecycle';
import { mergedDir } from './rootfs';

/** USER_HZ: the unit of /proc/PID/stat times (100 on every Linux architecture kiln runs on). */
const CLOCK_TICKS = 100n;
const NS = 1_000_000_000n;

export type TopResult = { header: string[]; rows: string[][] } | { lines: string[] };

interface Proc {
  hostPid: number;
  pid: string;
  ppid: string;
  pgid: string;
  status: Map<string, string>;
  /** fields of /proc/PID/stat after the command name: [0] = state (field 3) */
  stat: string[];
  cmdline: string[];
  label: string;
}

interface Names {
  users: Map<number, string>;
  groups: Map<number, string>;
}

interface Ctx {
  container: Names;
  host: Names;
  bootSecs: bigint;
  nowNs: bigint;
}

/** Go's time.Duration.String. */
export function goDuration(ns: bigint): string {
  if (ns === 0n) return '0s';
  const neg = ns < 0n;
  const u = neg ? -ns : ns;
  const frac = (v: bigint, digits: number): string => {
    const p = 10n ** BigInt(digits);
    const f = (v % p).toString().padStart(digits, '0').replace(/0+$/, '');
    return f ? `${v / p}.${f}` : `${v / p}`;
  };
  let out: string;
  if (u < 1000n) out = `${u}ns`;
  else if (u < 1_000_000n) out = `${frac(u, 3)}µs`;
  else if (u < NS) out = `${frac(u, 6)}ms`;
  else {
    out = `${frac(u % (60n * NS), 9)}s`;
    const mins = u / (60n * NS);
    if (mins > 0n) out = `${mins >= 60n ? `${mins / 60n}h` : ''}${mins % 60n}m${out}`;
  }
  return neg ? `-${out}` : out;
}

const CAPS = ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE',
  'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE',
  'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE'];

/** psgo's parseCAP: "full", "none", or the names (no CAP_ prefix) sorted and comma-joined. */
function capSet(hex: string | undefined): string {
  const mask = BigInt(`0x${hex ?? '0'}`);
  let last = CAPS.length - 1;
  try {
    last = Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  } catch {
    /* assume the names we know */
  }
  if (mask === (1n << BigInt(last + 1)) - 1n) return 'full';
  const names = CAPS.filter((_n, bit) => ((mask >> BigInt(bit)) & 1n) === 1n).sort();
  return names.length === 0 ? 'none' : names.join(',');
}

function tty(nr: number): string {
  if (nr === 0) return '?';
  const major = (nr >> 8) & 0xfff;
  const minor = (nr & 0xff) | ((nr >> 12) & 0xfff00);
  if (major >= 136 && major <= 143) return `pts/${(major - 136) * 256 + minor}`;
  if (major === 4) return minor < 64 ? `tty${minor}` : `ttyS${minor - 64}`;
  if (major === 5) return ['tty', 'console', 'ptmx'][minor] ?? '?';
  return '?';
}

function startNs(p: Proc, c: Ctx): bigint {
  return (c.bootSecs + BigInt(p.stat[19] ?? '0') / CLOCK_TICKS) * NS;
}

function cpuSecs(p: Proc): bigint {
  return (BigInt(p.stat[11] ?? '0') + BigInt(p.stat[12] ?? '0')) / CLOCK_TICKS;
}

const ids = (p: Proc, key: 'Uid' | 'Gid'): string[] => (p.status.get(key) ?? '0 0').split(/\s+/);
const nameOf = (m: Map<number, string>, id: string | undefined): string => m.get(Number(id)) ?? id ?? '?';

function args(p: Proc): string {
  return p.cmdline[0] === '' || p.cmdline.length === 0 ? `[${p.status.get('Name') ?? ''}]` : p.cmdline.join(' ');
}

function pad2(n: number): string {
  return String(n).padStart(2, '0');
}

/** Go's time.Time.String() without fractions: "2006-01-02 15:04:05 -0700 MST" in local time. */
function goTime(ms: number): string {
  const d = new Date(ms);
  const off = -d.getTimezoneOffset();
  const sign = off < 0 ? '-' : '+';
  const zone = new Intl.DateTimeFormat('en-US', { timeZoneName: 'short' }).formatToParts(d).find((x) => x.type === 'timeZoneName')?.value ?? '';
  const abbr = zone === 'UTC' || zone === 'GMT' ? 'UTC' : zone.replace(/^GMT/, '');
  return `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())} ${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())} ${sign}${pad2(Math.floor(Math.abs(off) / 60))}${pad2(Math.abs(off) % 60)} ${abbr}`;
}

type Fn = (p: Proc, c: Ctx) => string;

const DESCRIPTORS: { code?: string; normal: string; header: string; fn: Fn }[] = [
  { code: '%C', normal: 'pcpu', header: '%CPU', fn: (p, c) => (Number(cpuSecs(p)) * 100 / (Number(c.nowNs - startNs(p, c)) / 1e9)).toFixed(3) },
  { code: '%G', normal: 'group', header: 'GROUP', fn: (p, c) => nameOf(c.container.groups, ids(p, 'Gid')[1]) },
  { code: '%P', normal: 'ppid', header: 'PPID', fn: (p) => p.ppid },
  { code: '%U', normal: 'user', header: 'USER', fn: (p, c) => nameOf(c.container.users, ids(p, 'Uid')[1]) },
  { code: '%a', normal: 'args', header: 'COMMAND', fn: args },
  { code: '%c', normal: 'comm', header: 'COMMAND', fn: (p) => (p.cmdline[0] ? p.cmdline[0].split('/').pop()! : args(p)) },
  { code: '%g', normal: 'rgroup', header: 'RGROUP', fn: (p, c) => nameOf(c.container.groups, ids(p, 'Gid')[0]) },
  { code: '%n', normal: 'nice', header: 'NI', fn: (p) => p.stat[16] ?? '' },
  { code: '%p', normal: 'pid', header: 'PID', fn: (p) => p.pid },
  { code: '%r', normal: 'pgid', header: 'PGID', fn: (p) => p.pgid },
  { code: '%t', normal: 'etime', header: 'ELAPSED', fn: (p, c) => goDuration(c.nowNs - startNs(p, c)) },
  { code: '%u', normal: 'ruser', header: 'RUSER', fn: (p, c) => nameOf(c.container.users, ids(p, 'Uid')[0]) },
  { code: '%x', normal: 'time', header: 'TIME', fn: (p) => goDuration(cpuSecs(p) * NS) },
  { code: '%y', normal: 'tty', header: 'TTY', fn: (p) => tty(Number(p.stat[4] ?? '0')) },
  { code: '%z', normal: 'vsz', header: 'VSZ', fn: (p) => String(Math.floor(Number(p.stat[20] ?? '0') / 1024)) },
  { normal: 'capamb', header: 'AMBIENT CAPS', fn: (p) => capSet(p.status.get('CapAmb')) },
  { normal: 'capinh', header: 'INHERITED CAPS', fn: (p) => capSet(p.status.get('CapInh')) },
  { normal: 'capprm', header: 'PERMITTED CAPS', fn: (p) => capSet(p.status.get('CapPrm')) },
  { normal: 'capeff', header: 'EFFECTIVE CAPS', fn: (p) => capSet(p.status.get('CapEff')) },
  { normal: 'capbnd', header: 'BOUNDING CAPS', fn: (p) => capSet(p.status.get('CapBnd')) },
  { normal: 'seccomp', header: 'SECCOMP', fn: (p) => ({ 0: 'disabled', 1: 'strict', 2: 'filter' } as Record<string, string>)[p.status.get('Seccomp') ?? ''] ?? '?' },
  { normal: 'label', header: 'LABEL', fn: (p) => p.label },
  { normal: 'hpid', header: 'HPID', fn: (p) => String(p.hostPid) },
  { normal: 'huser', header: 'HUSER', fn: (p, c) => nameOf(c.host.users, ids(p, 'Uid')[1]) },
  { normal: 'hgroup', header: 'HGROUP', fn: (p, c) => nameOf(c.host.groups, ids(p, 'Gid')[1]) },
  { normal: 'state', header: 'STATE', fn: (p) => (p.status.get('State') ?? '').split(/\s+/)[0] ?? '' },
  { normal: 'stime', header: 'STIME', fn: (p, c) => goTime(Number(startNs(p, c) / 1_000_000n)) },
];

export const DEFAULT_DESCRIPTORS = ['user', 'pid', 'ppid', 'pcpu', 'etime', 'tty', 'time', 'args'];

/** name → id maps of an /etc/passwd or /etc/group text (the first entry for an id wins). */
function idNames(text: string | undefined): Map<number, string> {
  const m = new Map<number, string>();
  for (const line of (text ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length < 3 || f[0] === '' || !/^\d+$/.test(f[2]!)) continue;
    if (!m.has(Number(f[2]))) m.set(Number(f[2]), f[0]!);
  }
  return m;
}

function readProc(pid: number): Proc | undefined {
  try {
    const statText = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const status = new Map<string, string>();
    for (const line of fs.readFileSync(`/proc/${pid}/status`, 'latin1').split('\n')) {
      const i = line.indexOf(':');
      if (i > 0) status.set(line.slice(0, i), line.slice(i + 1).trim());
    }
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    let label = '?';
    try {
      label = fs.readFileSync(`/proc/${pid}/attr/current`, 'utf8').replace(/[\0\n]+$/, '') || '?';
    } catch {
      /* no LSM: psgo's "?" */
    }
    const last = (k: string) => (status.get(k) ?? '').split(/\s+/).pop() ?? '';
    return { hostPid: pid, pid: last('NSpid'), ppid: status.get('PPid') ?? '0', pgid: last('NSpgid'), status, stat: statText.slice(statText.lastIndexOf(')') + 2).split(' '), cmdline, label };
  } catch {
    return undefined; // exited while we looked
  }
}

/** The processes sharing the pid namespace of host pid `init`, by in-container pid. */
function containerProcesses(init: number): Proc[] {
  let ns: string;
  try {
    ns = fs.readlinkSync(`/proc/${init}/ns/pid`);
  } catch (e) {
    throw new KilnError('E_CONTAINER_STATE', `top: the container's init process ${init} is gone: ${(e as Error).message}`);
  }
  const byHost = new Map<number, Proc>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    let mine: string;
    try {
      mine = fs.readlinkSync(`/proc/${d}/ns/pid`);
    } catch {
      continue;
    }
    if (mine !== ns) continue;
    const p = readProc(Number(d));
    if (p) byHost.set(p.hostPid, p);
  }
  // PPID inside the container: the parent's in-container pid, 0 when the parent is outside
  for (const p of byHost.values()) p.ppid = byHost.get(Number(p.ppid))?.pid ?? '0';
  return [...byHost.values()].sort((a, b) => Number(a.pid) - Number(b.pid));
}

function bootSeconds(): bigint {
  const m = /^btime\s+(\d+)$/m.exec(fs.readFileSync('/proc/stat', 'latin1'));
  return BigInt(m?.[1] ?? '0');
}

/** `ps ARGS` inside the container (podman's fallback), without the ps process's own line. */
async function psInContainer(ctx: EngineContext, id: string, descriptors: string[]): Promise<string[]> {
  let out = '';
  let err = '';
  const sink = (add: (s: string) => void) => new Writable({ write(chunk: Buffer, _enc, cb) { add(chunk.toString('utf8')); cb(); } });
  const argv = descriptors.flatMap((d) => d.split(/\s+/).filter((s) => s !== ''));
  const code = await execInContainer(ctx, { container: id, command: ['ps', ...argv] }, { stdout: sink((s) => (out += s)), stderr: sink((s) => (err += s)) });
  if (code !== 0) throw new KilnError('E_RUNTIME', `executing ps(1) in the container: exit status ${code}${err.trim() ? `: ${err.trim()}` : ''}`);
  const own = descriptors.join(' ');
  return out.split('\n').filter((l) => l !== '' && !l.includes(own));
}

/**
 * The processes of running container `ref` under `descriptors` (DEFAULT_DESCRIPTORS when
 * empty): a header and one row per process, or, when a descriptor is unknown, the lines of
 * `ps DESCRIPTORS` run in the container.
 */
export async function containerTop(ctx: EngineContext, ref: string, descriptors: string[] = []): Promise<TopResult> {
  const c = await lookup(ctx, ref);
  if (c.state.status !== 'running' || c.state.pid === undefined) throw new KilnError('E_CONTAINER_STATE', 'top can only be used on running containers');
  const wanted = descriptors.flatMap((d) => d.split(',')).map((d) => d.trim()).filter((d) => d !== '');
  const chosen = (wanted.length > 0 ? wanted : DEFAULT_DESCRIPTORS).map((d) => DESCRIPTORS.find((x) => x.code === d || x.normal === d));
  if (chosen.some((d) => d === undefined)) return { lines: await psInContainer(ctx, c.id, descriptors) };
  const rootfs = mergedDir(ctx.store, c.id);
  const read = (root: string, file: string) => {
    try {
      return root === '/' ? fs.readFileSync(file, 'utf8') : readFileInRoot(root, file)?.toString('utf8');
    } catch {
      return undefined;
    }
  };
  const tc: Ctx = {
    container: { users: idNames(read(rootfs, '/etc/passwd')), groups: idNames(read(rootfs, '/etc/group')) },
    host: { users: idNames(read('/', '/etc/passwd')), groups: idNames(read('/', '/etc/group')) },
    bootSecs: bootSeconds(),
    nowNs: BigInt(Math.round((performance.timeOrigin + performance.now()) * 1e6)),
  };
  const procs = containerProcesses(c.state.pid);
  const defs = chosen as NonNullable<(typeof chosen)[number]>[];
  return { header: defs.map((d) => d.header), rows: procs.map((p) => defs.map((d) => d.fn(p, tc))) };
}
