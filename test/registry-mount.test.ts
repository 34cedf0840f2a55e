/**
 * Cross-repository blob mounts on `kiln push`: when the image has another name on the
 * destination's registry, each blob the destination repository lacks is first mounted from that
 * repository (POST …/blobs/uploads/?mount=DIGEST&from=REPO, no bytes sent) and only uploaded
 * when the mount does not happen. The registry's access log shows which requests were made.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, sandbox, type Sandbox } from './helpers/env';
import { teardown } from './helpers/build-e2e';
import { sandboxes, startRegistry, type TestRegistry } from './helpers/registry';

let reg: TestRegistry;
let sb: Sandbox;
const { fresh, teardownAll } = sandboxes('kiln-mount-pull-');

before(async () => {
  reg = await startRegistry();
  sb = sandbox('kiln-mount-');
});

after(async () => {
  teardownAll();
  teardown(sb);
  await reg?.stop();
});

/** Access-log lines of requests under /v2/REPO/blobs/uploads/ ("METHOD URI STATUS"). */
function uploads(repo: string): string[] {
  const out: string[] = [];
  for (const l of fs.readFileSync(reg.log, 'utf8').split('\n')) {
    const m = /"(\w+) (\/v2\/[^ ]+) HTTP\/1\.1" (\d+)/.exec(l);
    if (m && m[2]!.startsWith(`/v2/${repo}/blobs/uploads/`)) out.push(`${m[1]} ${m[2]} ${m[3]}`);
  }
  return out;
}

/** Waits (up to 5 s) until the registry has logged the manifest PUT of `repo:tag` (it logs after answering). */
async function manifestLogged(repo: string, tag: string): Promise<void> {
  for (const deadline = Date.now() + 5000; !fs.readFileSync(reg.log, 'utf8').includes(`"PUT /v2/${repo}/manifests/${tag} HTTP/1.1" 201`); ) {
    if (Date.now() > deadline) assert.fail(`no manifest PUT for ${repo}:${tag} in the registry log`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('pushing to a second repository of the same registry mounts the blobs from the first instead of uploading them', async () => {
  // an image of its own: its layer is on the registry only once this test pushes it
  const tree = fs.mkdtempSync(path.join(sb.dir, 'tree-'));
  fs.writeFileSync(path.join(tree, 'hello.txt'), `mount ${process.pid} ${Date.now()}\n`);
  const tar = path.join(sb.dir, 'layer.tar');
  run('tar', ['-C', tree, '-cf', tar, 'hello.txt']);
  sb.ok(['import', '-q', tar, 'localhost/mount:1']);
  const id = sb.ok(['image', 'inspect', '--format', '{{.Id}}', 'localhost/mount:1']).trim();
  const a = `${reg.host}/kiln/a:1`;
  const b = `${reg.host}/kiln/b:1`;
  sb.ok(['tag', 'localhost/mount:1', a, b]);

  // kiln/a: a mount from kiln/b (the image's other name there) is tried and fails — b is empty —
  // so every blob is uploaded
  const first = sb.kiln(['push', a, `docker://${a}`]);
  assert.equal(first.status, 0, first.stderr);
  await manifestLogged('kiln/a', '1');
  const layers = [...first.stderr.matchAll(/^Copying blob (sha256:[0-9a-f]{64})$/gm)].map((m) => m[1]!);
  assert.equal(layers.length, 1, first.stderr);
  const aUploads = uploads('kiln/a');
  assert.ok(aUploads.some((l) => /^POST \/v2\/kiln\/a\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=kiln%2Fb 202$/.test(l)), aUploads.join('\n'));
  assert.ok(aUploads.some((l) => l.startsWith(`PUT /v2/kiln/a/blobs/uploads/`) && l.includes(`digest=${encodeURIComponent(layers[0]!)}`) && l.endsWith(' 201')), aUploads.join('\n'));

  // kiln/b: every blob (layer and config) is mounted from kiln/a; nothing is uploaded
  const second = sb.kiln(['push', b, `docker://${b}`]);
  assert.equal(second.status, 0, second.stderr);
  await manifestLogged('kiln/b', '1');
  assert.match(second.stderr, new RegExp(`^Copying blob ${layers[0]} skipped: already exists$`, 'm'));
  assert.doesNotMatch(second.stderr, /^Copying (blob|config) sha256:[0-9a-f]{64}$/m, 'no blob was uploaded');
  const bUploads = uploads('kiln/b');
  assert.equal(bUploads.filter((l) => /^(PUT|PATCH) /.test(l)).length, 0, bUploads.join('\n'));
  const mounted = bUploads.filter((l) => /^POST \/v2\/kiln\/b\/blobs\/uploads\/\?mount=sha256%3A[0-9a-f]{64}&from=kiln%2Fa 201$/.test(l));
  assert.equal(mounted.length, 2, `layer and config mounted:\n${bUploads.join('\n')}`);
  assert.ok(mounted.some((l) => l.includes(encodeURIComponent(layers[0]!))));

  // the mounted image is whole: another store pulls it with the same ID
  const other = fresh();
  assert.equal(other.ok(['pull', '-q', b]).trim(), id);
});
