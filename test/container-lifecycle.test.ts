/**
 * Container lifecycle end to end (conmon + runc): detached containers outlive kiln, logs after
 * the fact, exec, stop with the stop signal then SIGKILL after the timeout, kill, restart,
 * rm -f leaving no mounts or processes, ps/inspect/wait, create + start -a, twenty at once,
 * an exit while no kiln runs, images from kiln build and kiln pull, and -it under a real pty.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KILN, requireTool, type Sandbox } from './helpers/env';
import { BASE, baseSandbox, mountsUnder, writeTree } from './helpers/build-e2e';
import { processesMentioning, teardownContainers } from './helpers/containers';
import { startRegistry, type TestRegistry } from './helpers/registry';

let sb: Sandbox;

before(async () => {
  sb = await baseSandbox('kiln-ctr-');
});

after(() => teardownContainers(sb));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `fn` until it returns true (at most `ms`). */
async function until(what: string, fn: () => boolean, ms = 10_000): Promise<void> {
  for (const end = Date.now() + ms; !fn(); ) {
    if (Date.now() > end) assert.fail(`timed out waiting for: ${what}`);
    await sleep(50);
  }
}

function state(name: string): { Status: string; ExitCode: number; Pid: number; ConmonPid: number } {
  return JSON.parse(sb.ok(['container', 'inspect', '--format', '{{json .State}}', name])) as { Status: string; ExitCode: number; Pid: number; ConmonPid: number };
}

test('run -d returns at once, the container outlives kiln; logs, exec, stop, rm', async () => {
  const id = sb.ok(['run', '-d', '--name', 'detached', BASE, 'sh', '-c', 'echo started; echo to-stderr >&2; while true; do sleep 0.1; done']).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  const s = state('detached');
  assert.equal(s.Status, 'running');
  assert.ok(fs.existsSync(`/proc/${s.ConmonPid}`), 'conmon runs after kiln exited');
  await until('the log has both lines', () => sb.ok(['logs', 'detached']).includes('started'));
  const logs = sb.kiln(['logs', 'detached']);
  assert.equal(logs.stdout, 'started\n');
  assert.equal(logs.stderr, 'to-stderr\n');
  assert.match(sb.ok(['logs', '-t', 'detached']), /^\d{4}-\d\d-\d\dT\S+ started$/m);
  const tail = sb.kiln(['logs', '--tail', '1', 'detached']);
  assert.deepEqual([tail.stdout, tail.stderr], ['', 'to-stderr\n'], 'the last line of the log, whichever stream');
  assert.equal(sb.ok(['exec', 'detached', 'sh', '-c', 'echo $((6*7))']), '42\n');
  assert.equal(sb.kiln(['exec', 'detached', 'sh', '-c', 'exit 5']).status, 5);
  assert.equal(sb.ok(['exec', '-e', 'X=y', '-w', '/tmp', '-u', 'nobody', 'detached', 'sh', '-c', 'echo $X $(pwd) $(id -un)']), 'y /tmp nobody\n');
  assert.equal(sb.kiln(['exec', 'detached', '/nope']).status, 127);
  assert.equal(sb.ok(['exec', '-i', 'detached', 'cat'], { input: 'via stdin\n' }), 'via stdin\n');
  const ps = sb.ok(['ps']);
  assert.match(ps, /^CONTAINER ID\s+IMAGE\s+COMMAND\s+CREATED\s+STATUS\s+PORTS\s+NAMES$/m);
  assert.match(ps, new RegExp(`^${id.slice(0, 12)}\\s+localhost/busybox:latest\\s+sh -c echo starte\\.\\.\\.\\s+.*Up .*detached$`, 'm'));
  const rmRunning = sb.kiln(['rm', 'detached']);
  assert.equal(rmRunning.status, 2, rmRunning.stderr);
  assert.match(rmRunning.stderr, /cannot remove container .* as it is running/);
  const t0 = Date.now();
  assert.equal(sb.ok(['stop', '-t', '1', 'detached']).trim(), 'detached');
  assert.ok(Date.now() - t0 < 8000);
  assert.equal(state('detached').Status, 'exited');
  assert.equal(state('detached').ExitCode, 137, 'sh as PID 1 ignores SIGTERM: killed after the timeout');
  assert.match(sb.ok(['ps', '-a', '--filter', 'name=detached']), /Exited \(137\)/);
  assert.equal(sb.ok(['rm', 'detached']).trim(), id);
  assert.equal(sb.kiln(['container', 'inspect', 'detached']).status, 125);
  assert.deepEqual(processesMentioning(id), []);
});

