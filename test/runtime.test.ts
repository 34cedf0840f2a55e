/**
 * The OCI runtime layer against the real runc (and crun through its hybrid-cgroup workaround)
 * with a real busybox rootfs: output and exit codes come through, a runtime failure is an
 * E_RUNTIME distinct from an exit status, network modes, rlimit clamping, abort, a
 * long-running container's state/exec/kill, and USER resolution inside an untrusted rootfs.
 * Every container lives in a private runtime root that must be empty at the end.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { busyboxTar, requireTool, run } from './helpers/env';
import { buildSpec, clampRlimits, hostHardLimits, resolveUser, writeSpec, DEFAULT_CAPABILITIES, type SpecOptions } from '../src/runtime/spec';
import { secureJoin } from '../src/runtime/securejoin';
import { RuncRuntime, type OciCliRuntime } from '../src/runtime/runc';
import { CrunRuntime } from '../src/runtime/crun';
import { cgroupMode, chooseRuntime, openRuntime } from '../src/runtime/detect';
import { RuntimeStartError, type OciRuntime } from '../src/runtime/types';
import { isKilnError } from '../src/errors';
import { sink } from './helpers/sink';

let dir: string;
let rootfs: string;
let runc: RuncRuntime;
let seq = 0;
const runtimes: OciCliRuntime[] = [];

before(async () => {
  requireTool('runc');
  requireTool('tar');
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-runtime-'));
  rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(rootfs);
  run('tar', ['-x', '-f', await busyboxTar(dir), '-C', rootfs]);
  runc = new RuncRuntime(path.join(dir, 'runc-state'), requireTool('runc'));
  runtimes.push(runc);
});

after(async () => {
  for (const rt of runtimes) for (const id of await rt.list().catch(() => [])) await rt.delete(id);
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A bundle dir with config.json for `opts` (rootfs defaults to the shared busybox one). */
function bundle(opts: Partial<SpecOptions> & { args: string[] }): string {
  const b = fs.mkdtempSync(path.join(dir, 'bundle-'));
  writeSpec(b, buildSpec({ rootfs, ...opts }));
  return b;
}


async function exec(rt: OciRuntime, opts: Partial<SpecOptions> & { args: string[] }, stdin?: Readable) {
  const out = sink();
  const err = sink();
  const code = await rt.run({ id: `t${process.pid}-${++seq}`, bundle: bundle(opts), stdout: out, stderr: err, ...(stdin ? { stdin } : {}) });
  return { code, out: out.text(), err: err.text() };
}

test('run: stdout, stderr and stdin are streamed; exit codes propagate', async () => {
  const r = await exec(runc, { args: ['sh', '-c', 'echo hi; echo oops >&2'] });
  assert.deepEqual(r, { code: 0, out: 'hi\n', err: 'oops\n' });
  assert.equal((await exec(runc, { args: ['sh', '-c', 'exit 3'] })).code, 3);
  assert.equal((await exec(runc, { args: ['sh', '-c', 'exit 1'] })).code, 1, 'a process exiting 1 is not a runtime error');
  assert.equal((await exec(runc, { args: ['cat'] }, Readable.from([Buffer.from('from stdin')]))).out, 'from stdin');
  assert.equal((await exec(runc, { args: ['sh', '-c', 'wc -c < /dev/stdin'] })).out.trim(), '0', 'no stdin = /dev/null');
});

test('run: a missing or unexecutable command is an E_RUNTIME, not exit 1', async () => {
  await assert.rejects(exec(runc, { args: ['nosuchcmd'] }), (e: unknown) => {
    assert.ok(e instanceof RuntimeStartError && isKilnError(e, 'E_RUNTIME'), String(e));
    assert.match(e.message, /^runc: .*"nosuchcmd": executable file not found in \$PATH/);
    assert.equal(e.reason, 'not-found');
    assert.equal(e.exitCode, 127);
    assert.match(e.hint ?? '', /not in the image/);
    return true;
  });
  await assert.rejects(exec(runc, { args: ['/no/such/file'] }), (e: unknown) => e instanceof RuntimeStartError && e.exitCode === 127);
  await assert.rejects(exec(runc, { args: ['/etc'] }), (e: unknown) => e instanceof RuntimeStartError && e.reason === 'not-executable' && e.exitCode === 126);
  await assert.rejects(exec(runc, { args: ['true'], mounts: [{ type: 'bind', source: path.join(dir, 'missing'), destination: '/mnt' }] }), (e: unknown) => {
    assert.ok(e instanceof RuntimeStartError && e.reason === 'other' && e.exitCode === 125, String(e));
    assert.match(e.message, /missing/);
    return true;
  });
});

