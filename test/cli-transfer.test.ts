/**
 * save/load/push round trips through the CLI: several images in one archive of each kind,
 * archives on standard output and input, and a refused destination leaving nothing behind.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { sandbox, busyboxTar, KILN, type Sandbox } from './helpers/env';

let src: Sandbox;
let ids: Record<string, string>;

before(async () => {
  src = sandbox('kiln-xfer-');
  const tar = await busyboxTar(src.dir);
  ids = {
    a: src.ok(['import', '-c', 'CMD ["/bin/sh"]', tar, 'localhost/a:1']).trim().replace(/^sha256:/, ''),
    b: src.ok(['import', '-c', 'LABEL b=1', tar, 'quay.io/team/b:2']).trim().replace(/^sha256:/, ''),
  };
});
after(() => src.cleanup());

function imagesOf(sb: Sandbox): Record<string, string[]> {
  const rows = JSON.parse(sb.ok(['images', '--format', 'json'])) as Array<{ Id: string; Names: string[] }>;
  return Object.fromEntries(rows.map((r) => [r.Id, [...r.Names].sort()]));
}

for (const format of ['docker-archive', 'oci-archive', 'oci-dir'] as const) {
  test(`save --format ${format} of two images loads back with the same IDs and names`, () => {
    const out = path.join(src.dir, `two-${format}`);
    src.ok(['save', '--format', format, '-o', out, 'a:1', 'quay.io/team/b:2']);
    const dst = sandbox('kiln-xfer-dst-');
    try {
      const loaded = dst.ok(['load', '-i', out]);
      assert.match(loaded, /Loaded image: localhost\/a:1/);
      assert.match(loaded, /Loaded image: quay\.io\/team\/b:2/);
      assert.deepEqual(imagesOf(dst), { [ids.a!]: ['localhost/a:1'], [ids.b!]: ['quay.io/team/b:2'] });
      // the shared layer is stored once (extracted on first use: mount both)
      dst.ok(['image', 'mount', 'a:1']);
      dst.ok(['image', 'mount', 'quay.io/team/b:2']);
      assert.equal(fs.readdirSync(path.join(dst.root, 'layers')).length, 1);
      dst.ok(['image', 'unmount', 'a:1']);
      dst.ok(['image', 'unmount', 'quay.io/team/b:2']);
      assert.equal(dst.ok(['system', 'check']).trim(), 'No problems found');
    } finally {
      dst.cleanup();
    }
  });
}

test('save to standard output and load from standard input', () => {
  const saved = spawnSync(process.execPath, [KILN, '--root', src.root, '--runroot', src.runroot, 'save', 'a:1'], { maxBuffer: 64 << 20 });
  assert.equal(saved.status, 0, saved.stderr.toString());
  assert.ok(saved.stdout.length > 100_000);
  const dst = sandbox('kiln-xfer-stdin-');
  try {
    const r = dst.kiln(['load'], { input: saved.stdout });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.match(r.stdout, /^Loaded image: localhost\/a:1$/m);
    assert.deepEqual(Object.keys(imagesOf(dst)), [ids.a]);
  } finally {
    dst.cleanup();
  }
});

test('an image saved by ID has no names; pushing to a bad destination leaves nothing', () => {
  const out = path.join(src.dir, 'by-id.tar');
  src.ok(['save', '-o', out, ids.a!.slice(0, 12)]);
  const dst = sandbox('kiln-xfer-id-');
  try {
    assert.match(dst.ok(['load', '-i', out]), new RegExp(`Loaded image: sha256:${ids.a}`));
    assert.deepEqual(imagesOf(dst), { [ids.a!]: [] });
  } finally {
    dst.cleanup();
  }
  const bad = src.kiln(['push', 'a:1', 'docker://localhost:5000/a']);
  assert.equal(bad.status, 125);
  assert.match(bad.stderr, /docker:\/\//);
  const missingParent = path.join(src.dir, 'no', 'such', 'dir', 'x.tar');
  const r = src.kiln(['save', '-o', missingParent, 'a:1']);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /no\/such\/dir/);
  assert.equal(fs.existsSync(path.join(src.dir, 'no')), false, 'nothing half-written');
  const colon = src.kiln(['save', '-o', path.join(src.dir, 'a:b.tar'), 'a:1']);
  assert.equal(colon.status, 125);
  assert.match(colon.stderr, /invalid filename \(should not contain ':'\)/);
  assert.equal(fs.existsSync(path.join(src.dir, 'a')), false, 'nothing written to the part before the colon');
  const fmt = src.kiln(['save', '--format', 'tarball', '-o', out, 'a:1']);
  assert.equal(fmt.status, 125);
  assert.match(fmt.stderr, /--format "tarball": unknown format/);
});
