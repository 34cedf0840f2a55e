/**
 * A pull does not fetch layers the store already has under another blob with the same diffID
 * (StorageDestination.adoptStoredLayers): an image built FROM the local busybox base, pushed
 * gzip-compressed by skopeo, is pulled into a store that has the base only as its uncompressed
 * import. The base layer is not requested from the registry; the image is complete (its files
 * read back), found by the registry's digest, and pushes again (the base layer as stored) in a
 * form skopeo copies and verifies.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireTool, run, sandbox, type Sandbox } from './helpers/env';
import { BASE, baseSandbox, readImageFiles, teardown, writeTree } from './helpers/build-e2e';
import { startRegistry, type TestRegistry } from './helpers/registry';

let reg: TestRegistry;
let builder: Sandbox;
let puller: Sandbox;

before(async () => {
  requireTool('skopeo');
  reg = await startRegistry();
  puller = await baseSandbox('kiln-reuse-pull-');
  // the builder gets the same base as plain tars (docker-archive), so that what skopeo pushes
  // (gzipped by skopeo) has blobs other than the puller's
  builder = sandbox('kiln-reuse-build-');
  const archive = path.join(builder.dir, 'base.tar');
  puller.ok(['save', '-o', archive, BASE]);
  builder.ok(['load', '-q', '-i', archive]);
});

after(async () => {
  teardown(builder);
  teardown(puller);
  await reg?.stop();
});

/** How many times the registry answered `METHOD path` (its access log). */
function requests(method: string, p: string): number {
  return fs.readFileSync(reg.log, 'utf8').split('\n').filter((l) => l.includes(`"${method} ${p} HTTP/1.1"`)).length;
}

interface RawManifest {
  config: { digest: string };
  layers: { digest: string; mediaType: string }[];
}

const inspectRaw = (ref: string) => JSON.parse(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as RawManifest;

test('a layer the store has by diffID (other compression) is not fetched; the image is whole and pushes again', async () => {
  const ctx = writeTree(path.join(builder.dir, 'ctx'), { Containerfile: `FROM ${BASE}\nCOPY reused.txt /reused.txt\n`, 'reused.txt': 'on top of the base\n' });
  builder.ok(['build', '-q', '-t', 'localhost/reuse/app:1', ctx]);
  const id = builder.ok(['image', 'inspect', '--format', '{{.Id}}', 'localhost/reuse/app:1']).trim();
  const layout = path.join(builder.dir, 'layout');
  builder.ok(['push', '-q', 'localhost/reuse/app:1', `oci:${layout}`]);
  const ref = `${reg.host}/reuse/app:1`;
  run('skopeo', ['copy', '-q', '--dest-tls-verify=false', `oci:${layout}`, `docker://${ref}`]);
  const raw = inspectRaw(ref);
  assert.equal(raw.layers.length, 2);
  assert.ok(raw.layers.every((l) => l.mediaType.endsWith('gzip')), 'skopeo compressed the layers, so their digests are new to the puller');
  const registryDigest = (JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', `docker://${ref}`])) as { Digest: string }).Digest;

  for (const l of raw.layers) assert.equal(fs.existsSync(path.join(puller.root, 'blobs', 'sha256', l.digest.slice(7))), false, `the puller lacks blob ${l.digest}`);
  const p = puller.kiln(['pull', ref]);
  assert.equal(p.status, 0, p.stderr);
  assert.equal(p.stdout.trim(), id);
  const [base, top] = raw.layers as [RawManifest['layers'][0], RawManifest['layers'][0]];
  assert.match(p.stderr, new RegExp(`Copying blob ${base.digest} skipped: already exists`));
  assert.equal(requests('GET', `/v2/reuse/app/blobs/${base.digest}`), 0, 'the base layer was not fetched');
  assert.equal(requests('GET', `/v2/reuse/app/blobs/${top.digest}`), 1, 'the new layer was');

  const files = readImageFiles(puller, ref, ['reused.txt', 'bin/busybox']);
  assert.equal(files['reused.txt'], 'on top of the base\n');
  assert.ok(files['bin/busybox']!.length > 100_000, 'the base layer is there');

  // the registry's digest names the image, though the store records a manifest of its own
  assert.equal(puller.ok(['image', 'inspect', '--format', '{{.Digest}}', ref]).trim(), registryDigest);
  assert.equal(puller.ok(['image', 'inspect', '--format', '{{.Id}}', `${reg.host}/reuse/app@${registryDigest}`]).trim(), id);

  const again = `${reg.host}/reuse/again:1`;
  puller.ok(['push', '-q', ref, `docker://${again}`]);
  const pushed = inspectRaw(again);
  assert.equal(pushed.config.digest, raw.config.digest);
  assert.equal(pushed.layers[1]!.digest, top.digest, 'the fetched layer goes as fetched');
  assert.notEqual(pushed.layers[0]!.digest, base.digest, 'the base layer goes as the store has it');
  // skopeo copies it out, verifying every blob against the pushed manifest
  run('skopeo', ['copy', '-q', '--src-tls-verify=false', `docker://${again}`, `oci:${path.join(puller.dir, 'check')}`]);
});
