/**
 * The seccomp filter of a `kiln run` container, as podman applies it: the containers-common
 * profile (Docker/moby seccomp JSON: defaultAction, archMap, syscalls with includes/excludes)
 * is read and validated (loadSeccompProfile), then converted to the OCI runtime spec's
 * `linux.seccomp` for one capability set, architecture and kernel (ociSeccomp), with the
 * rules of containers/common's pkg/seccomp:
 * - a syscalls entry is dropped if the host arch is in excludes.arches, any excludes.caps is in
 *   the capabilities, or the kernel is >= excludes.minKernel; else it is kept only if the arch
 *   is in includes.arches (when given), every includes.caps is in the capabilities and the
 *   kernel is >= includes.minKernel (when given). Arch names there are libseccomp's native
 *   names (amd64, x86, x32, arm, arm64, s390x, ppc64le…); kernels compare "major.minor" only;
 * - architectures = the archMap entry of the host arch and its subArchitectures (or the
 *   legacy top-level `architectures` list; giving both is an error);
 * - names, action, errnoRet and args (index, value, valueTwo, op) are copied; an empty args
 *   list, a null errnoRet and a zero valueTwo are left out, as podman 4.3 writes them. The
 *   `errno`/`defaultErrno` names are ignored like podman 4.3 does: only the numbers count.
 * seccompForSecurityOpt() maps podman's `--security-opt seccomp=…` onto these.
 * Every error is E_INVALID_ARGUMENT naming the file and the field (or the flag) at fault.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KilnError } from '../errors';

export const defaultSeccompProfilePath = '/usr/share/containers/seccomp.json';

export interface SeccompFilter { caps?: string[]; arches?: string[]; /** "major.minor" */ minKernel?: string }
export interface SeccompArg { index: number; value: number; valueTwo?: number; op: string }
export interface SeccompRule {
  /** `name` of the file format is folded in here */
  names: string[];
  action: string;
  errnoRet?: number;
  args?: SeccompArg[];
  includes?: SeccompFilter;
  excludes?: SeccompFilter;
}
/** A validated profile file (containers-common/moby format). */
export interface SeccompProfileFile {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  archMap?: { architecture: string; subArchitectures: string[] }[];
  flags?: string[];
  syscalls: SeccompRule[];
}

export interface OciSeccompSyscall { names: string[]; action: string; errnoRet?: number; args?: SeccompArg[] }
/** The OCI runtime spec's `linux.seccomp`. */
export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  flags?: string[];
  syscalls: OciSeccompSyscall[];
}

const ACTIONS = new Set(['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY']);
const OPS = new Set(['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ']);

