/**
 * The OCI bundle of a container (podman's userdata dir): config.json from the container's
 * config (container/types.ts) over the mounted rootfs, and the files kiln bind-mounts into it:
 * /etc/hosts, /etc/hostname, /etc/resolv.conf, and with --init catatonit at /run/podman-init.
 * Pure apart from reading the rootfs's /etc/passwd and /etc/group and writing the bundle.
 *
 * podman 4.3's defaults: its 14 default capabilities, the containers-common seccomp profile,
 * the masked and read-only paths of runtime/spec.ts, a pids limit of 2048, rlimits clamped to
 * what this host allows (runtime/spec.ts clampRlimits). --privileged: every capability, no
 * seccomp, no masked or read-only paths, /sys read-write.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import { buildSpec, capName, resolveUser, writeSpec, type MountRequest, type OciSpec } from '../runtime/spec';
import { readFileInRoot } from '../runtime/securejoin';
import { seccompForSecurityOpt } from '../runtime/seccomp';
import type { ContainerRecord } from './types';

/** podman 4.3.1's default capabilities (containers.conf default_capabilities of that release). */
export const RUN_CAPABILITIES: readonly string[] = [
  'CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_MKNOD',
  'CAP_NET_BIND_SERVICE', 'CAP_NET_RAW', 'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

/** Every capability name this kernel knows (/proc/sys/kernel/cap_last_cap), by bit. */
function knownCapabilities(): string[] {
  const NAMES = ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
    'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE',
    'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE',
    'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
    'CHECKPOINT_RESTORE'];
  let last = NAMES.length - 1;
  try {
    last = Math.min(last, Number(fs.readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim()));
  } catch {
    /* keep them all */
  }
  return NAMES.slice(0, last + 1).map((n) => `CAP_${n}`);
}

/**
 * What --privileged and --cap-add ALL give: every capability in kiln's own bounding set (as
 * podman does; a capability the host withholds cannot be granted, and asking fails the start).
 */
export function allCapabilities(): string[] {
  const known = knownCapabilities();
  let bnd: bigint | undefined;
  try {
    const m = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (m) bnd = BigInt(`0x${m[1]}`);
  } catch {
    /* no /proc: assume all */
  }
  return known.filter((_n, bit) => bnd === undefined || ((bnd >> BigInt(bit)) & 1n) === 1n);
}

/** capName, with the flag named in its error. */
function flagCap(flag: string, value: string): string {
  try {
    return capName(value);
  } catch {
    throw new KilnError('E_INVALID_ARGUMENT', `${flag} ${JSON.stringify(value)}: not a capability name`);
  }
}

/** podman's rule: start from the defaults (or all with --privileged), add, then drop; ALL works both ways. */
export function effectiveCapabilities(c: ContainerRecord['config']): string[] {
  const all = allCapabilities();
  const known = knownCapabilities();
  let caps = new Set(c.privileged ? all : RUN_CAPABILITIES.filter((n) => all.includes(n)));
  for (const a of c.capAdd.map((x) => flagCap('--cap-add', x))) {
    if (a === 'CAP_ALL') caps = new Set(all);
    else if (!known.includes(a)) throw new KilnError('E_INVALID_ARGUMENT', `--cap-add ${a}: unknown capability`);
    else if (!all.includes(a)) throw new KilnError('E_INVALID_ARGUMENT', `--cap-add ${a}: this host does not grant it to kiln (not in its bounding set)`);
    else caps.add(a);
  }
  for (const d of c.capDrop.map((x) => flagCap('--cap-drop', x))) {
    if (d === 'CAP_ALL') caps.clear();
    else if (!known.includes(d)) throw new KilnError('E_INVALID_ARGUMENT', `--cap-drop ${d}: unknown capability`);
    else caps.delete(d);
  }
  return [...caps].sort();
}

/** The home directory of `uid` in the rootfs's /etc/passwd, '/' when it has none. */
function homeOf(rootfs: string, uid: number): string {
  const data = readFileInRoot(rootfs, '/etc/passwd');
  for (const line of (data?.toString('utf8') ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length >= 7 && Number(f[2]) === uid && f[5]) return f[5];
  }
  return '/';
}

function hostsFile(c: ContainerRecord): string {
  if (c.config.network === 'host') {
    try {
      return fs.readFileSync('/etc/hosts', 'utf8');
    } catch {
      /* fall through to the container's own */
    }
  }
  return [
    '127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4',
    '::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6',
    `127.0.1.1\t${c.config.hostname} ${c.name}`,
    '',
  ].join('\n');
}

