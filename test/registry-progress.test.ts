/**
 * Progress bars per blob on a terminal (registry/progress.ts): the renderer on its own, and a
 * real `kiln push`/`kiln pull` run under a pseudo-terminal (script(1)) against docker-registry.
 * Without a terminal the plain podman lines stay (registry.test.ts checks those).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { spawnSync } from 'node:child_process';
import { KILN, requireTool, type Sandbox } from './helpers/env';
import { BASE, baseSandbox, teardown } from './helpers/build-e2e';
import { sandboxes, startRegistry, type TestRegistry } from './helpers/registry';
import { barLine, humanBytes, terminalProgress } from '../src/registry/progress';

test('the renderer draws a bar per running blob and leaves a "done" line per finished one', async () => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const p = terminalProgress(out);
  const a = p.blob('blob', `sha256:${'a'.repeat(64)}`, 4096);
  const b = p.blob('config', `sha256:${'b'.repeat(64)}`, 10);
  p.log('Getting image source signatures');
  await pipeline(Readable.from([Buffer.alloc(1024), Buffer.alloc(1024)]), a.meter, new PassThrough().resume());
  await new Promise((r) => setTimeout(r, 150)); // one redraw
  assert.match(text, /Copying blob aaaaaaaaaaaa \[=========>-{10}\] 2\.0KiB \/ 4\.0KiB/);
  a.done();
  b.done('skipped: already exists');
  p.close();
  assert.match(text, /Copying blob aaaaaaaaaaaa done\n/);
  assert.match(text, /Copying config bbbbbbbbbbbb skipped: already exists\n/);
  assert.match(text, /\x1b\[\d+A\x1b\[J/); // redrawn in place
  assert.equal(barLine('x', 10, 10), 'x [====================] 10B / 10B');
  assert.equal(humanBytes(3 << 20), '3.0MiB');
});

let reg: TestRegistry;
let sb: Sandbox;
const { fresh, teardownAll } = sandboxes('kiln-progress-pull-');

before(async () => {
  requireTool('script', 'bsdutils');
  reg = await startRegistry();
  sb = await baseSandbox('kiln-progress-');
});

after(async () => {
  teardownAll();
  teardown(sb);
  await reg?.stop();
});

/** Runs kiln under a pseudo-terminal; returns what it wrote there. */
function underTty(s: Sandbox, args: string[]): string {
  const cmd = [process.execPath, KILN, '--root', s.root, '--runroot', s.runroot, ...args].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  return r.stdout.replace(/\r/g, '');
}

test('kiln push and pull draw bars on a terminal', () => {
  const pushed = underTty(sb, ['push', BASE, `docker://${reg.host}/progress/busybox:1`]);
  assert.match(pushed, /Copying blob [0-9a-f]{12} \[[=>-]{20}\] /);
  assert.match(pushed, /Copying blob [0-9a-f]{12} done\n/);
  assert.doesNotMatch(pushed, /Copying blob sha256:/);
  const s = fresh();
  const pulled = underTty(s, ['pull', `${reg.host}/progress/busybox:1`]);
  assert.match(pulled, /Copying blob [0-9a-f]{12} done\n/);
  assert.match(pulled, /Copying config [0-9a-f]{12} done\n/);
  assert.match(pulled, /Writing manifest to image destination\n/);
});
