/**
 * Hostile layers through the whole CLI: `kiln import` of a hostile rootfs tarball (extracted in
 * the CLI process) and `kiln load` of an image whose layer is hostile (extracted on the worker
 * pool: the error must cross the worker boundary intact). Both are refused with the entry named
 * and leave the store exactly as it was.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { writeBusyboxRootfs } from '../src/base/busybox-rootfs';
import { sandbox, REPO, type Sandbox } from './helpers/env';

let sb: Sandbox;
const HOSTILE = path.join(REPO, 'fixtures', 'tars', 'hostile');

before(() => {
  sb = sandbox('kiln-hostile-');
});
after(() => sb.cleanup());

function storeIsEmpty(): void {
  assert.equal(sb.ok(['images', '-q']).trim(), '');
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
  for (const d of ['layers', 'l', path.join('blobs', 'sha256'), 'tmp']) assert.deepEqual(fs.readdirSync(path.join(sb.root, d)), [], d);
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** An OCI layout dir with one image whose only layer is `layer` (digests all correct). */
function layoutWithLayer(dir: string, layer: Buffer): void {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer) => {
    const d = sha(b);
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(layer)] } }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: put(layer), size: layer.length }],
    }),
  );
  const md = put(manifest);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(
    path.join(dir, 'index.json'),
    JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': 'localhost/evil:latest' } }] }),
  );
}

for (const [fixture, entry] of [
  ['symlink-write-through.tar', /lnk\/|lnk/],
  ['dotdot.tar', /\.\./],
  ['hardlink-absolute.tar', /hardlink|link/],
] as const) {
  test(`import refuses ${fixture} and stores nothing`, () => {
    const r = sb.kiln(['import', path.join(HOSTILE, fixture), 'evil']);
    assert.equal(r.status, 125, r.stderr);
    assert.match(r.stderr, /^Error: /);
    assert.match(r.stderr, entry);
    assert.match(r.stderr, new RegExp(`import ${HOSTILE.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/${fixture.replace('.', '\\.')}`));
    storeIsEmpty();
  });
}

test('an image with a hostile layer is refused at extraction (first use) with the entry named; nothing is extracted', () => {
  const dir = path.join(sb.dir, 'evil-layout');
  layoutWithLayer(dir, fs.readFileSync(path.join(HOSTILE, 'symlink-write-through.tar')));
  // load stores the verified blob and records the layer unextracted (store-deferred-pull.test.ts)
  const loaded = sb.kiln(['load', '-i', dir]);
  assert.equal(loaded.status, 0, loaded.stderr);
  const id = sb.ok(['images', '-q']).trim();
  const r = sb.kiln(['image', 'mount', id]);
  assert.equal(r.status, 125, r.stderr);
  assert.match(r.stderr, /^Error: layer [0-9a-f]{12} \(blob sha256:[0-9a-f]{64}\): .*(symlink|lnk)/, 'the error names the layer, its blob and the entry');
  assert.deepEqual(fs.readdirSync(path.join(sb.root, 'layers')), [], 'nothing was extracted');
  sb.ok(['rmi', id]);
  storeIsEmpty();
});

test('truncated or foreign-compressed tarballs fail promptly, naming the file, and store nothing', async () => {
  const plain = path.join(sb.dir, 'rootfs.tar');
  await writeBusyboxRootfs(plain);
  const gz = gzipSync(fs.readFileSync(plain));
  const cases: [string, Buffer, RegExp][] = [
    ['cut.tar.gz', gz.subarray(0, 20_000), /unexpected end of file/],
    ['cut-inside.tar.gz', gzipSync(fs.readFileSync(plain).subarray(0, 30_000)), /malformed tar|Unexpected end of data/],
    ['rootfs.tar.xz', Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(100)]), /xz-compressed/],
  ];
  for (const [name, data, why] of cases) {
    const file = path.join(sb.dir, name);
    fs.writeFileSync(file, data);
    const r = sb.kiln(['import', file, 'broken']);
    assert.equal(r.status, 125, `${name}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^Error: import ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `), name);
    assert.match(r.stderr, why, name);
    storeIsEmpty();
  }
});

test('a FIFO planted in a layout is refused, not waited on', () => {
  const dir = path.join(sb.dir, 'fifo-layout');
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const mk = require('node:child_process').spawnSync('mkfifo', [path.join(dir, 'index.json')]);
  assert.equal(mk.status, 0);
  const r = sb.kiln(['load', '-i', dir]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /index\.json: not a regular file/);
  storeIsEmpty();
});