function resolvConf(): string {
  try {
    return fs.readFileSync('/etc/resolv.conf', 'utf8');
  } catch {
    return '';
  }
}

/** What spec.ts needs besides the record: the mounted rootfs and each named volume's host path. */
export interface BundleInputs {
  rootfs: string;
  volumePaths: Map<string, string>;
  /** catatonit for --init */
  initPath?: string;
}

/** Writes the bundle (config.json and the /etc files) and returns the spec. */
export function writeBundle(bundle: string, c: ContainerRecord, inputs: BundleInputs): OciSpec {
  const cfg = c.config;
  const user = resolveUser(inputs.rootfs, cfg.user);
  fs.writeFileSync(path.join(bundle, 'hosts'), hostsFile(c));
  fs.writeFileSync(path.join(bundle, 'hostname'), `${cfg.hostname}\n`);
  fs.writeFileSync(path.join(bundle, 'resolv.conf'), resolvConf());
  const mounts: MountRequest[] = [
    { type: 'bind', source: path.join(bundle, 'hosts'), destination: '/etc/hosts' },
    { type: 'bind', source: path.join(bundle, 'hostname'), destination: '/etc/hostname' },
    { type: 'bind', source: path.join(bundle, 'resolv.conf'), destination: '/etc/resolv.conf' },
  ];
  for (const v of cfg.volumes) {
    const src = inputs.volumePaths.get(v.volume);
    if (src === undefined) throw new KilnError('E_INTERNAL', `volume ${v.volume} of container ${c.id.slice(0, 12)} has no path`);
    mounts.push({ type: 'bind', source: src, destination: v.destination, readonly: v.readonly });
  }
  mounts.push(...cfg.mounts);
  let args = [...cfg.entrypoint, ...cfg.cmd];
  if (args.length === 0) throw new KilnError('E_INVALID_ARGUMENT', 'no command specified: the image has no CMD or ENTRYPOINT; give one after the image name');
  if (cfg.init) {
    if (!inputs.initPath) throw new KilnError('E_INVALID_ARGUMENT', '--init: catatonit is not installed', { hint: 'apt-get install catatonit' });
    mounts.push({ type: 'bind', source: inputs.initPath, destination: '/run/podman-init', readonly: true });
    args = ['/run/podman-init', '--', ...args];
  }
  const env = [...cfg.env];
  const has = (k: string) => env.some((e) => e.startsWith(`${k}=`));
  if (!has('TERM') && cfg.tty) env.push('TERM=xterm');
  if (!has('container')) env.push('container=kiln');
  if (!has('HOME')) env.push(`HOME=${homeOf(inputs.rootfs, user.uid)}`);
  if (!has('HOSTNAME')) env.push(`HOSTNAME=${cfg.hostname}`);
  const capabilities = effectiveCapabilities(cfg);
  const resources: Record<string, unknown> = {};
  if (cfg.memory !== undefined) resources.memory = { limit: cfg.memory };
  if (cfg.cpus !== undefined) resources.cpu = { quota: Math.round(cfg.cpus * 100_000), period: 100_000 };
  const pids = cfg.pidsLimit ?? 2048;
  if (pids > 0) resources.pids = { limit: pids };
  const spec = buildSpec({
    rootfs: inputs.rootfs,
    args,
    env,
    cwd: cfg.workdir || '/',
    user,
    hostname: cfg.hostname,
    network: cfg.network,
    mounts,
    capabilities,
    noNewPrivileges: cfg.noNewPrivileges,
    readonlyRootfs: cfg.readOnly,
    resources,
    cgroupsPath: `/kiln/${c.id}`,
    annotations: { 'io.kiln.container.name': c.name },
  });
  spec.process.terminal = cfg.tty;
  const linux = spec.linux;
  const seccomp = cfg.privileged ? undefined : seccompForSecurityOpt(cfg.seccomp === 'default' ? undefined : cfg.seccomp, capabilities);
  if (seccomp) linux.seccomp = seccomp;
  if (cfg.privileged) {
    delete linux.maskedPaths;
    delete linux.readonlyPaths;
    for (const m of spec.mounts) if (m.destination === '/sys' && m.options) m.options = m.options.filter((o) => o !== 'ro' && o !== 'rro');
  }
  writeSpec(bundle, spec);
  return spec;
}