/** Node's process.arch → libseccomp's native arch name (the names includes/excludes.arches use). */
const NODE_ARCH: Record<string, string> = { x64: 'amd64', ia32: 'x86', arm: 'arm', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', s390: 's390', riscv64: 'riscv64', mips: 'mips', mipsel: 'mipsel', loong64: 'loong64' };
/** native arch name → the SCMP_ARCH_* its archMap entry is keyed by */
const SCMP_ARCH: Record<string, string> = {
  amd64: 'SCMP_ARCH_X86_64', x86: 'SCMP_ARCH_X86', x32: 'SCMP_ARCH_X32', arm: 'SCMP_ARCH_ARM', arm64: 'SCMP_ARCH_AARCH64',
  mips: 'SCMP_ARCH_MIPS', mipsel: 'SCMP_ARCH_MIPSEL', mips64: 'SCMP_ARCH_MIPS64', mipsel64: 'SCMP_ARCH_MIPSEL64',
  ppc64le: 'SCMP_ARCH_PPC64LE', s390: 'SCMP_ARCH_S390', s390x: 'SCMP_ARCH_S390X', riscv64: 'SCMP_ARCH_RISCV64', loong64: 'SCMP_ARCH_LOONGARCH64',
};

/**
 * Reads and validates a profile. Throws E_INVALID_ARGUMENT naming `file` and the bad field
 * (e.g. `syscalls[3].includes.caps`) for unreadable files, bad JSON or a wrong shape; a missing
 * default profile carries the hint to install containers-common.
 */
export function loadSeccompProfile(file: string): SeccompProfileFile {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const hint = err.code === 'ENOENT' && path.resolve(file) === defaultSeccompProfilePath ? { hint: 'apt-get install golang-github-containers-common' } : {};
    throw new KilnError('E_INVALID_ARGUMENT', `seccomp profile ${file}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`, { ...hint, cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new KilnError('E_INVALID_ARGUMENT', `seccomp profile ${file}: not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return validate(json, (field, msg) => new KilnError('E_INVALID_ARGUMENT', `seccomp profile ${file}: ${field} ${msg}`));
}

type Bad = (field: string, msg: string) => KilnError;

function validate(j: unknown, bad: Bad): SeccompProfileFile {
  const o = obj(j, 'the top level', bad);
  const out: SeccompProfileFile = { defaultAction: action(o.defaultAction, 'defaultAction', bad), syscalls: [] };
  const der = optUint(o.defaultErrnoRet, 'defaultErrnoRet', bad);
  if (der !== undefined) out.defaultErrnoRet = der;
  const archs = optStrings(o.architectures, 'architectures', bad, /^SCMP_ARCH_[A-Z0-9_]+$/);
  if (archs?.length) out.architectures = archs;
  const flags = optStrings(o.flags, 'flags', bad);
  if (flags?.length) out.flags = flags;
  if (o.archMap !== undefined && o.archMap !== null) {
    if (!Array.isArray(o.archMap)) throw bad('archMap', 'is not a list');
    out.archMap = o.archMap.map((m, i) => {
      const f = `archMap[${i}]`;
      const e = obj(m, f, bad);
      const architecture = e.architecture;
      if (typeof architecture !== 'string' || !/^SCMP_ARCH_[A-Z0-9_]+$/.test(architecture)) throw bad(`${f}.architecture`, 'is not an SCMP_ARCH_* name');
      return { architecture, subArchitectures: optStrings(e.subArchitectures, `${f}.subArchitectures`, bad, /^SCMP_ARCH_[A-Z0-9_]+$/) ?? [] };
    });
    if (out.archMap.length && out.architectures) throw bad('architectures', "and 'archMap' are both given: use one of them");
  }
  if (o.syscalls !== undefined && o.syscalls !== null && !Array.isArray(o.syscalls)) throw bad('syscalls', 'is not a list');
  for (const [i, s] of ((o.syscalls ?? []) as unknown[]).entries()) out.syscalls.push(rule(s, `syscalls[${i}]`, bad));
  return out;
}

function rule(j: unknown, f: string, bad: Bad): SeccompRule {
  const e = obj(j, f, bad);
  const names = optStrings(e.names, `${f}.names`, bad) ?? [];
  if (e.name !== undefined && e.name !== null && e.name !== '') {
    if (typeof e.name !== 'string') throw bad(`${f}.name`, 'is not a string');
    if (names.length) throw bad(`${f}.name`, "and 'names' are both given: use one of them");
    names.push(e.name);
  }
  const r: SeccompRule = { names, action: action(e.action, `${f}.action`, bad) };
  const errnoRet = optUint(e.errnoRet, `${f}.errnoRet`, bad);
  if (errnoRet !== undefined) r.errnoRet = errnoRet;
  if (e.args !== undefined && e.args !== null) {
    if (!Array.isArray(e.args)) throw bad(`${f}.args`, 'is not a list');
    r.args = e.args.map((a, k) => {
      const af = `${f}.args[${k}]`;
      const ao = obj(a, af, bad);
      const index = optUint(ao.index, `${af}.index`, bad);
      if (index === undefined || index > 5) throw bad(`${af}.index`, 'is not a syscall argument index 0..5');
      if (typeof ao.op !== 'string' || !OPS.has(ao.op)) throw bad(`${af}.op`, `is not one of ${[...OPS].join(', ')}`);
      const arg: SeccompArg = { index, value: optUint(ao.value, `${af}.value`, bad) ?? 0, op: ao.op };
      const v2 = optUint(ao.valueTwo, `${af}.valueTwo`, bad);
      if (v2) arg.valueTwo = v2;
      return arg;
    });
  }
  for (const k of ['includes', 'excludes'] as const) {
    if (e[k] === undefined || e[k] === null) continue;
    const fo = obj(e[k], `${f}.${k}`, bad);
    const filter: SeccompFilter = {};
    const caps = optStrings(fo.caps, `${f}.${k}.caps`, bad);
    if (caps?.length) filter.caps = caps;
    const arches = optStrings(fo.arches, `${f}.${k}.arches`, bad);
    if (arches?.length) filter.arches = arches;
    if (fo.minKernel !== undefined && fo.minKernel !== null) {
      if (typeof fo.minKernel !== 'string' || !/^\d+\.\d+$/.test(fo.minKernel)) throw bad(`${f}.${k}.minKernel`, 'is not a "major.minor" kernel version such as "4.8"');
      filter.minKernel = fo.minKernel;
    }
    r[k] = filter;
  }
  return r;
}

function obj(j: unknown, f: string, bad: Bad): Record<string, unknown> {
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw bad(f, 'is not a JSON object');
  return j as Record<string, unknown>;
}

function action(v: unknown, f: string, bad: Bad): string {
  if (typeof v !== 'string' || !ACTIONS.has(v)) throw bad(f, `is ${JSON.stringify(v)}, not one of ${[...ACTIONS].join(', ')}`);
  return v;
}

/** JSON numbers beyond 2^53 lose precision in JavaScript: refused rather than silently changed. */
function optUint(v: unknown, f: string, bad: Bad): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(f, `is ${JSON.stringify(v)}, not an integer in 0..2^53-1`);
  return v;
}

function optStrings(v: unknown, f: string, bad: Bad, re?: RegExp): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || (re !== undefined && !re.test(s)))) throw bad(f, re ? `is not a list of names matching ${re}` : 'is not a list of strings');
  return [...(v as string[])];
}

/** [major, minor] of a kernel release such as "6.1.0-18-amd64"; undefined if it has no such prefix. */
function kernelVersion(release: string): [number, number] | undefined {
  const m = /^(\d+)\.(\d+)/.exec(release);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/**
 * Converts `profile` to `linux.seccomp` for a container with `capabilities` (its bounding set;
 * names with or without CAP_) on `arch` (Node's process.arch name, or a libseccomp name such as
 * amd64) and kernel release `kernel`. Pure; throws E_INVALID_ARGUMENT only if an entry needs
 * the kernel version and `kernel` has no "major.minor" prefix.
 */
export function ociSeccomp(profile: SeccompProfileFile, opts: { capabilities: readonly string[]; arch?: string; kernel?: string }): OciSeccomp {
  const nodeArch = opts.arch ?? process.arch;
  const arch = NODE_ARCH[nodeArch] ?? nodeArch;
  const caps = new Set(opts.capabilities.map((c) => (c.toUpperCase().startsWith('CAP_') ? c.toUpperCase() : `CAP_${c.toUpperCase()}`)));
  const release = opts.kernel ?? os.release();
  const atLeast = (min: string): boolean => {
    const k = kernelVersion(release);
    if (!k) throw new KilnError('E_INVALID_ARGUMENT', `seccomp: kernel release ${JSON.stringify(release)} has no major.minor version to compare with minKernel ${min}`);
    const [maj, minr] = min.split('.').map(Number) as [number, number];
    return k[0] > maj || (k[0] === maj && k[1] >= minr);
  };

  let architectures = [...(profile.architectures ?? [])];
  const own = profile.archMap?.find((m) => m.architecture === SCMP_ARCH[arch]);
  if (own) architectures = [own.architecture, ...own.subArchitectures];

  const out: OciSeccomp = { defaultAction: profile.defaultAction, architectures, syscalls: [] };
  if (profile.defaultErrnoRet !== undefined) out.defaultErrnoRet = profile.defaultErrnoRet;
  if (profile.flags?.length) out.flags = [...profile.flags];
  for (const r of profile.syscalls) {
    const ex = r.excludes;
    if (ex?.arches?.includes(arch) || ex?.caps?.some((c) => caps.has(c)) || (ex?.minKernel !== undefined && atLeast(ex.minKernel))) continue;
    const inc = r.includes;
    if (inc?.arches && !inc.arches.includes(arch)) continue;
    if (inc?.caps && !inc.caps.every((c) => caps.has(c))) continue;
    if (inc?.minKernel !== undefined && !atLeast(inc.minKernel)) continue;
    if (r.names.length === 0) continue;
    const s: OciSeccompSyscall = { names: [...r.names], action: r.action };
    if (r.errnoRet !== undefined) s.errnoRet = r.errnoRet;
    if (r.args?.length) s.args = r.args.map((a) => ({ ...a }));
    out.syscalls.push(s);
  }
  return out;
}

/**
 * `linux.seccomp` for podman's `--security-opt seccomp=VALUE`: no value = the default profile
 * (defaultSeccompProfilePath), 'unconfined' = undefined (no filter), anything else = the path
 * of a profile in the same format, relative to the current directory. A missing or unreadable
 * file is E_INVALID_ARGUMENT naming the flag; a bad profile names the file and field.
 */
export function seccompForSecurityOpt(value: string | undefined, capabilities: readonly string[]): OciSeccomp | undefined {
  if (value === undefined) return ociSeccomp(loadSeccompProfile(defaultSeccompProfilePath), { capabilities });
  if (value === 'unconfined') return undefined;
  const flag = `--security-opt seccomp=${value}`;
  if (value === '') throw new KilnError('E_INVALID_ARGUMENT', `${flag}: give a profile path or "unconfined"`);
  const file = path.resolve(value);
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new KilnError('E_INVALID_ARGUMENT', `${flag}: ${code === 'ENOENT' ? `no such file ${file}` : `cannot read ${file}: ${(e as Error).message}`}`, { cause: e });
  }
  return ociSeccomp(loadSeccompProfile(file), { capabilities });
}