test('stop honours --stop-signal; kill -s; wait; restart; rm -f leaves no mounts and no processes', async () => {
  sb.ok(['run', '-d', '--name', 'trapper', '--stop-signal', 'USR1', BASE, 'sh', '-c', 'trap "echo got usr1; exit 4" USR1; while true; do sleep 0.1; done']);
  await sleep(300);
  const t0 = Date.now();
  sb.ok(['stop', 'trapper']);
  assert.ok(Date.now() - t0 < 5000, 'stopped by the signal, not the 10 s timeout');
  assert.equal(state('trapper').ExitCode, 4);
  assert.match(sb.ok(['logs', 'trapper']), /got usr1/);
  assert.equal(sb.ok(['wait', 'trapper']).trim(), '4');

  sb.ok(['start', 'trapper']);
  assert.equal(state('trapper').Status, 'running');
  sb.ok(['kill', '-s', 'USR1', 'trapper']);
  assert.equal(sb.ok(['wait', 'trapper']).trim(), '4');
  const killStopped = sb.kiln(['kill', 'trapper']);
  assert.equal(killStopped.status, 125);
  assert.match(killStopped.stderr, /can only kill running containers/);

  sb.ok(['restart', 'trapper']);
  const s = state('trapper');
  assert.equal(s.Status, 'running');
  const id = sb.ok(['container', 'inspect', '--format', '{{.Id}}', 'trapper']).trim();
  assert.ok(mountsUnder(sb.runroot).some((m) => m.includes(id)), 'its rootfs is mounted while it runs');
  sb.ok(['rm', '-f', '-t', '0', 'trapper']);
  assert.deepEqual(mountsUnder(sb.runroot).filter((m) => m.includes(id)), []);
  await until('conmon and the container are gone', () => processesMentioning(id).length === 0 && !fs.existsSync(`/proc/${s.Pid}`));
  assert.equal(sb.kiln(['rm', 'trapper']).status, 1, 'no such container: exit 1');
});

test('create + start -a; ps --format json and filters; inspect fields; exit seen while no kiln ran', async () => {
  const id = sb.ok(['create', '--name', 'later', '-l', 'team=kiln', BASE, 'sh', '-c', 'echo hello from create; exit 6']).trim();
  assert.equal(state('later').Status, 'created');
  const rows = JSON.parse(sb.ok(['ps', '-a', '--format', 'json', '--filter', 'label=team=kiln'])) as { Id: string; Names: string[]; State: string; Labels: Record<string, string> }[];
  assert.deepEqual(rows.map((r) => [r.Id, r.Names, r.State, r.Labels.team]), [[id, ['later'], 'created', 'kiln']]);
  assert.equal(sb.ok(['ps', '-a', '--format', '{{.Names}} {{.Status}}', '--filter', 'status=created']).trim(), 'later Created');
  const r = sb.kiln(['start', '-a', 'later']);
  assert.equal(r.status, 6);
  assert.equal(r.stdout, 'hello from create\n');
  assert.equal(sb.ok(['inspect', '--format', '{{.State.ExitCode}} {{.Config.Labels.team}} {{.Name}}', 'later']).trim(), '6 kiln later');

  // the container exits while no kiln process runs: conmon records it
  sb.ok(['run', '-d', '--name', 'short', BASE, 'sh', '-c', 'sleep 0.5; exit 7']);
  await sleep(1500);
  assert.match(sb.ok(['ps', '-a', '--filter', 'name=short', '--format', '{{.Status}}']), /^Exited \(7\)/);
  sb.ok(['rm', 'later', 'short']);
});

test('twenty containers at once, started in parallel, all listed, all removed', async () => {
  const starts = Array.from({ length: 20 }, (_, i) => new Promise<number | null>((resolve) => {
    const c = require('node:child_process').spawn(process.execPath, [KILN, '--root', sb.root, '--runroot', sb.runroot, 'run', '-d', '--name', `many-${i}`, BASE, 'sleep', '60'], { stdio: 'ignore' });
    c.on('exit', (code: number | null) => resolve(code));
  }));
  assert.deepEqual(await Promise.all(starts), Array(20).fill(0));
  const ids = sb.ok(['ps', '-q', '--no-trunc', '--filter', 'name=many-']).trim().split('\n');
  assert.equal(ids.length, 20);
  sb.ok(['rm', '-f', '-t', '0', ...Array.from({ length: 20 }, (_, i) => `many-${i}`)]);
  assert.equal(sb.ok(['ps', '-a', '-q', '--filter', 'name=many-']).trim(), '');
  assert.deepEqual(mountsUnder(sb.runroot).filter((m) => ids.some((id) => m.includes(id))), []);
});

