/**
 * `kiln run` end to end with runc and conmon on the busybox base: exit codes, the flags that
 * shape the container (env, workdir, user, entrypoint, hostname, mounts, read-only rootfs,
 * capabilities, privileged, no-new-privileges, seccomp, memory/cpu/pids limits, network,
 * init), each checked from inside the container.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sandbox } from './helpers/env';
import { BASE, baseSandbox, mountsUnder } from './helpers/build-e2e';
import { teardownContainers } from './helpers/containers';

let sb: Sandbox;

before(async () => {
  sb = await baseSandbox('kiln-run-');
});

after(() => teardownContainers(sb));

/** kiln run --rm BASE …args; returns status, stdout, stderr. */
function run(flags: string[], cmd: string[]) {
  return sb.kiln(['run', '--rm', ...flags, BASE, ...cmd]);
}

function out(flags: string[], cmd: string[]): string {
  const r = run(flags, cmd);
  assert.equal(r.status, 0, `kiln run ${[...flags, ...cmd].join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** A field of /proc/self/status inside a container run with `flags`. */
function status(flags: string[], field: string): string {
  const line = out(flags, ['grep', `^${field}:`, '/proc/self/status']).trim();
  return line.slice(line.indexOf(':') + 1).trim();
}

test('exit codes: the process\'s own, 127 not found, 126 not executable; stdout and stderr apart', () => {
  assert.equal(run([], ['sh', '-c', 'exit 3']).status, 3);
  const r = run([], ['sh', '-c', 'echo out; echo err >&2']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\n');
  const nf = run([], ['/no/such/binary']);
  assert.equal(nf.status, 127, nf.stderr);
  assert.match(nf.stderr, /^Error: /m);
  const ne = run([], ['/etc/passwd']);
  assert.equal(ne.status, 126, ne.stderr);
  assert.equal(sb.ok(['ps', '-a', '-q']).trim(), '', '--rm removed every container, also those that failed to start');
  assert.deepEqual(mountsUnder(sb.runroot).filter((m) => m.includes('/containers/')), [], 'no rootfs stays mounted');
});

test('-e, --env-file, -w, -u, --entrypoint, --hostname, --name reach the process', () => {
  const envFile = path.join(sb.dir, 'env.list');
  fs.writeFileSync(envFile, '# comment\nFROM_FILE=1\nOVERRIDDEN=file\n');
  const env = out(['-e', 'A=b c', '--env-file', envFile, '-e', 'OVERRIDDEN=flag'], ['env']);
  assert.match(env, /^A=b c$/m);
  assert.match(env, /^FROM_FILE=1$/m);
  assert.match(env, /^OVERRIDDEN=flag$/m);
  assert.match(env, /^HOSTNAME=[0-9a-f]{12}$/m);
  assert.match(env, /^PATH=/m);
  assert.equal(out(['-w', '/tmp'], ['pwd']), '/tmp\n');
  assert.equal(out(['-u', '65534:65534'], ['id', '-u']), '65534\n');
  assert.equal(out(['-u', 'nobody'], ['id', '-un']), 'nobody\n');
  assert.equal(out(['--entrypoint', 'echo'], ['via', 'entrypoint']), 'via entrypoint\n');
  assert.equal(out(['--entrypoint', '["sh","-c"]'], ['echo json form']), 'json form\n');
  assert.equal(out(['--hostname', 'kiln-box'], ['hostname']), 'kiln-box\n');
  assert.match(out(['--hostname', 'kiln-box', '--name', 'named-one'], ['cat', '/etc/hosts']), /127\.0\.1\.1\tkiln-box named-one/);
  const bad = run(['-u', 'nosuchuser'], ['true']);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /nosuchuser/);
});

test('-v binds (ro and rw), --mount, --tmpfs, --read-only', () => {
  const host = fs.mkdtempSync(path.join(sb.dir, 'bind-'));
  fs.writeFileSync(path.join(host, 'in.txt'), 'from host\n');
  assert.equal(out(['-v', `${host}:/data`], ['sh', '-c', 'cat /data/in.txt; echo made > /data/out.txt']), 'from host\n');
  assert.equal(fs.readFileSync(path.join(host, 'out.txt'), 'utf8'), 'made\n');
  const ro = run(['-v', `${host}:/data:ro`], ['sh', '-c', 'echo x > /data/ro.txt']);
  assert.notEqual(ro.status, 0);
  assert.match(ro.stderr, /Read-only file system/);
  assert.equal(out(['--mount', `type=bind,source=${host},destination=/m,ro`], ['cat', '/m/in.txt']), 'from host\n');
  assert.match(out(['--tmpfs', '/scratch:size=1m,mode=0750,noexec'], ['sh', '-c', 'grep " /scratch " /proc/mounts']), /^tmpfs \/scratch tmpfs rw,nosuid,nodev,noexec,.*size=1024k,mode=750/m);
  const rdonly = run(['--read-only'], ['touch', '/newfile']);
  assert.notEqual(rdonly.status, 0);
  assert.match(rdonly.stderr, /Read-only file system/);
  const badv = sb.kiln(['run', '--rm', '-v', 'relative:path', BASE, 'true']);
  assert.equal(badv.status, 125);
  assert.match(badv.stderr, /--volume "relative:path"/);
});

test('capabilities: podman\'s defaults, --cap-add/--cap-drop, --privileged; no-new-privileges; seccomp', () => {
  const defaults = BigInt(`0x${status([], 'CapEff')}`);
  // podman 4.3's 14 default capabilities: CHOWN(0) … AUDIT_WRITE(29), no SYS_ADMIN(21)
  assert.equal((defaults >> 21n) & 1n, 0n);
  assert.equal((defaults >> 13n) & 1n, 1n, 'NET_RAW');
  assert.equal(defaults.toString(2).replace(/0/g, '').length, 14);
  const added = BigInt(`0x${status(['--cap-add', 'SYS_ADMIN', '--cap-drop', 'CHOWN'], 'CapEff')}`);
  assert.equal((added >> 21n) & 1n, 1n);
  assert.equal(added & 1n, 0n);
  const priv = status(['--privileged'], 'CapEff');
  const bnd = /^CapBnd:\s*([0-9a-f]+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]!;
  assert.equal(BigInt(`0x${priv}`), BigInt(`0x${bnd}`), '--privileged has every capability the host grants');
  assert.equal(status(['--privileged'], 'Seccomp'), '0');
  assert.equal(status([], 'NoNewPrivs'), '0');
  assert.equal(status(['--security-opt', 'no-new-privileges'], 'NoNewPrivs'), '1');
  assert.equal(status([], 'Seccomp'), '2', 'the default seccomp profile is applied');
  assert.equal(status(['--security-opt', 'seccomp=unconfined'], 'Seccomp'), '0');
  // denied by the containers-common profile without CAP_SYS_ADMIN
  const denied = run([], ['sh', '-c', 'unshare -r -u sh -c "hostname inner"']);
  assert.notEqual(denied.status, 0);
  const badCap = sb.kiln(['run', '--rm', '--cap-add', 'NOT_A_CAP', BASE, 'true']);
  assert.equal(badCap.status, 125);
  assert.match(badCap.stderr, /--cap-add CAP_NOT_A_CAP: unknown capability/);
});

test('--memory, --cpus, --pids-limit become cgroup limits; a host-forbidden value is refused clearly', () => {
  assert.equal(out(['--memory', '64m'], ['cat', '/sys/fs/cgroup/memory/memory.limit_in_bytes']).trim(), String(64 * 1024 * 1024));
  assert.equal(out(['--cpus', '0.5'], ['cat', '/sys/fs/cgroup/cpu/cpu.cfs_quota_us']).trim(), '50000');
  assert.equal(out(['--pids-limit', '100'], ['cat', '/sys/fs/cgroup/pids/pids.max']).trim(), '100');
  assert.equal(out([], ['cat', '/sys/fs/cgroup/pids/pids.max']).trim(), '2048', 'podman\'s default pids limit');
  const tooMany = sb.kiln(['run', '--rm', '--cpus', '64', BASE, 'true']);
  assert.equal(tooMany.status, 125);
  assert.match(tooMany.stderr, /--cpus 64: range of CPUs/);
  const badMem = sb.kiln(['run', '--rm', '--memory', 'lots', BASE, 'true']);
  assert.equal(badMem.status, 125);
  assert.match(badMem.stderr, /--memory "lots"/);
});

test('--network none is loopback only, host shares the host\'s; --init runs catatonit as PID 1', () => {
  const none = out([], ['cat', '/proc/net/dev']);
  assert.deepEqual(none.split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(':')[0]), ['lo']);
  const hostIfs = fs.readFileSync('/proc/net/dev', 'utf8').split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(':')[0]).sort();
  const inHost = out(['--network', 'host'], ['cat', '/proc/net/dev']).split('\n').slice(2).filter(Boolean).map((l) => l.trim().split(':')[0]).sort();
  assert.deepEqual(inHost, hostIfs);
  const bridge = sb.kiln(['run', '--rm', '--network', 'bridge', BASE, 'true']);
  assert.equal(bridge.status, 125);
  assert.match(bridge.stderr, /--network "bridge"/);
  assert.equal(out(['--init'], ['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline']).trim(), '/run/podman-init -- sh -c tr "\\0" " " < /proc/1/cmdline');
});
