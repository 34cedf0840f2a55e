/**
 * The seccomp profile of `kiln run` against the real containers-common profile
 * (/usr/share/containers/seccomp.json): capability and arch gating, podman 4.3 as the oracle
 * for the converted object, a hand-written profile for includes/excludes/minKernel, bad input,
 * and runc enforcing the result inside a busybox container.
 *
 * Note: containers-common's profile is not Docker's. It allows mount, umount2, unshare, setns
 * and ptrace to everyone (podman relies on capabilities and user namespaces for those); what
 * it gates on CAP_SYS_ADMIN is bpf, fanotify_init, lookup_dcookie, perf_event_open, quotactl,
 * setdomainname, sethostname (and setns a second time), on CAP_SYS_PTRACE kcmp and
 * process_madvise.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { podmanIn, requireTool } from './helpers/env';
import { defaultSeccompProfilePath, loadSeccompProfile, ociSeccomp, seccompForSecurityOpt, type OciSeccomp } from '../src/runtime/seccomp';
import { buildSpec, writeSpec } from '../src/runtime/spec';
import { RuncRuntime } from '../src/runtime/runc';
import { isKilnError } from '../src/errors';
import { sink } from './helpers/sink';

/** podman 4.3's default capability set (containers.conf of containers-common 0.50). */
const PODMAN_CAPS = [
  'CAP_AUDIT_WRITE', 'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_MKNOD', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_RAW', 'CAP_SETFCAP', 'CAP_SETGID', 'CAP_SETPCAP', 'CAP_SETUID', 'CAP_SYS_CHROOT',
];

let dir: string;
let rootfs: string;

