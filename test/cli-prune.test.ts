/**
 * `kiln system prune`: the build cache, RUN cache mounts and dangling images go; named images
 * and everything they use stay; nothing happens without a yes.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sandbox } from './helpers/env';
import { baseSandbox, buildOk, teardown, writeTree } from './helpers/build-e2e';

let sb: Sandbox;
before(async () => {
  sb = await baseSandbox('kiln-prune-');
});
after(() => teardown(sb));

const layerCount = () => fs.readdirSync(path.join(sb.root, 'layers')).length;

test('system prune removes the build cache, cache mounts and dangling images, and keeps named images', () => {
  const ctx = writeTree(path.join(sb.dir, 'ctx'), {
    Containerfile: [
      'FROM localhost/busybox AS tool',
      'RUN --mount=type=cache,target=/c echo x > /c/f && echo tool > /tool',
      'FROM localhost/busybox',
      'COPY --from=tool /tool /tool',
      'RUN echo kept > /kept',
    ].join('\n'),
  });
  const baseLayers = layerCount();
  buildOk(sb, ['-t', 'localhost/kept', ctx]);
  buildOk(sb, [writeTree(path.join(sb.dir, 'ctx2'), { Containerfile: 'FROM localhost/busybox\nRUN echo dangling > /d\n' })]);
  assert.ok(layerCount() > baseLayers + 2, 'the builds made layers');
  assert.ok(fs.existsSync(path.join(sb.root, 'build-cache-mounts')), 'the cache mount dir exists');
  const dangling = sb.ok(['images', '-q', '--filter', 'dangling=true']).trim();
  assert.notEqual(dangling, '', 'the unnamed build is a dangling image');

  // no: nothing changes
  const declined = sb.kiln(['system', 'prune'], { input: 'n\n' });
  assert.equal(declined.status, 0, declined.stderr);
  assert.equal(sb.ok(['images', '-q', '--filter', 'dangling=true']).trim(), dangling);

  const out = sb.ok(['system', 'prune', '-f']);
  assert.match(out, /^Deleted Images$/m);
  assert.match(out, new RegExp(`^${dangling}`, 'm'));
  assert.match(out, /^Total reclaimed space: /m);
  assert.equal(sb.ok(['images', '-q', '--filter', 'dangling=true']).trim(), '', 'no dangling image left');
  assert.equal(sb.kiln(['image', 'exists', 'localhost/kept']).status, 0, 'the named image stays');
  const left = fs.readdirSync(path.join(sb.root, 'build-cache-mounts')).filter((n) => !n.endsWith('.lock'));
  assert.deepEqual(left, [], 'cache mount dirs are gone (their lock files stay)');
  // kept image: base layer + COPY + RUN; the tool stage's layer and the dangling image's are gone
  assert.equal(layerCount(), baseLayers + 2, 'only the layers named images use are left');
  const check = sb.kiln(['system', 'check']);
  assert.equal(check.status, 0, check.stdout + check.stderr);
  // the cache is empty: the same build runs its steps again (and still works)
  const again = buildOk(sb, ['-t', 'localhost/kept', ctx]);
  assert.ok(again.events.some((e) => e.type === 'step-start' && /RUN echo kept/.test(String(e.text))) && !again.events.some((e) => e.type === 'step-cached'), 'nothing came from the cache');
});
