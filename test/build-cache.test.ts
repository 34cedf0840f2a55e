/**
 * `kiln build`'s layer cache end to end, through the CLI and `--progress=json`: which steps hit
 * and which ran, and why (cache-miss-reason), for the changes the Dockerfile reference and
 * podman/buildah define — a rebuild, a touch, a content or mode change of a COPY source,
 * --no-cache, --build-arg, rmi of the built image, --cache-ttl — and a consistent store after all.
 *
 * Every test builds its own context (distinct file contents), so the tests share one store
 * without sharing cache entries.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sandbox } from './helpers/env';
import { baseSandbox, buildJson, buildOk, layerSteps, readImageFiles, stepByText, teardown, writeTree, type BuildEvent } from './helpers/build-e2e';

let sb: Sandbox;
before(async () => {
  sb = await baseSandbox('kiln-build-cache-');
});
after(() => teardown(sb));

const CONTAINERFILE = `FROM localhost/busybox
RUN echo base > /base
ARG X=one
COPY a.txt /a.txt
RUN echo "x=$X" > /x
COPY b.txt /b.txt
RUN cat /a.txt /b.txt > /ab
CMD ["cat", "/ab"]
`;
const STEPS = ['RUN echo base > /base', 'COPY a.txt /a.txt', 'RUN echo "x=$X" > /x', 'COPY b.txt /b.txt', 'RUN cat /a.txt /b.txt > /ab'];

/** A fresh context for CONTAINERFILE; `tag` keeps each test's file contents (so its cache entries) apart. */
function context(tag: string): string {
  const dir = path.join(sb.dir, `ctx-${tag}`);
  return writeTree(dir, { Containerfile: CONTAINERFILE, 'a.txt': `a of ${tag}\n`, 'b.txt': `b of ${tag}\n` });
}

/** "cached" / "ran" per layer step, in Containerfile order. */
function outcomes(events: BuildEvent[]): Record<string, string> {
  const got = layerSteps(events);
  assert.deepEqual(got.map((o) => o.text), STEPS, 'every RUN/COPY step is reported once, in order');
  return Object.fromEntries(got.map((o) => [o.text, o.outcome]));
}

function all(outcome: 'cached' | 'ran'): Record<string, string> {
  return Object.fromEntries(STEPS.map((s) => [s, outcome]));
}

test('a rebuild hits every RUN and COPY step and gives the same image ID', () => {
  const ctx = context('rebuild');
  const first = buildOk(sb, ['-t', 'localhost/cache-rebuild', ctx]);
  assert.deepEqual(outcomes(first.events), all('ran'));
  const second = buildOk(sb, ['-t', 'localhost/cache-rebuild', ctx]);
  assert.deepEqual(outcomes(second.events), all('cached'));
  assert.equal(second.events.filter((e) => e.type === 'cache-miss-reason').length, 0, 'no step reports a miss');
  assert.equal(second.id, first.id, 'a fully cached rebuild is the identical image');
  assert.equal(readImageFiles(sb, 'localhost/cache-rebuild', ['ab'])['ab'], 'a of rebuild\nb of rebuild\n');
});

test('touching a COPY source (mtime only) keeps the cache', () => {
  const ctx = context('touch');
  const first = buildOk(sb, [ctx]);
  const later = new Date(Date.now() + 3600_000);
  for (const f of ['a.txt', 'b.txt']) fs.utimesSync(path.join(ctx, f), later, later);
  const second = buildOk(sb, [ctx]);
  assert.deepEqual(outcomes(second.events), all('cached'));
  assert.equal(second.id, first.id);
});

test('changing a COPY source misses from that COPY on: earlier steps hit, it and every later step run', () => {
  const ctx = context('content');
  const first = buildOk(sb, ['-t', 'localhost/cache-content', ctx]);
  fs.writeFileSync(path.join(ctx, 'b.txt'), 'b changed\n');
  const second = buildOk(sb, ['-t', 'localhost/cache-content', ctx]);
  assert.deepEqual(outcomes(second.events), {
    'RUN echo base > /base': 'cached',
    'COPY a.txt /a.txt': 'cached',
    'RUN echo "x=$X" > /x': 'cached',
    'COPY b.txt /b.txt': 'ran',
    'RUN cat /a.txt /b.txt > /ab': 'ran',
  });
  assert.match(stepByText(second.events, 'COPY b.txt /b.txt').reason ?? '', /content of the files/, 'the COPY says its files changed');
  assert.match(stepByText(second.events, 'RUN cat /a.txt /b.txt > /ab').reason ?? '', /earlier step was rebuilt/, 'a later step says an earlier one was rebuilt');
  assert.notEqual(second.id, first.id);
  assert.equal(readImageFiles(sb, 'localhost/cache-content', ['ab'])['ab'], 'a of content\nb changed\n', 'the rebuilt steps saw the new content');
});