before(() => {
  assert.ok(fs.existsSync(defaultSeccompProfilePath), `${defaultSeccompProfilePath} is missing; install it with: apt-get install -y golang-github-containers-common`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-seccomp-'));
  // A static busybox is the whole rootfs: /bin/busybox plus applet symlinks.
  const busybox = requireTool('busybox', 'busybox-static');
  rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.copyFileSync(fs.realpathSync(busybox), path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const a of ['sh', 'true', 'echo', 'id', 'ls', 'cat', 'grep', 'hostname', 'unshare']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', a));
  for (const d of ['proc', 'sys', 'dev', 'tmp', 'etc']) fs.mkdirSync(path.join(rootfs, d));
});

after(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

const amd64 = (caps: readonly string[]) => ociSeccomp(loadSeccompProfile(defaultSeccompProfilePath), { capabilities: caps, arch: 'x64', kernel: '6.1.0-18-amd64' });

/** The [action, errnoRet] of every entry that names `name`, in order. */
function rulesFor(s: OciSeccomp, name: string): [string, number | undefined][] {
  return s.syscalls.filter((c) => c.names.includes(name)).map((c) => [c.action, c.errnoRet]);
}

const ALLOW: [string, undefined] = ['SCMP_ACT_ALLOW', undefined];
const EPERM: [string, number] = ['SCMP_ACT_ERRNO', 1];

test('default profile: defaults and architectures are copied for x86_64', () => {
  const s = amd64(PODMAN_CAPS);
  assert.equal(s.defaultAction, 'SCMP_ACT_ERRNO');
  assert.equal(s.defaultErrnoRet, 38, 'ENOSYS for syscalls the profile does not know');
  assert.deepEqual(s.architectures, ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32']);
  for (const c of s.syscalls) assert.deepEqual(Object.keys(c).filter((k) => !['names', 'action', 'errnoRet', 'args'].includes(k)), [], 'only OCI fields');
  assert.deepEqual(rulesFor(s, 'read'), [ALLOW]);
  assert.deepEqual(rulesFor(s, 'kexec_load'), [EPERM], 'an unconditional ERRNO entry');
});

test('default profile: CAP_SYS_ADMIN-gated syscalls are allowed only with CAP_SYS_ADMIN', () => {
  const without = amd64(PODMAN_CAPS);
  const withAdmin = amd64([...PODMAN_CAPS, 'CAP_SYS_ADMIN']);
  for (const name of ['bpf', 'perf_event_open', 'quotactl', 'sethostname', 'setdomainname', 'fanotify_init', 'lookup_dcookie']) {
    assert.deepEqual(rulesFor(without, name), [EPERM], `${name} without CAP_SYS_ADMIN`);
    assert.deepEqual(rulesFor(withAdmin, name), [ALLOW], `${name} with CAP_SYS_ADMIN`);
  }
  // setns is in the general allow list and in the gated pair as well
  assert.deepEqual(rulesFor(without, 'setns'), [ALLOW, EPERM]);
  assert.deepEqual(rulesFor(withAdmin, 'setns'), [ALLOW, ALLOW]);
  for (const name of ['mount', 'umount2', 'unshare', 'clone']) {
    assert.deepEqual(rulesFor(without, name), [ALLOW], `${name}: containers-common allows it to all`);
    assert.deepEqual(rulesFor(withAdmin, name), [ALLOW]);
  }
});

test('default profile: ptrace family, chroot, audit socket and the other capability pairs', () => {
  const base = amd64(PODMAN_CAPS);
  const ptrace = amd64([...PODMAN_CAPS, 'SYS_PTRACE']);
  for (const name of ['kcmp', 'process_madvise']) {
    assert.deepEqual(rulesFor(base, name), [EPERM], name);
    assert.deepEqual(rulesFor(ptrace, name), [ALLOW], `${name} with SYS_PTRACE (prefix optional)`);
  }
  for (const name of ['ptrace', 'process_vm_readv', 'process_vm_writev']) assert.deepEqual(rulesFor(base, name), [ALLOW], name);
  assert.deepEqual(rulesFor(base, 'chroot'), [ALLOW]);
  assert.deepEqual(rulesFor(amd64(['CAP_CHOWN']), 'chroot'), [EPERM], 'chroot is denied without CAP_SYS_CHROOT');
  assert.deepEqual(rulesFor(base, 'open_by_handle_at'), [EPERM]);
  assert.deepEqual(rulesFor(amd64([...PODMAN_CAPS, 'CAP_DAC_READ_SEARCH']), 'open_by_handle_at'), [ALLOW]);
  for (const [cap, name] of [['CAP_SYS_MODULE', 'init_module'], ['CAP_SYS_PACCT', 'acct'], ['CAP_SYS_RAWIO', 'iopl'], ['CAP_SYS_TIME', 'settimeofday'], ['CAP_SYS_TTY_CONFIG', 'vhangup']] as const) {
    assert.deepEqual(rulesFor(base, name), [EPERM], name);
    assert.deepEqual(rulesFor(amd64([...PODMAN_CAPS, cap]), name), [ALLOW], `${name} with ${cap}`);
  }
  // socket: with CAP_AUDIT_WRITE one plain ALLOW; without it, netlink-audit sockets are refused by argument rules
  assert.deepEqual(base.syscalls.filter((c) => c.names.includes('socket')), [{ names: ['socket'], action: 'SCMP_ACT_ALLOW' }]);
  const noAudit = amd64(PODMAN_CAPS.filter((c) => c !== 'CAP_AUDIT_WRITE')).syscalls.filter((c) => c.names.includes('socket'));
  assert.deepEqual(noAudit[0], {
    names: ['socket'], action: 'SCMP_ACT_ERRNO', errnoRet: 22,
    args: [{ index: 0, value: 16, op: 'SCMP_CMP_EQ' }, { index: 2, value: 9, op: 'SCMP_CMP_EQ' }],
  });
  assert.equal(noAudit.length, 4);
  assert.deepEqual(base.syscalls.find((c) => c.names[0] === 'personality' && c.args?.[0]?.value === 4294967295)?.args, [{ index: 0, value: 4294967295, op: 'SCMP_CMP_EQ' }]);
});

test('default profile: arch-specific entries follow the host arch', () => {
  const x = amd64(PODMAN_CAPS);
  for (const name of ['arch_prctl', 'modify_ldt']) assert.deepEqual(rulesFor(x, name), [ALLOW], name);
  for (const name of ['arm_fadvise64_64', 'set_tls', 'cacheflush', 'sync_file_range2', 's390_pci_mmio_read', 's390_runtime_instr']) assert.deepEqual(rulesFor(x, name), [], `${name} is not for amd64`);

  const prof = loadSeccompProfile(defaultSeccompProfilePath);
  const arm = ociSeccomp(prof, { capabilities: PODMAN_CAPS, arch: 'arm64' });
  assert.deepEqual(arm.architectures, ['SCMP_ARCH_AARCH64', 'SCMP_ARCH_ARM']);
  assert.deepEqual(rulesFor(arm, 'set_tls'), [ALLOW]);
  assert.deepEqual(rulesFor(arm, 'arch_prctl'), []);
  const s390 = ociSeccomp(prof, { capabilities: PODMAN_CAPS, arch: 's390x' });
  assert.deepEqual(s390.architectures, ['SCMP_ARCH_S390X', 'SCMP_ARCH_S390']);
  assert.deepEqual(rulesFor(s390, 's390_pci_mmio_write'), [ALLOW]);
  assert.deepEqual(ociSeccomp(prof, { capabilities: [], arch: 'riscv64' }).architectures, [], 'no archMap entry: left to the runtime');
  assert.deepEqual(ociSeccomp(prof, { capabilities: PODMAN_CAPS }), ociSeccomp(prof, { capabilities: PODMAN_CAPS, arch: process.arch, kernel: os.release() }), 'defaults are this host');
});

test('default profile: the same linux.seccomp as podman writes for its containers', () => {
  requireTool('runc');
  const pd = fs.mkdtempSync(path.join(dir, 'podman-'));
  // podman may add mount points to a --rootfs: it gets its own copy
  const podRootfs = path.join(pd, 'rootfs');
  fs.cpSync(rootfs, podRootfs, { recursive: true, verbatimSymlinks: true });
  const podman = podmanIn(pd);
  try {
    for (const extra of [[], ['--cap-add', 'SYS_ADMIN,SYS_PTRACE', '--cap-drop', 'AUDIT_WRITE,SYS_CHROOT']]) {
      const id = podman.run(['create', ...extra, '--rootfs', podRootfs, 'true']).trim();
      podman.run(['init', id]);
      const configPath = podman.run(['inspect', '--format', '{{.OCIConfigPath}}', id]).trim();
      const spec = JSON.parse(fs.readFileSync(configPath, 'utf8'));
      const caps: string[] = spec.process.capabilities.bounding;
      if (extra.length === 0) assert.deepEqual([...caps].sort(), [...PODMAN_CAPS].sort(), "podman 4.3's default capabilities");
      // podman reads the profile with the host's arch and kernel, as ociSeccomp does by default
      assert.deepEqual(ociSeccomp(loadSeccompProfile(defaultSeccompProfilePath), { capabilities: caps }), dropNulls(spec.linux.seccomp), `caps ${caps.join(',')}`);
      podman.run(['rm', '--force', id]);
    }
  } finally {
    podman.cleanup();
  }
});

function dropNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(dropNulls);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).filter(([, x]) => x !== null && x !== undefined).map(([k, x]) => [k, dropNulls(x)]));
  return v;
}

function writeProfile(name: string, json: unknown): string {
  const f = path.join(dir, name);
  fs.writeFileSync(f, typeof json === 'string' ? json : JSON.stringify(json));
  return f;
}

test('hand-written profile: includes, excludes and minKernel', () => {
  const file = writeProfile('small.json', {
    defaultAction: 'SCMP_ACT_KILL_PROCESS',
    architectures: ['SCMP_ARCH_X86_64'],
    flags: ['SECCOMP_FILTER_FLAG_LOG'],
    syscalls: [
      { name: 'single', action: 'SCMP_ACT_ALLOW' },
      { names: ['both-caps'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_NET_ADMIN', 'CAP_SYS_ADMIN'] } },
      { names: ['not-if-any'], action: 'SCMP_ACT_ERRNO', errnoRet: 13, excludes: { caps: ['CAP_NET_ADMIN', 'CAP_BPF'] } },
      { names: ['on-amd64'], action: 'SCMP_ACT_ALLOW', includes: { arches: ['amd64', 'x32'] } },
      { names: ['not-on-amd64'], action: 'SCMP_ACT_ALLOW', excludes: { arches: ['amd64'] } },
      { names: ['since-5.10'], action: 'SCMP_ACT_ALLOW', includes: { minKernel: '5.10' } },
      { names: ['before-5.10'], action: 'SCMP_ACT_LOG', excludes: { minKernel: '5.10' } },
      { names: ['cap-and-kernel'], action: 'SCMP_ACT_ALLOW', includes: { caps: ['CAP_SYS_ADMIN'], minKernel: '4.8' }, excludes: { arches: ['s390x'] } },
      { names: ['masked'], action: 'SCMP_ACT_ALLOW', args: [{ index: 1, value: 7, valueTwo: 3, op: 'SCMP_CMP_MASKED_EQ' }, { index: 0, value: 1, valueTwo: 0, op: 'SCMP_CMP_GE' }] },
      { names: [], action: 'SCMP_ACT_ALLOW' },
    ],
  });
  const p = loadSeccompProfile(file);
  const names = (o: Parameters<typeof ociSeccomp>[1]) => ociSeccomp(p, o).syscalls.map((s) => s.names.join());
  assert.deepEqual(names({ capabilities: ['CAP_SYS_ADMIN'], arch: 'x64', kernel: '5.10.0-28-amd64' }), ['single', 'not-if-any', 'on-amd64', 'since-5.10', 'cap-and-kernel', 'masked']);
  assert.deepEqual(names({ capabilities: ['net_admin', 'sys_admin'], arch: 'x64', kernel: '5.9.16' }), ['single', 'both-caps', 'on-amd64', 'before-5.10', 'cap-and-kernel', 'masked']);
  assert.deepEqual(names({ capabilities: ['CAP_SYS_ADMIN'], arch: 's390x', kernel: '4.7.1' }), ['single', 'not-if-any', 'not-on-amd64', 'before-5.10', 'masked']);
  assert.deepEqual(names({ capabilities: ['CAP_SYS_ADMIN'], arch: 'arm64', kernel: '4.8' }), ['single', 'not-if-any', 'not-on-amd64', 'before-5.10', 'cap-and-kernel', 'masked']);
  assert.deepEqual(names({ capabilities: [], arch: 'x64', kernel: '10.0' }), ['single', 'not-if-any', 'on-amd64', 'since-5.10', 'masked'], '10.0 >= 5.10 numerically');

  const s = ociSeccomp(p, { capabilities: [], arch: 'x64', kernel: '6.1' });
  assert.deepEqual({ ...s, syscalls: undefined }, { defaultAction: 'SCMP_ACT_KILL_PROCESS', architectures: ['SCMP_ARCH_X86_64'], flags: ['SECCOMP_FILTER_FLAG_LOG'], syscalls: undefined });
  assert.deepEqual(s.syscalls.find((c) => c.names[0] === 'not-if-any'), { names: ['not-if-any'], action: 'SCMP_ACT_ERRNO', errnoRet: 13 });
  assert.deepEqual(s.syscalls.find((c) => c.names[0] === 'masked')?.args, [{ index: 1, value: 7, valueTwo: 3, op: 'SCMP_CMP_MASKED_EQ' }, { index: 0, value: 1, op: 'SCMP_CMP_GE' }]);
  assert.throws(() => ociSeccomp(p, { capabilities: [], kernel: 'weird' }), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT') && /"weird".*minKernel/.test(e.message));
});

test('bad profiles are E_INVALID_ARGUMENT naming the file and the field', () => {
  const cases: [unknown, RegExp][] = [
    ['{"defaultAction": ', /not valid JSON/],
    [[], /the top level is not a JSON object/],
    [{ syscalls: [] }, /defaultAction is undefined, not one of SCMP_ACT_KILL/],
    [{ defaultAction: 'SCMP_ACT_NOPE' }, /defaultAction is "SCMP_ACT_NOPE"/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', defaultErrnoRet: -1 }, /defaultErrnoRet is -1, not an integer/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: {} }, /syscalls is not a list/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['a'], action: 'ALLOW' }] }, /syscalls\[0\]\.action is "ALLOW"/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW' }, { names: [1], action: 'SCMP_ACT_ALLOW' }] }, /syscalls\[1\]\.names is not a list of strings/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ name: 'a', names: ['b'], action: 'SCMP_ACT_ALLOW' }] }, /syscalls\[0\]\.name and 'names' are both given/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW', args: [{ index: 6, value: 0, op: 'SCMP_CMP_EQ' }] }] }, /syscalls\[0\]\.args\[0\]\.index is not a syscall argument index/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 0, op: 'EQ' }] }] }, /syscalls\[0\]\.args\[0\]\.op is not one of/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 2 ** 60, op: 'SCMP_CMP_EQ' }] }] }, /args\[0\]\.value is \d+, not an integer in 0\.\.2\^53-1/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW', includes: { caps: 'CAP_SYS_ADMIN' } }] }, /syscalls\[0\]\.includes\.caps is not a list of strings/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', syscalls: [{ names: ['a'], action: 'SCMP_ACT_ALLOW', excludes: { minKernel: '5' } }] }, /syscalls\[0\]\.excludes\.minKernel is not a "major\.minor"/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', archMap: [{ architecture: 'x86_64' }] }, /archMap\[0\]\.architecture is not an SCMP_ARCH_\* name/],
    [{ defaultAction: 'SCMP_ACT_ERRNO', architectures: ['SCMP_ARCH_X86'], archMap: [{ architecture: 'SCMP_ARCH_X86_64', subArchitectures: [] }] }, /architectures and 'archMap' are both given/],
  ];
  for (const [i, [json, re]] of cases.entries()) {
    const f = writeProfile(`bad-${i}.json`, json);
    assert.throws(() => loadSeccompProfile(f), (e: unknown) => {
      assert.ok(isKilnError(e, 'E_INVALID_ARGUMENT'), String(e));
      assert.ok(e.message.startsWith(`seccomp profile ${f}: `), e.message);
      assert.match(e.message, re);
      return true;
    });
  }
  const missing = path.join(dir, 'missing.json');
  assert.throws(() => loadSeccompProfile(missing), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT') && e.message === `seccomp profile ${missing}: no such file` && e.hint === undefined);
});

