/**
 * `kiln build`'s scheduling and cancellation end to end: independent stages run at the same
 * time (and one at a time with --jobs 1), identical stages run once, and a build stopped by
 * SIGINT or kill -9 leaves no mounts, containers, processes or images behind.
 *
 * Concurrency is shown by intervals the RUN steps record from inside their containers
 * (/proc/uptime, 10 ms resolution, the same clock for every container), never by wall-clock
 * durations of the build.
 */
import { test, before, after, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Sandbox } from './helpers/env';
import {
  baseSandbox, buildOk, exitOf, eventually, killRuncContainers, layerSteps, mountsUnder, processesWithEnv, readImageFiles,
  runcContainers, spawnBuild, teardown, waitFor, writeTree,
} from './helpers/build-e2e';

let sb: Sandbox;
before(async () => {
  sb = await baseSandbox('kiln-build-parallel-');
});
after(() => teardown(sb));

const NAMES = ['a', 'b', 'c'];

/** Three independent stages, each recording when its 2 s RUN started and ended; the final stage collects them. */
const INTERVALS = [
  ...NAMES.flatMap((n) => [
    `FROM localhost/busybox AS ${n}`,
    `RUN cut -d' ' -f1 /proc/uptime > /start; sleep 2; cut -d' ' -f1 /proc/uptime > /end; echo ${n} > /name`,
  ]),
  'FROM localhost/busybox',
  ...NAMES.map((n) => `COPY --from=${n} /start /end /t/${n}/`),
  '',
].join('\n');

type Interval = { name: string; start: number; end: number };

function intervals(image: string): Interval[] {
  const files = readImageFiles(sb, image, NAMES.flatMap((n) => [`t/${n}/start`, `t/${n}/end`]));
  return NAMES.map((name) => {
    const start = Number(files[`t/${name}/start`]);
    const end = Number(files[`t/${name}/end`]);
    assert.ok(Number.isFinite(start) && Number.isFinite(end) && end - start >= 1.9, `stage ${name} recorded a 2 s interval: ${start}..${end}`);
    return { name, start, end };
  });
}

const show = (iv: Interval[]) => iv.map((i) => `${i.name}: ${i.start}..${i.end}`).join(', ');

test('independent stages run at the same time by default, one after another with --jobs 1', () => {
  const ctx = writeTree(path.join(sb.dir, 'ctx-intervals'), { Containerfile: INTERVALS });
  buildOk(sb, ['-t', 'localhost/par-default', ctx]);
  const par = intervals('localhost/par-default');
  // all three intervals share a moment: the latest start is before the earliest end
  assert.ok(Math.max(...par.map((i) => i.start)) < Math.min(...par.map((i) => i.end)), `the stages overlap (${show(par)})`);

  const seq = buildOk(sb, ['--no-cache', '--jobs', '1', '-t', 'localhost/par-jobs1', ctx]);
  assert.ok(layerSteps(seq.events).every((o) => o.outcome === 'ran'), 'the --jobs 1 build ran its steps again');
  const one = intervals('localhost/par-jobs1').sort((x, y) => x.start - y.start);
  for (let k = 1; k < one.length; k++) {
    assert.ok(one[k]!.start >= one[k - 1]!.end, `with --jobs 1 no two stages overlap (${show(one)})`);
  }
});

test('identical stages run once', () => {
  // Both stages are the same work under different names; a counter in a cache mount (which
  // outlives the step) records every run of the RUN.
  const counted = 'RUN --mount=type=cache,target=/counter,id=kiln-test-identical echo ran >> /counter/runs; echo same > /same';
  const ctx = writeTree(path.join(sb.dir, 'ctx-identical'), {
    Containerfile: [
      'FROM localhost/busybox AS one',
      counted,
      'FROM localhost/busybox AS two',
      counted,
      'FROM localhost/busybox',
      'COPY --from=one /same /one',
      'COPY --from=two /same /two',
      'RUN --mount=type=cache,target=/counter,id=kiln-test-identical cp /counter/runs /runs',
      '',
    ].join('\n'),
  });
  const r = buildOk(sb, ['-t', 'localhost/par-identical', ctx]);
  const files = readImageFiles(sb, 'localhost/par-identical', ['one', 'two', 'runs']);
  assert.equal(files['one'], 'same\n');
  assert.equal(files['two'], 'same\n');
  assert.equal(files['runs'], 'ran\n', 'the shared RUN ran exactly once');
  const ran = layerSteps(r.events).filter((o) => o.text === counted && o.outcome === 'ran');
  assert.equal(ran.length, 1, 'progress shows one run of the shared RUN');
});

/**
 * A build whose last RUN sleeps 30 s; its processes carry a unique environment entry so the
 * test finds them (and only them) in /proc.
 */
function sleeper(name: string): { ctx: string; mark: string } {
  const mark = `KILN_TEST_MARK=${randomBytes(8).toString('hex')}`;
  const ctx = writeTree(path.join(sb.dir, `ctx-${name}`), {
    Containerfile: `FROM localhost/busybox\nENV ${mark}\nRUN echo ${name} > /before\nRUN sleep 30\n`,
  });
  return { ctx, mark };
}

const sleeping = (mark: string) => processesWithEnv(mark).filter((p) => p.argv.includes('sleep') || p.argv.some((a) => a.includes('sleep 30')));