test('spec: standard mounts, default capabilities, devices, user and hostname are what the process sees', async () => {
  const r = await exec(runc, {
    args: ['sh', '-c', 'grep -E "^Cap(Eff|Bnd)" /proc/self/status; id -u; id -g; id -G; hostname; ls /dev; cat /proc/self/mounts; cat /proc/kcore | wc -c; echo $PATH'],
    user: { uid: 65534, gid: 65534, additionalGids: [4, 7] },
    hostname: 'buildbox',
  });
  assert.equal(r.code, 0, r.err);
  const lines = r.out.split('\n');
  // 11 capabilities of podman's set: bits 0,1,3,4,5,6,7,8,10,18 and 31 = 0x800405fb
  assert.match(r.out, /CapBnd:\s+00000000800405fb/);
  assert.match(r.out, /CapEff:\s+0000000000000000/, 'a non-root process has no effective capabilities');
  assert.deepEqual(lines.slice(2, 6), ['65534', '65534', '65534 4 7', 'buildbox']);
  for (const d of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'shm', 'mqueue']) assert.ok(lines.includes(d), `/dev/${d}`);
  for (const m of [/^proc \/proc proc /m, /^sysfs \/sys sysfs ro,/m, /^shm \/dev\/shm tmpfs /m, /^mqueue \/dev\/mqueue mqueue /m, /^devpts \/dev\/pts devpts /m]) assert.match(r.out, m);
  assert.match(r.out, /^\S+ \/proc\/sys \S+ ro,/m, '/proc/sys is read-only');
  assert.ok(lines.includes('0'), '/proc/kcore is masked');
  assert.ok(lines.includes('/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'), 'default PATH');

  const spec = buildSpec({ rootfs, args: ['true'] });
  assert.equal(spec.ociVersion, '1.0.2');
  assert.deepEqual(spec.process.capabilities?.bounding, [...DEFAULT_CAPABILITIES]);
  assert.equal(spec.linux.resources, undefined, 'no linux.resources unless asked');
  assert.equal(spec.process.terminal, false);
  assert.equal(spec.process.noNewPrivileges, false);
});

test('spec: caller bind (ro/rw) and tmpfs mounts; a caller mount replaces a standard one', async () => {
  const data = fs.mkdtempSync(path.join(dir, 'data-'));
  fs.writeFileSync(path.join(data, 'f'), 'host file\n');
  const rw = fs.mkdtempSync(path.join(dir, 'rw-'));
  const r = await exec(runc, {
    args: ['sh', '-c', 'cat /ro/f; touch /ro/x 2>/dev/null && echo ro-writable; echo written > /rw/y; grep -E " /(scratch|dev/shm) " /proc/self/mounts'],
    mounts: [
      { type: 'bind', source: data, destination: '/ro', readonly: true },
      { type: 'bind', source: rw, destination: '/rw' },
      { type: 'tmpfs', destination: '/scratch', size: 1 << 20 },
      { type: 'tmpfs', destination: '/dev/shm', size: 2 << 20, mode: 0o1777 },
    ],
  });
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^host file\n/);
  assert.doesNotMatch(r.out, /ro-writable/);
  assert.equal(fs.readFileSync(path.join(rw, 'y'), 'utf8'), 'written\n');
  assert.match(r.out, /tmpfs \/scratch tmpfs \S*size=1024k/);
  assert.match(r.out, /tmpfs \/dev\/shm tmpfs \S*size=2048k/);
  assert.equal(r.out.match(/ \/dev\/shm /g)?.length, 1, 'the standard /dev/shm was dropped');
});