test('a missing default profile says which package installs it', () => {
  requireTool('unshare', 'util-linux');
  // A private mount namespace hides /usr/share/containers for one child process only.
  const mod = path.resolve(__dirname, '..', 'src', 'runtime', 'seccomp.js');
  const js = `const m = require(${JSON.stringify(mod)}); try { m.seccompForSecurityOpt(undefined, []); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, hint: e.hint })); }`;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs tmpfs /usr/share/containers && exec "$0" -e "$1"`, process.execPath, js], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), {
    code: 'E_INVALID_ARGUMENT',
    message: `seccomp profile ${defaultSeccompProfilePath}: no such file`,
    hint: 'apt-get install golang-github-containers-common',
  });
  assert.ok(fs.existsSync(defaultSeccompProfilePath), 'the host file is untouched');
});

test('seccompForSecurityOpt: default, unconfined, a relative path, a missing file', () => {
  assert.deepEqual(seccompForSecurityOpt(undefined, PODMAN_CAPS), ociSeccomp(loadSeccompProfile(defaultSeccompProfilePath), { capabilities: PODMAN_CAPS }));
  assert.equal(seccompForSecurityOpt('unconfined', PODMAN_CAPS), undefined);
  const sub = fs.mkdtempSync(path.join(dir, 'cwd-'));
  fs.writeFileSync(path.join(sub, 'mine.json'), JSON.stringify({ defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['reboot'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] }));
  const cwd = process.cwd();
  process.chdir(sub);
  try {
    assert.deepEqual(seccompForSecurityOpt('mine.json', []), { defaultAction: 'SCMP_ACT_ALLOW', architectures: [], syscalls: [{ names: ['reboot'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] });
    assert.throws(() => seccompForSecurityOpt('nope.json', []), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT') && e.message === `--security-opt seccomp=nope.json: no such file ${path.join(sub, 'nope.json')}`);
  } finally {
    process.chdir(cwd);
  }
  assert.throws(() => seccompForSecurityOpt('', []), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT') && /--security-opt seccomp=: /.test(e.message));
  const bad = writeProfile('bad-opt.json', '{"defaultAction": 1}');
  assert.throws(() => seccompForSecurityOpt(bad, []), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT') && e.message.includes(`seccomp profile ${bad}: defaultAction`));
});


test('runc enforces the default profile: sethostname in a new user+UTS namespace is refused, ordinary commands run', async () => {
  const runc = new RuncRuntime(path.join(dir, 'runc-state'), requireTool('runc'));
  const ids: string[] = [];
  const runIt = async (seccomp: OciSeccomp | undefined, script: string) => {
    const bundle = fs.mkdtempSync(path.join(dir, 'bundle-'));
    const spec = buildSpec({ rootfs, args: ['sh', '-c', script], capabilities: PODMAN_CAPS });
    if (seccomp) spec.linux.seccomp = seccomp;
    writeSpec(bundle, spec);
    const id = `seccomp-${process.pid}-${ids.length}`;
    ids.push(id);
    const out = sink();
    const err = sink();
    const code = await runc.run({ id, bundle, stdout: out, stderr: err });
    return { code, out: out.text(), err: err.text() };
  };
  // Capabilities alone allow it (the new user namespace owns the new UTS namespace); only the
  // profile's CAP_SYS_ADMIN-gated ERRNO rule for sethostname stops it.
  const probe = 'grep ^Seccomp: /proc/self/status; unshare -r -u sh -c "hostname inner && hostname"';
  try {
    const open = await runIt(undefined, probe);
    assert.equal(open.code, 0, open.err);
    assert.equal(open.out, 'Seccomp:\t0\ninner\n', 'without linux.seccomp the call succeeds');

    const filtered = seccompForSecurityOpt(undefined, PODMAN_CAPS);
    const denied = await runIt(filtered, probe);
    assert.equal(denied.out, 'Seccomp:\t2\n', 'a filter is installed');
    assert.notEqual(denied.code, 0);
    assert.match(denied.err, /sethostname: Operation not permitted/);

    const ok = await runIt(filtered, 'echo hello; id -u; ls /bin/busybox; unshare -r -m true && echo unshare-ok');
    assert.equal(ok.code, 0, ok.err);
    assert.equal(ok.out, 'hello\n0\n/bin/busybox\nunshare-ok\n');
  } finally {
    for (const id of ids) await runc.delete(id).catch(() => {});
  }
});