test('--explain-cache prints the miss reasons in plain progress; without it they are not printed', () => {
  const ctx = context('explain');
  buildOk(sb, [ctx]);
  fs.writeFileSync(path.join(ctx, 'b.txt'), 'b explained\n');
  const plain = sb.ok(['build', '--progress=plain', ctx]);
  assert.doesNotMatch(plain, /Cache miss/);
  fs.writeFileSync(path.join(ctx, 'b.txt'), 'b explained again\n');
  const explained = sb.ok(['build', '--progress=plain', '--explain-cache', ctx]).split('\n');
  const after = (step: string) => explained[explained.findIndex((l) => l.endsWith(`: ${step}`)) + 1];
  assert.match(after('RUN echo "x=$X" > /x') ?? '', /^--> Using cache [0-9a-f]{12}$/);
  assert.match(after('COPY b.txt /b.txt') ?? '', /^--> Cache miss: .*content of the files/);
  assert.match(after('RUN cat /a.txt /b.txt > /ab') ?? '', /^--> Cache miss: .*earlier step was rebuilt/);
});

test('a mode change (chmod) of a COPY source misses that COPY', () => {
  const ctx = context('chmod');
  buildOk(sb, [ctx]);
  fs.chmodSync(path.join(ctx, 'a.txt'), 0o755);
  const second = buildOk(sb, ['-t', 'localhost/cache-chmod', ctx]);
  assert.deepEqual(outcomes(second.events), { ...all('ran'), 'RUN echo base > /base': 'cached' });
  const root = sb.ok(['image', 'mount', 'localhost/cache-chmod']).trim();
  try {
    assert.equal(fs.statSync(path.join(root, 'a.txt')).mode & 0o777, 0o755, 'the image has the new mode');
  } finally {
    sb.ok(['image', 'unmount', 'localhost/cache-chmod']);
  }
});

test('--no-cache runs every step (and says why)', () => {
  const ctx = context('nocache');
  buildOk(sb, [ctx]);
  const second = buildOk(sb, ['--no-cache', ctx]);
  assert.deepEqual(outcomes(second.events), all('ran'));
  for (const o of layerSteps(second.events)) assert.match(o.reason ?? '', /no-cache/, o.text);
  // results of a --no-cache build are still recorded for the next build
  assert.deepEqual(outcomes(buildOk(sb, [ctx]).events), all('cached'));
});

test('--no-cache and --cache-ttl rebuilds replace cache entries without leaving unused layers (intermediate stages too)', () => {
  const ctx = writeTree(path.join(sb.dir, 'ctx-replace'), {
    Containerfile: 'FROM localhost/busybox AS tool\nRUN cat /proc/sys/kernel/random/uuid > /u\nRUN cp /u /v\nFROM localhost/busybox\nCOPY --from=tool /v /v\n',
  });
  buildOk(sb, [ctx]);
  buildOk(sb, ['--no-cache', ctx]);
  buildOk(sb, ['--cache-ttl=1ms', ctx]);
  const r = sb.kiln(['system', 'check']);
  assert.equal(r.status, 0, `the replaced entries' layers were collected:\n${r.stdout}${r.stderr}`);
});

test('a --build-arg change misses the RUN steps after its ARG, not the steps before it or a COPY that does not use it', () => {
  const ctx = context('arg');
  const one = buildOk(sb, ['-t', 'localhost/cache-arg', ctx]);
  const two = buildOk(sb, ['--build-arg', 'X=two', '-t', 'localhost/cache-arg', ctx]);
  assert.deepEqual(outcomes(two.events), {
    'RUN echo base > /base': 'cached',
    'COPY a.txt /a.txt': 'cached',
    'RUN echo "x=$X" > /x': 'ran',
    'COPY b.txt /b.txt': 'ran',
    'RUN cat /a.txt /b.txt > /ab': 'ran',
  });
  assert.match(stepByText(two.events, 'RUN echo "x=$X" > /x').reason ?? '', /environment/, 'the RUN says its environment changed');
  assert.equal(readImageFiles(sb, 'localhost/cache-arg', ['x'])['x'], 'x=two\n');
  // the default value again, given explicitly: the first build's entries
  const again = buildOk(sb, ['--build-arg', 'X=one', ctx]);
  assert.deepEqual(outcomes(again.events), all('cached'));
  assert.equal(again.id, one.id);
});