test('an image built by kiln build runs; an image pulled by kiln runs', async () => {
  const ctx = writeTree(path.join(sb.dir, 'ctx-run'), { Containerfile: `FROM ${BASE}\nRUN echo built > /built.txt\nCMD ["cat", "/built.txt"]\n` });
  sb.ok(['build', '-q', '-t', 'localhost/run/built:1', ctx]);
  assert.equal(sb.ok(['run', '--rm', 'localhost/run/built:1']), 'built\n');

  let reg: TestRegistry | undefined;
  try {
    reg = await startRegistry();
    sb.ok(['push', '-q', 'localhost/run/built:1', `docker://${reg.host}/run/built:1`]);
    sb.ok(['rmi', 'localhost/run/built:1']);
    const never = sb.kiln(['run', '--rm', '--pull', 'never', `${reg.host}/run/built:1`]);
    assert.equal(never.status, 125);
    assert.match(never.stderr, /image not known/);
    // a missing image is pulled first (--pull missing, podman's default), then run
    const r = sb.kiln(['run', '--rm', `${reg.host}/run/built:1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'built\n');
    assert.match(r.stderr, /^Trying to pull .*\nGetting image source signatures\n/);
    assert.equal(sb.ok(['run', '--rm', '-q', '--pull', 'always', `${reg.host}/run/built:1`]), 'built\n');
  } finally {
    await reg?.stop();
  }
});

test('-it under a real pty (script): a terminal inside, input reaches it', () => {
  requireTool('script', 'bsdutils');
  const cmd = `${process.execPath} ${KILN} --root ${sb.root} --runroot ${sb.runroot} run --rm -it ${BASE} sh -c 'test -t 0 && echo tty-yes; read line; echo got:$line'`;
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { input: 'hello\n', encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /tty-yes/);
  assert.match(r.stdout, /got:hello/);

  // exec -it into a running container: a terminal of its own, input, the exit code
  sb.ok(['run', '-d', '--name', 'ttyexec', BASE, 'sleep', '60']);
  const exec = `${process.execPath} ${KILN} --root ${sb.root} --runroot ${sb.runroot} exec -it ttyexec sh -c 'tty; read line; echo got:$line; exit 4'`;
  const e = spawnSync('script', ['-qec', exec, '/dev/null'], { input: 'again\n', encoding: 'utf8', timeout: 20_000 });
  assert.equal(e.status, 4, `${e.stdout}\n${e.stderr}`);
  assert.match(e.stdout, /\/dev\/pts\/\d+/);
  assert.match(e.stdout, /got:again/);
  sb.ok(['rm', '-f', '-t', '0', 'ttyexec']);
});

test('named volumes are filled from the image and outlive containers; image VOLUMEs are anonymous volumes that rm -v removes', () => {
  const ctx = writeTree(path.join(sb.dir, 'ctx-vol'), {
    Containerfile: `FROM ${BASE}\nRUN mkdir -p /data /anon && echo seeded > /data/seed.txt && echo anon > /anon/a.txt\nVOLUME /anon\n`,
  });
  sb.ok(['build', '-q', '-t', 'localhost/run/vol:1', ctx]);
  assert.equal(sb.ok(['run', '--rm', '-v', 'vol1:/data', 'localhost/run/vol:1', 'sh', '-c', 'cat /data/seed.txt; echo more > /data/more.txt']), 'seeded\n');
  assert.equal(sb.ok(['run', '--rm', '-v', 'vol1:/data:ro', 'localhost/run/vol:1', 'cat', '/data/more.txt']), 'more\n');
  assert.equal(sb.kiln(['run', '--rm', '-v', 'vol1:/data:ro', 'localhost/run/vol:1', 'touch', '/data/x']).status, 1, 'read-only volume');
  assert.equal(sb.ok(['volume', 'inspect', '--format', '{{.Name}}', 'vol1']).trim(), 'vol1');
  const before = new Set(sb.ok(['volume', 'ls', '-q']).trim().split('\n'));
  assert.equal(sb.ok(['run', '--name', 'withanon', 'localhost/run/vol:1', 'cat', '/anon/a.txt']), 'anon\n');
  const anon = sb.ok(['volume', 'ls', '-q']).trim().split('\n').filter((v) => !before.has(v));
  assert.equal(anon.length, 1);
  assert.match(anon[0]!, /^[0-9a-f]{64}$/);
  assert.equal(sb.kiln(['volume', 'rm', anon[0]!]).status, 2, 'in use by the container');
  sb.ok(['rm', '-v', 'withanon']);
  assert.deepEqual(sb.ok(['volume', 'ls', '-q']).trim().split('\n').filter((v) => !before.has(v)), [], 'rm -v removed the anonymous volume');
  assert.ok(sb.ok(['volume', 'ls', '-q']).includes('vol1'), 'the named volume stays');
});

test('attach to a running container (stdin, exit code); rmi -f removes the image\'s containers', async () => {
  sb.ok(['run', '-d', '-i', '--name', 'att', BASE, 'sh', '-c', 'read x; echo got:$x; exit 9']);
  const r = sb.kiln(['attach', 'att'], { input: 'hi\n' });
  assert.equal(r.status, 9, r.stderr);
  assert.equal(r.stdout, 'got:hi\n');
  const stopped = sb.kiln(['attach', 'att']);
  assert.equal(stopped.status, 125);
  assert.match(stopped.stderr, /you can only attach to running containers/);

  const ctx = writeTree(path.join(sb.dir, 'ctx-rmi'), { Containerfile: `FROM ${BASE}\nRUN echo x > /x\n` });
  sb.ok(['build', '-q', '-t', 'localhost/run/rmi:1', ctx]);
  const id = sb.ok(['run', '-d', '--stop-timeout', '0', 'localhost/run/rmi:1', 'sleep', '60']).trim();
  assert.equal(sb.kiln(['rmi', 'localhost/run/rmi:1']).status, 2, 'in use by a container');
  sb.ok(['rmi', '-f', 'localhost/run/rmi:1']);
  assert.equal(sb.kiln(['container', 'inspect', id]).status, 125);
  assert.deepEqual(mountsUnder(sb.runroot).filter((m) => m.includes(id)), []);
  await until('its processes are gone', () => processesMentioning(id).length === 0);
  sb.ok(['rm', 'att']);
});

test('run -i feeds stdin; logs -f follows until the container exits; --since; exec -d; --stop-timeout; rm -a', async () => {
  assert.equal(sb.ok(['run', '--rm', '-i', BASE, 'sh', '-c', 'cat; echo done'], { input: 'line one\nline two\n' }), 'line one\nline two\ndone\n');
  assert.equal(sb.ok(['run', '--rm', BASE, 'sh', '-c', 'cat; echo done'], { input: 'ignored\n' }), 'done\n', 'without -i stdin is not passed');

  sb.ok(['run', '-d', '--name', 'follow', BASE, 'sh', '-c', 'for i in 1 2 3; do echo tick $i; sleep 0.3; done']);
  const f = sb.kiln(['logs', '-f', 'follow']);
  assert.equal(f.status, 0, f.stderr);
  assert.equal(f.stdout, 'tick 1\ntick 2\ntick 3\n', 'logs -f returns when the container exits, with every line');
  assert.equal(sb.ok(['logs', '--since', '2000-01-01T00:00:00Z', 'follow']), 'tick 1\ntick 2\ntick 3\n');
  assert.equal(sb.ok(['logs', '--until', '2000-01-01T00:00:00Z', 'follow']), '');
  const badSince = sb.kiln(['logs', '--since', 'yesterday-ish', 'follow']);
  assert.equal(badSince.status, 125);
  assert.match(badSince.stderr, /--since/);

  sb.ok(['run', '-d', '--name', 'slowstop', '--stop-timeout', '1', BASE, 'sleep', '60']);
  sb.ok(['exec', '-d', 'slowstop', 'sh', '-c', 'echo from-exec-d > /tmp/marker; sleep 30']); // returns at once though the process runs on
  await until('exec -d ran', () => sb.kiln(['exec', 'slowstop', 'cat', '/tmp/marker']).stdout === 'from-exec-d\n');
  const t0 = Date.now();
  sb.ok(['stop', 'slowstop']);
  const took = Date.now() - t0;
  assert.ok(took >= 900 && took < 8000, `stop waited the container's --stop-timeout of 1 s (took ${took} ms)`);
  assert.equal(state('slowstop').ExitCode, 137);

  sb.ok(['rm', '-a', '-f', '-t', '0']);
  assert.equal(sb.ok(['ps', '-a', '-q']).trim(), '');
});

test('a container whose conmon was killed shows as exited on the next ps; its rootfs is unmounted by rm', async () => {
  const id = sb.ok(['run', '-d', '--name', 'orphaned', BASE, 'sleep', '60']).trim();
  const s = state('orphaned');
  process.kill(s.ConmonPid, 'SIGKILL');
  process.kill(s.Pid, 'SIGKILL');
  await until('both are gone', () => !fs.existsSync(`/proc/${s.Pid}/cmdline`) || fs.readFileSync(`/proc/${s.Pid}/cmdline`).length === 0);
  await sleep(200);
  assert.match(sb.ok(['ps', '-a', '--filter', 'name=orphaned', '--format', '{{.State}} {{.Status}}']), /^exited Exited/);
  sb.ok(['rm', 'orphaned']);
  assert.deepEqual(mountsUnder(sb.runroot).filter((m) => m.includes(id)), []);
});
