/**
 * Layer mounts: read-only overlays of an image's layer chain with reference counts. A
 * two-layer image whose upper layer whites out a file and makes a directory opaque mounts
 * with the lower content hidden (the real kernel overlay reads our layer dirs); holds are
 * counted; rmi refuses a mounted image; a hold of a killed process is dropped and unmounted
 * by the next write.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { once } from 'node:events';
import * as tarStream from 'tar-stream';
import { sandbox, REPO, type Sandbox } from './helpers/env';
import { isMountPoint } from '../src/store/mounts';

let sb: Sandbox;
before(() => {
  sb = sandbox('kiln-mounts-');
});
after(() => {
  sb.kiln(['image', 'unmount', '--all']);
  sb.cleanup();
});

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function tar(entries: { name: string; type?: 'file' | 'directory'; body?: string }[]): Promise<Buffer> {
  const pack = tarStream.pack();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', mode: e.type === 'directory' ? 0o755 : 0o644 }, e.body ?? '');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

const MT_LAYER = { none: 'application/vnd.oci.image.layer.v1.tar', gzip: 'application/vnd.oci.image.layer.v1.tar+gzip', zstd: 'application/vnd.oci.image.layer.v1.tar+zstd' };

/**
 * Writes an OCI layout with one image made of `layers` (plain tars), named `name`, each layer
 * stored with the compression given in `compress` (default none).
 */
function layout(dir: string, layers: Buffer[], name: string, compress: ('none' | 'gzip' | 'zstd')[] = []): void {
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer) => {
    const d = sha(b);
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: layers.map(sha) } }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(config), size: config.length },
    layers: layers.map((l, i) => {
      const c = compress[i] ?? 'none';
      const blob = c === 'gzip' ? gzipSync(l) : c === 'zstd' ? (spawnSync('zstd', ['-q', '-c'], { input: l }).stdout as Buffer) : l;
      return { mediaType: MT_LAYER[c], digest: put(blob), size: blob.length };
    }),
  }));
  const md = put(manifest);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': name } }] }));
}

test('a two-layer image mounts with whiteouts and opaque dirs applied by the kernel', async () => {
  const lower = await tar([
    { name: 'keep.txt', body: 'kept' },
    { name: 'gone.txt', body: 'should be hidden' },
    { name: 'opq/', type: 'directory' },
    { name: 'opq/old.txt', body: 'hidden by the opaque dir' },
  ]);
  const upper = await tar([
    { name: '.wh.gone.txt' },
    { name: 'opq/', type: 'directory' },
    { name: 'opq/.wh..wh..opq' },
    { name: 'opq/new.txt', body: 'new' },
  ]);
  const dir = path.join(sb.dir, 'two-layers');
  layout(dir, [lower, upper], 'localhost/two:latest');
  sb.ok(['load', '-i', dir]);
  const mnt = sb.ok(['image', 'mount', 'two']).trim();
  assert.ok(isMountPoint(mnt), `${mnt} is a mount point`);
  assert.equal(fs.readFileSync(path.join(mnt, 'keep.txt'), 'utf8'), 'kept');
  assert.equal(fs.existsSync(path.join(mnt, 'gone.txt')), false, 'the whiteout hides gone.txt');
  assert.deepEqual(fs.readdirSync(path.join(mnt, 'opq')), ['new.txt'], 'the opaque dir hides the lower contents');
  assert.throws(() => fs.writeFileSync(path.join(mnt, 'x'), 'x'), /EROFS/);

  // a second hold shares the mount; rmi refuses while mounted
  assert.equal(sb.ok(['image', 'mount', 'two']).trim(), mnt);
  assert.match(sb.ok(['image', 'mount']), new RegExp(`^[a-f0-9]{12}  ${mnt}$`, 'm'));
  const rmi = sb.kiln(['rmi', 'two']);
  assert.equal(rmi.status, 2);
  assert.match(rmi.stderr, /is mounted at/);
  sb.ok(['image', 'unmount', 'two']);
  assert.ok(isMountPoint(mnt), 'still held once');
  sb.ok(['image', 'unmount', 'two']);
  assert.equal(isMountPoint(mnt), false);
  assert.equal(fs.existsSync(mnt), false);
  sb.ok(['rmi', 'two']);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
});

test('small gzip and zstd layers (one read chunk each) load and mount with their content', async () => {
  assert.equal(spawnSync('sh', ['-c', 'command -v zstd']).status, 0, 'zstd is not installed: apt-get install -y zstd (or run scripts/setup.sh)');
  const l1 = await tar([{ name: 'from-gzip.txt', body: 'g' }]);
  const l2 = await tar([{ name: 'from-zstd.txt', body: 'z' }]);
  const dir = path.join(sb.dir, 'compressed');
  layout(dir, [l1, l2], 'localhost/compressed:latest', ['gzip', 'zstd']);
  sb.ok(['load', '-i', dir]);
  const inspect = JSON.parse(sb.ok(['inspect', 'compressed'])) as Array<{ RootFS: { Layers: string[] } }>;
  assert.deepEqual(inspect[0]!.RootFS.Layers, [sha(l1), sha(l2)], 'diffIDs are the plain tars');
  const mnt = sb.ok(['image', 'mount', 'compressed']).trim();
  try {
    assert.equal(fs.readFileSync(path.join(mnt, 'from-gzip.txt'), 'utf8'), 'g');
    assert.equal(fs.readFileSync(path.join(mnt, 'from-zstd.txt'), 'utf8'), 'z');
  } finally {
    sb.ok(['image', 'unmount', 'compressed']);
  }
  sb.ok(['rmi', 'compressed']);
});

test("a killed process's mount hold is dropped and unmounted by the next write", async () => {
  const layer = await tar([{ name: 'a.txt', body: 'a' }]);
  const dir = path.join(sb.dir, 'one-layer');
  layout(dir, [layer], 'localhost/one:latest');
  sb.ok(['load', '-i', dir]);
  const script = `
    const { Store } = require(${JSON.stringify(path.join(REPO, 'dist', 'src', 'store', 'store.js'))});
    const { selfOwner } = require(${JSON.stringify(path.join(REPO, 'dist', 'src', 'util', 'proc.js'))});
    const s = Store.open({ root: ${JSON.stringify(sb.root)}, runroot: ${JSON.stringify(sb.runroot)} });
    const img = s.images.resolve('one');
    s.layers.ensureChain(img.topLayer).then(() => {
      console.log(s.mounts.mount(img.topLayer, selfOwner()));
      setInterval(() => {}, 1000);
    });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(child.stdout!, 'data')) as [Buffer];
  const mnt = line.toString().trim();
  assert.ok(isMountPoint(mnt));
  child.kill('SIGKILL');
  await once(child, 'exit');
  assert.ok(isMountPoint(mnt), 'a killed process cannot unmount');
  sb.ok(['tag', 'one', 'one-again']); // any write notices the dead process
  assert.equal(isMountPoint(mnt), false);
  sb.ok(['rmi', 'one', 'one-again']);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
});