test('the cache survives `kiln rmi` of the built image', () => {
  const ctx = context('rmi');
  const first = buildOk(sb, ['-t', 'localhost/cache-rmi', ctx]);
  sb.ok(['rmi', 'localhost/cache-rmi']);
  assert.equal(sb.kiln(['image', 'exists', 'localhost/cache-rmi']).status, 1, 'the image is gone');
  const second = buildOk(sb, ['-t', 'localhost/cache-rmi', ctx]);
  assert.deepEqual(outcomes(second.events), all('cached'));
  assert.equal(second.id, first.id);
  assert.equal(readImageFiles(sb, 'localhost/cache-rmi', ['ab'])['ab'], 'a of rmi\nb of rmi\n', 'the cached layers still hold their files');
});

test('--cache-ttl: entries older than the TTL miss, newer ones hit', async () => {
  const ctx = context('ttl');
  buildOk(sb, [ctx]);
  await new Promise((r) => setTimeout(r, 50));
  const expired = buildOk(sb, ['--cache-ttl=1ms', ctx]);
  assert.deepEqual(outcomes(expired.events), all('ran'));
  assert.match(stepByText(expired.events, 'RUN echo base > /base').reason ?? '', /cache-ttl/);
  assert.deepEqual(outcomes(buildOk(sb, ['--cache-ttl=1h', ctx]).events), all('cached'));
});

test('a later step is not taken from the cache when it was built on an earlier result of a rebuilt step', () => {
  // Step 1 gives a different result each time it runs. A --no-cache build re-records step 1 and
  // then fails at step 2 (a gate in a cache mount, which is not part of the step's key), so the
  // cache holds the new step 1 but a step 2 made on the old one.
  const step1 = 'RUN cat /proc/sys/kernel/random/uuid > /d';
  const step2 = 'RUN --mount=type=cache,id=kiln-test-gate,target=/gate test ! -e /gate/closed && echo two > /two';
  const ctx = writeTree(path.join(sb.dir, 'ctx-reparent'), { Containerfile: `FROM localhost/busybox\n${step1}\n${step2}\n` });
  const only1 = writeTree(path.join(sb.dir, 'ctx-reparent-1'), { Containerfile: `FROM localhost/busybox\n${step1}\n` });
  const gate = (cmd: string) => {
    const g = writeTree(path.join(sb.dir, 'ctx-gate'), { Containerfile: `FROM localhost/busybox\nRUN --mount=type=cache,id=kiln-test-gate,target=/gate ${cmd}\n` });
    buildOk(sb, ['--no-cache', g]);
  };
  buildOk(sb, [ctx]);
  gate('touch /gate/closed');
  const failed = buildJson(sb, ['--no-cache', ctx]);
  assert.notEqual(failed.status, 0, 'the gate failed step 2');
  assert.equal(stepByText(failed.events, step1).outcome, 'ran');
  gate('rm /gate/closed');

  const r = buildOk(sb, ['-t', 'localhost/cache-reparent', ctx]);
  const one = buildOk(sb, ['-t', 'localhost/cache-reparent-1', only1]);
  assert.equal(stepByText(r.events, step1).outcome, 'cached');
  assert.equal(stepByText(one.events, step1).outcome, 'cached');
  const d = readImageFiles(sb, 'localhost/cache-reparent', ['d'])['d'];
  assert.equal(d, readImageFiles(sb, 'localhost/cache-reparent-1', ['d'])['d'], 'the image\'s /d is that of the cached step 1 it lists, not of the step 1 the stale step 2 was made on');
  assert.equal(stepByText(r.events, step2).outcome, 'ran', 'step 2 was made again on the current step 1');
  assert.match(stepByText(r.events, step2).reason ?? '', /rebuilt/);
  // and what the image holds locally is what it exports
  const dir = path.join(sb.dir, 'reparent-oci');
  sb.ok(['save', '--format', 'oci-dir', '-o', dir, 'localhost/cache-reparent']);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(fs.readFileSync(path.join(dir, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
  const inspect = JSON.parse(sb.ok(['inspect', 'localhost/cache-reparent'])) as { RootFS: { Layers: string[] } }[];
  assert.equal(manifest.layers.length, inspect[0]!.RootFS.Layers.length);
});

test('`kiln system check` finds no problems after all of the above', () => {
  const r = sb.kiln(['system', 'check']);
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /No problems found/);
});