/** Starts the sleeper build and waits until its sleep runs; the build is SIGKILLed when the test ends. */
async function startSleeper(t: TestContext, name: string) {
  const { ctx, mark } = sleeper(name);
  const b = spawnBuild(sb, ['--progress=plain', '-t', `localhost/${name}`, ctx]);
  t.after(() => {
    if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL');
  });
  await waitFor(b.child, b.output, (s) => /STEP \d+\/\d+: RUN sleep 30\n/.test(s), 30_000, 'the RUN sleep 30 step to start');
  const procs = await eventually(() => sleeping(mark), (p) => p.length > 0, 10_000);
  assert.ok(procs.length > 0, `the RUN's sleep 30 is running\n${b.output()}`);
  return { ...b, mark };
}

test('SIGINT cancels a build promptly and leaves no mounts, containers, processes or image', async (t) => {
  const images = sb.ok(['images', '-q', '--no-trunc']);
  const b = await startSleeper(t, 'cancelled');
  b.child.kill('SIGINT');
  const exit = await exitOf(b.child, 5_000);
  assert.equal(exit.signal, null, 'kiln handled the signal and exited by itself');
  assert.notEqual(exit.code, 0, `non-zero exit status\n${b.output()}`);
  assert.match(b.output(), /cancel/i, 'kiln says the build was cancelled');
  assert.deepEqual(mountsUnder(sb.dir), [], 'no mounts under the sandbox');
  assert.deepEqual(runcContainers(sb.runroot), [], 'no runc container left');
  assert.deepEqual(sleeping(b.mark), [], 'no process of the RUN left');
  assert.equal(sb.kiln(['image', 'exists', 'localhost/cancelled']).status, 1, 'no image under the tag');
  assert.equal(sb.ok(['images', '-q', '--no-trunc']), images, 'no new image at all');
  const check = sb.kiln(['system', 'check']);
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

test('after kill -9 of a build mid-RUN, the next kiln write command removes its containers and mounts', async (t) => {
  const b = await startSleeper(t, 'killed');
  try {
    b.child.kill('SIGKILL');
    await exitOf(b.child, 10_000);
    assert.ok(mountsUnder(sb.root).length > 0, 'the dead build left its overlay mounted (else this test shows nothing)');
    sb.ok(['tag', 'localhost/busybox:latest', 'localhost/after-kill:latest']);
    assert.deepEqual(runcContainers(sb.runroot), [], 'an ordinary write command (kiln tag) killed and deleted the dead build\'s container');
    assert.deepEqual(await eventually(() => sleeping(b.mark), (p) => p.length === 0, 5_000), [], 'no process of the RUN is left');
    assert.deepEqual(mountsUnder(sb.dir), [], 'an ordinary write command (kiln tag) unmounted the dead build\'s overlays');
    sb.ok(['system', 'check', '--repair']);
    const check = sb.kiln(['system', 'check']);
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.equal(sb.kiln(['image', 'exists', 'localhost/killed']).status, 1, 'no image under the tag');
  } finally {
    killRuncContainers(sb.runroot);
  }
  assert.deepEqual(runcContainers(sb.runroot), [], 'runc kill + delete removed what was left');
  // the store still builds
  const ctx = writeTree(path.join(sb.dir, 'ctx-after-kill'), { Containerfile: 'FROM localhost/busybox\nRUN echo after > /after\n' });
  buildOk(sb, ['-t', 'localhost/after-kill-build', ctx]);
  assert.equal(readImageFiles(sb, 'localhost/after-kill-build', ['after'])['after'], 'after\n');
  assert.deepEqual(mountsUnder(sb.dir), []);
});

test('a failing stage stops the stages still running, and the build reports its error', async (t) => {
  // `slow` sleeps 30 s; `bad` fails once slow's sleep has begun (a shared cache mount tells it)
  const mark = `KILN_TEST_MARK=${randomBytes(8).toString('hex')}`;
  const sync = `--mount=type=cache,target=/sync,id=kiln-test-stop-${randomBytes(4).toString('hex')}`;
  const ctx = writeTree(path.join(sb.dir, 'ctx-fail-stops'), {
    Containerfile: [
      'FROM localhost/busybox AS slow',
      `ENV ${mark}`,
      `RUN ${sync} touch /sync/started; sleep 30`,
      'FROM localhost/busybox AS bad',
      `RUN ${sync} for i in $(seq 1 200); do [ -f /sync/started ] && break; sleep 0.05; done; sleep 0.5; exit 3`,
      'FROM localhost/busybox',
      'COPY --from=slow /etc/hostname /a',
      'COPY --from=bad /etc/hostname /b',
      '',
    ].join('\n'),
  });
  const b = spawnBuild(sb, ['--progress=plain', '-t', 'localhost/fail-stops', ctx]);
  t.after(() => {
    if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL');
  });
  const exit = await exitOf(b.child, 20_000); // rejects if kiln waited for the 30 s sleep
  assert.notEqual(exit.code, 0, `the build failed\n${b.output()}`);
  assert.match(b.output(), /exit status 3/, 'the failing stage\'s error is reported');
  assert.deepEqual(sleeping(mark), [], 'the sleeping stage\'s process was stopped');
  assert.deepEqual(mountsUnder(sb.dir), [], 'no mounts under the sandbox');
  assert.deepEqual(runcContainers(sb.runroot), [], 'no runc container left');
  assert.equal(sb.kiln(['image', 'exists', 'localhost/fail-stops']).status, 1, 'no image under the tag');
});