test('network none: a new netns with only lo, which the runtime brings up', async () => {
  const r = await exec(runc, { args: ['sh', '-c', 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; cat /sys/class/net/lo/flags'], network: 'none' });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.out.trim().split('\n'), ['lo', '0x9'], 'lo only, IFF_UP|IFF_LOOPBACK');
  const spec = buildSpec({ rootfs, args: ['true'] });
  assert.deepEqual(spec.linux.namespaces, [{ type: 'pid' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'network' }], 'none is the default');
  const joined = buildSpec({ rootfs, args: ['true'], network: { netns: '/run/netns/x' } });
  assert.deepEqual((joined.linux.namespaces as unknown[]).at(-1), { type: 'network', path: '/run/netns/x' });
});

test('network host: the host\'s interfaces; /sys is a recursive read-only bind', async () => {
  const names = (text: string) => text.split('\n').slice(2).map((l) => l.split(':')[0]?.trim()).filter(Boolean).sort();
  const before = names(fs.readFileSync('/proc/net/dev', 'utf8'));
  const r = await exec(runc, { args: ['sh', '-c', 'readlink /proc/self/ns/net; cat /proc/net/dev; echo ---; grep " /sys" /proc/self/mounts'], network: 'host' });
  const after = names(fs.readFileSync('/proc/net/dev', 'utf8'));
  assert.equal(r.code, 0, r.err);
  const [ns, ...rest] = r.out.split('\n');
  assert.equal(ns, fs.readlinkSync('/proc/self/ns/net'), "the host's network namespace");
  const [dev, mounts] = rest.join('\n').split('---\n') as [string, string];
  // other tests may add or remove interfaces meanwhile: compare with what was there throughout
  const stable = before.filter((n) => after.includes(n));
  assert.ok(stable.some((n) => n !== 'lo'), `this test needs a host with more than lo: ${stable}`);
  for (const n of stable) assert.ok(names(dev).includes(n), `the container sees ${n}`);
  const lines = mounts.trim().split('\n');
  assert.match(lines[0] ?? '', /^sysfs \/sys sysfs ro,/);
  // every sysfs and cgroup mount is read-only (runc's own tmpfs holding the v1 hierarchies is not)
  for (const line of lines.filter((l) => / (sysfs|cgroup2?) /.test(l))) assert.match(line, /^\S+ \S+ \S+ ro[,\s]/, `read-only: ${line}`);
  const spec = buildSpec({ rootfs, args: ['true'], network: 'host' });
  assert.equal((spec.linux.namespaces as { type: string }[]).some((n) => n.type === 'network'), false);
  assert.deepEqual(spec.mounts.find((m) => m.destination === '/sys')?.type, 'bind');
});

test('rlimits: a request above the hard limit is clamped and the container starts', async () => {
  const hard = hostHardLimits();
  const nofile = hard.get('RLIMIT_NOFILE') as number;
  assert.ok(Number.isFinite(nofile) && nofile < 1048576, `this host's nofile hard limit is ${nofile}; the test needs it below 1048576`);
  const r = await exec(runc, { args: ['sh', '-c', 'ulimit -n; ulimit -Hn'], rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1048576, hard: 1048576 }] });
  assert.equal(r.code, 0, r.err);
  assert.deepEqual(r.out.trim().split('\n').map(Number), [nofile, nofile]);
  const low = await exec(runc, { args: ['sh', '-c', 'ulimit -n'], rlimits: [{ type: 'nofile', soft: 100, hard: 200 }] });
  assert.equal(low.out.trim(), '100', 'lower limits are kept');
  assert.deepEqual(clampRlimits([{ type: 'nproc', soft: 50, hard: 10 ** 7 }], new Map([['RLIMIT_NPROC', 30]])), [{ type: 'RLIMIT_NPROC', soft: 30, hard: 30 }]);
  assert.throws(() => clampRlimits([{ type: 'RLIMIT_BOGUS', soft: 1, hard: 1 }]), /unknown rlimit/);
  assert.throws(() => clampRlimits([{ type: 'nofile', soft: 5, hard: 1 }]), /soft limit 5 is above the hard limit 1/);
  assert.equal(hostHardLimits('Max open files            1024                 unlimited            files\n').get('RLIMIT_NOFILE'), Infinity);
});

test('abort kills a running container quickly and leaves no runtime state', async () => {
  const ac = new AbortController();
  const id = `abort-${process.pid}`;
  const p = runc.run({ id, bundle: bundle({ args: ['sleep', '100'] }), stdout: 'ignore', stderr: 'ignore', signal: ac.signal });
  await waitFor(async () => (await runc.state(id))?.status === 'running');
  const t0 = Date.now();
  ac.abort();
  await assert.rejects(p, (e: unknown) => isKilnError(e, 'E_RUN_ABORTED'));
  assert.ok(Date.now() - t0 < 3000, `abort took ${Date.now() - t0} ms`);
  assert.deepEqual(await runc.list(), []);
  assert.equal(run('runc', ['--root', runc.stateDir, 'list', '-q']).trim(), '');
  // already aborted: nothing is started
  await assert.rejects(runc.run({ id, bundle: bundle({ args: ['true'] }), stdout: 'ignore', stderr: 'ignore', signal: ac.signal }), (e: unknown) => isKilnError(e, 'E_RUN_ABORTED'));
});

test('a long-running container: state, exec, kill; delete/state of an unknown id', async (t) => {
  const id = `long-${process.pid}`;
  t.after(() => runc.delete(id));
  const b = bundle({ args: ['sleep', '100'] });
  const running = runc.run({ id, bundle: b, stdout: 'ignore', stderr: 'ignore' });
  await waitFor(async () => (await runc.state(id))?.status === 'running');
  const st = await runc.state(id);
  assert.equal(st?.id, id);
  assert.equal(st?.bundle, b);
  assert.ok((st?.pid ?? 0) > 0);

  const out = sink();
  const proc = { user: { uid: 0, gid: 0 }, args: ['sh', '-c', 'echo from exec; cat /proc/1/cmdline | tr "\\0" " "; exit 5'], env: ['PATH=/bin'], cwd: '/' };
  assert.equal(await runc.exec(id, proc, { stdout: out, stderr: 'inherit' }), 5);
  assert.equal(out.text(), 'from exec\nsleep 100 ');
  await assert.rejects(runc.exec(id, { ...proc, args: ['nosuchcmd'] }, { stdout: 'ignore', stderr: 'ignore' }), (e: unknown) => e instanceof RuntimeStartError && e.exitCode === 127);

  await assert.rejects(runc.run({ id, bundle: b, stdout: 'ignore', stderr: 'ignore' }), /already exists/);
  assert.equal((await runc.state(id))?.status, 'running', 'a clashing run() leaves the live container alone');

  await runc.kill(id, 'SIGKILL');
  assert.equal(await running, 137, '128 + SIGKILL');
  assert.equal(await runc.state(id), undefined);
  await runc.delete(id); // gone already: no error
  await assert.rejects(runc.kill(id, 'KILL'), (e: unknown) => isKilnError(e, 'E_RUNTIME') && /kill/.test((e as Error).message));
  await assert.rejects(runc.kill(id, 'NOTASIGNAL'), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT'));
  assert.deepEqual(await runc.list(), []);
});

test('resolveUser: names, ids, groups, and errors like docker\'s', () => {
  const root = fs.mkdtempSync(path.join(dir, 'users-'));
  fs.mkdirSync(path.join(root, 'etc'));
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n# comment\nbuilder:x:1000:1001::/home/b:/bin/sh\nbroken line\n');
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nstaff:x:50:builder,other\nbuilders:x:1001:\naudio:x:29:builder\n');
  assert.deepEqual(resolveUser(root, ''), { uid: 0, gid: 0, additionalGids: [] });
  assert.deepEqual(resolveUser(root, 'root'), { uid: 0, gid: 0, additionalGids: [] });
  assert.deepEqual(resolveUser(root, 'builder'), { uid: 1000, gid: 1001, additionalGids: [50, 29] });
  assert.deepEqual(resolveUser(root, '1000'), { uid: 1000, gid: 1001, additionalGids: [50, 29] }, 'a uid with an entry is that user');
  assert.deepEqual(resolveUser(root, 'builder:staff'), { uid: 1000, gid: 50, additionalGids: [] });
  assert.deepEqual(resolveUser(root, 'builder:777'), { uid: 1000, gid: 777, additionalGids: [] });
  assert.deepEqual(resolveUser(root, '4242'), { uid: 4242, gid: 0, additionalGids: [] }, 'unknown uid: gid 0');
  assert.deepEqual(resolveUser(root, '4242:4343'), { uid: 4242, gid: 4343, additionalGids: [] });
  assert.throws(() => resolveUser(root, 'nobody'), (e: unknown) => isKilnError(e, 'E_BUILD') && (e as Error).message === 'unable to find user nobody: no matching entries in passwd file');
  assert.throws(() => resolveUser(root, 'builder:wheel'), /unable to find group wheel: no matching entries in group file/);
  assert.throws(() => resolveUser(root, '99999999999'), /range/);
});

test('resolveUser and secureJoin never follow a symlink out of the rootfs', () => {
  const root = fs.mkdtempSync(path.join(dir, 'evil-'));
  const outside = fs.mkdtempSync(path.join(dir, 'outside-'));
  fs.writeFileSync(path.join(outside, 'passwd'), 'evil:x:4242:4242::/:/bin/sh\n');
  fs.mkdirSync(path.join(root, 'etc'));
  fs.symlinkSync(path.join(outside, 'passwd'), path.join(root, 'etc/passwd')); // absolute, to the host file
  assert.throws(() => resolveUser(root, 'evil'), /unable to find user evil/);
  fs.rmSync(path.join(root, 'etc/passwd'));
  fs.symlinkSync(`../../../../../../..${outside}/passwd`, path.join(root, 'etc/passwd')); // relative escape
  assert.throws(() => resolveUser(root, 'evil'), /unable to find user evil/);
  // a link that stays inside the rootfs is followed
  fs.mkdirSync(path.join(root, 'data'));
  fs.writeFileSync(path.join(root, 'data/pw'), 'inside:x:7:8::/:/bin/sh\n');
  fs.rmSync(path.join(root, 'etc/passwd'));
  fs.symlinkSync('/data/pw', path.join(root, 'etc/passwd'));
  assert.deepEqual(resolveUser(root, 'inside'), { uid: 7, gid: 8, additionalGids: [] });

  assert.equal(secureJoin(root, '../../etc/passwd'), path.join(root, 'data/pw'));
  assert.equal(secureJoin(root, '/nonexistent/../x'), path.join(root, 'x'));
  fs.symlinkSync('/', path.join(root, 'up'));
  assert.equal(secureJoin(root, 'up/up/etc'), path.join(root, 'etc'));
  fs.symlinkSync('loop', path.join(root, 'loop'));
  assert.throws(() => secureJoin(root, 'loop/x'), /too many levels of symbolic links/);
});

test('detection: on a hybrid host runc is chosen; KILN_RUNTIME still overrides', () => {
  const mode = cgroupMode();
  assert.equal(mode, 'hybrid', 'this host has hybrid cgroups (see HOST.md)');
  const saved = process.env.KILN_RUNTIME;
  delete process.env.KILN_RUNTIME;
  try {
    const choice = chooseRuntime(mode);
    assert.equal(choice.name, 'runc');
    assert.ok(openRuntime(path.join(dir, 'x'), choice) instanceof RuncRuntime);
    assert.equal(chooseRuntime('v2').name, 'crun', 'crun is preferred on cgroup v2');
    process.env.KILN_RUNTIME = 'crun';
    const forced = openRuntime(path.join(dir, 'x'));
    assert.ok(forced instanceof CrunRuntime && forced.hybridWorkaround, 'forced crun on hybrid gets the workaround');
  } finally {
    if (saved === undefined) delete process.env.KILN_RUNTIME;
    else process.env.KILN_RUNTIME = saved;
  }
});

test('crun: refuses this hybrid host on its own, runs through the cgroup2 workaround', async () => {
  const crunPath = requireTool('crun');
  requireTool('unshare', 'util-linux');
  const plain = new CrunRuntime(path.join(dir, 'crun-plain'), { path: crunPath });
  const crun = new CrunRuntime(path.join(dir, 'crun-state'), { path: crunPath, hybridWorkaround: true });
  runtimes.push(plain, crun);
  await assert.rejects(exec(plain, { args: ['true'] }), (e: unknown) => isKilnError(e, 'E_RUNTIME') && /hybrid/.test((e as Error).message));
  const r = await exec(crun, { args: ['sh', '-c', 'echo hi; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "; ulimit -n; exit 4'] });
  assert.deepEqual(r, { code: 4, out: `hi\nlo\n${hostHardLimits().get('RLIMIT_NOFILE')}\n`, err: '' });
  const data = fs.mkdtempSync(path.join(dir, 'crun-data-'));
  fs.writeFileSync(path.join(data, 'f'), 'bound\n');
  const host = await exec(crun, { args: ['sh', '-c', 'cat /ro/f; readlink /proc/self/ns/net'], network: 'host', mounts: [{ type: 'bind', source: data, destination: '/ro', readonly: true }] });
  assert.deepEqual(host, { code: 0, out: `bound\n${fs.readlinkSync('/proc/self/ns/net')}\n`, err: '' });
  await assert.rejects(exec(crun, { args: ['nosuchcmd'] }), (e: unknown) => e instanceof RuntimeStartError && e.exitCode === 127 && /crun: .*nosuchcmd/.test(e.message));
  const ac = new AbortController();
  const id = `crun-abort-${process.pid}`;
  const p = crun.run({ id, bundle: bundle({ args: ['sleep', '100'] }), stdout: 'ignore', stderr: 'ignore', signal: ac.signal });
  await waitFor(async () => (await crun.state(id))?.status === 'running');
  ac.abort();
  await assert.rejects(p, (e: unknown) => isKilnError(e, 'E_RUN_ABORTED'));
  assert.deepEqual(await crun.list(), []);
});

async function waitFor(cond: () => Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('timed out waiting for the container');
    await new Promise((r) => setTimeout(r, 20));
  }
}
