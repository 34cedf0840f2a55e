/**
 * Pulled and loaded layers are recorded deferred (transports/storage.ts, store/layer-blobs.ts):
 * the blob is stored and its diffID computed while it streams in, the layer record is written
 * with extracted = 0 and no layer dir, and LayerStore.ensureChain makes the dirs when something
 * first needs the rootfs (image mount, a build FROM the image). A layer whose content does not
 * have the diff_id its config lists is refused by load and pull with nothing left behind; one
 * altered in the store after the fact, or a hostile tar, fails at extraction. Also: save and rmi never need the
 * dirs, concurrent first mounts agree, a killed extraction's debris is repaired, and a layer the
 * store has (same chain) is reused whatever blob it came from.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { REPO, busyboxTar, requireTool, run, sandbox, spawnKiln, type Sandbox } from './helpers/env';
import { makeTar } from './helpers/oci-build';
import { startRegistry, type TestRegistry } from './helpers/registry';
import { buildImage, withMounted } from './helpers/build';
import { sha256, type Digest } from '../src/util/digest';
import { Store } from '../src/store/store';
import { Lease } from '../src/store/lease';
import { putLayerBlob } from '../src/store/layer-blobs';
import type { LayerRecord } from '../src/store/layers';
import { isKilnError } from '../src/errors';
import { closePool } from '../src/util/pool';

type Compression = 'none' | 'gzip' | 'zstd';
const MT_LAYER: Record<Compression, string> = {
  none: 'application/vnd.oci.image.layer.v1.tar',
  gzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  zstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
};

const boxes: Sandbox[] = [];
let reg: TestRegistry | undefined;

before(() => {
  requireTool('zstd');
});

after(async () => {
  for (const sb of boxes) {
    sb.kiln(['image', 'unmount', '--all']);
    sb.cleanup();
  }
  await reg?.stop();
  await closePool();
});

function box(prefix = 'kiln-deferred-'): Sandbox {
  const sb = sandbox(prefix);
  boxes.push(sb);
  return sb;
}

function compress(tar: Buffer, c: Compression): Buffer {
  if (c === 'gzip') return gzipSync(tar);
  if (c === 'zstd') return spawnSync('zstd', ['-q', '-c'], { input: tar }).stdout as Buffer;
  return tar;
}

/**
 * Writes an OCI layout holding one image `name` made of `layers` (plain tars, each stored with
 * its compression); `diffIDs` overrides what the config lists (default: the real ones);
 * `label` makes the config (and so the image) distinct. Returns the blob digests of the layers.
 */
function writeLayout(dir: string, name: string, layers: { tar: Buffer; c: Compression }[], opts: { diffIDs?: Digest[]; label?: string } = {}): Digest[] {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer): Digest => {
    const d = sha256(b);
    fs.writeFileSync(path.join(dir, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const blobs = layers.map((l) => compress(l.tar, l.c));
  const diffIDs = opts.diffIDs ?? layers.map((l) => sha256(l.tar));
  const config = Buffer.from(JSON.stringify({
    architecture: 'amd64', os: 'linux', config: { Cmd: ['/bin/sh'], Labels: { label: opts.label ?? 'x' } },
    rootfs: { type: 'layers', diff_ids: diffIDs },
  }));
  const manifest = Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: put(config), size: config.length },
    layers: blobs.map((b, i) => ({ mediaType: MT_LAYER[layers[i]!.c], digest: put(b), size: b.length })),
  }));
  const md = put(manifest);
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: md, size: manifest.length, annotations: { 'org.opencontainers.image.ref.name': name } }],
  }));
  return blobs.map(sha256);
}

/** The layer records of an image, bottom first, read from the store in this process. */
function layersOf(sb: Sandbox, image: string): LayerRecord[] {
  const store = Store.open({ root: sb.root, runroot: sb.runroot });
  try {
    const out: LayerRecord[] = [];
    for (let cur = store.images.resolve(image).topLayer; cur !== null; ) {
      const l = store.layers.require(cur);
      out.unshift(l);
      cur = l.parent;
    }
    return out;
  } finally {
    store.close();
  }
}

function layerCount(sb: Sandbox): number {
  const store = Store.open({ root: sb.root, runroot: sb.runroot });
  try {
    return (store.db.prepare('SELECT count(*) AS n FROM layers').get() as { n: number }).n;
  } finally {
    store.close();
  }
}

const ls = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

function assertDeferred(sb: Sandbox, image: string): LayerRecord[] {
  const layers = layersOf(sb, image);
  assert.ok(layers.length > 0);
  for (const l of layers) {
    assert.equal(l.extracted, 0, `layer ${l.id.slice(0, 12)} of ${image} is recorded unextracted`);
    assert.equal(fs.existsSync(path.join(sb.root, 'layers', l.id)), false, `layer ${l.id.slice(0, 12)} has no dir yet`);
  }
  return layers;
}

function assertExtracted(sb: Sandbox, image: string): void {
  for (const l of layersOf(sb, image)) {
    assert.equal(l.extracted, 1, `layer ${l.id.slice(0, 12)} of ${image} is extracted`);
    assert.ok(fs.statSync(path.join(sb.root, 'layers', l.id, 'diff')).isDirectory());
  }
}

/** The store holds nothing at all: no image, blob, layer dir, link or record, and checks clean. */
function assertEmptyStore(sb: Sandbox): void {
  assert.equal(sb.ok(['images', '-q']), '');
  assert.deepEqual(ls(path.join(sb.root, 'blobs', 'sha256')), []);
  assert.deepEqual(ls(path.join(sb.root, 'layers')), []);
  assert.deepEqual(ls(path.join(sb.root, 'l')), []);
  assert.equal(layerCount(sb), 0);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
}

async function threeLayers(): Promise<{ tar: Buffer; c: Compression }[]> {
  return [
    { tar: await makeTar({ 'etc/base.txt': 'base\n', 'gone.txt': 'whited out above\n' }), c: 'none' },
    { tar: await makeTar({ 'data/gz.txt': 'from gzip\n', '.wh.gone.txt': '' }), c: 'gzip' },
    { tar: await makeTar({ 'data/zst.txt': 'from zstd\n' }), c: 'zstd' },
  ];
}

test('load records plain, gzip and zstd layers unextracted; save needs no dirs; image mount makes them with their content; rmi leaves nothing', async () => {
  const sb = box();
  const layers = await threeLayers();
  const src = path.join(sb.dir, 'three');
  const blobDigests = writeLayout(src, 'localhost/three:1', layers);
  sb.ok(['load', '-i', src]);

  const recs = assertDeferred(sb, 'three:1');
  assert.deepEqual(recs.map((l) => l.diffID), layers.map((l) => sha256(l.tar)), 'the records carry the verified diffIDs');
  assert.deepEqual(recs.map((l) => l.uncompressedSize), layers.map((l) => l.tar.length), 'and the uncompressed sizes');
  assert.deepEqual(recs.map((l) => l.blobDigest), blobDigests);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');

  // save reads blobs only: the layers stay deferred and the blobs are the ones loaded
  const out = path.join(sb.dir, 'saved');
  sb.ok(['save', '--format', 'oci-dir', '-o', out, 'three:1']);
  for (const d of blobDigests) assert.ok(fs.readFileSync(path.join(out, 'blobs', 'sha256', d.slice(7))).equals(fs.readFileSync(path.join(src, 'blobs', 'sha256', d.slice(7)))));
  assertDeferred(sb, 'three:1');

  await withMounted(sb, 'three:1', (root) => {
    assert.equal(fs.readFileSync(path.join(root, 'etc/base.txt'), 'utf8'), 'base\n');
    assert.equal(fs.readFileSync(path.join(root, 'data/gz.txt'), 'utf8'), 'from gzip\n');
    assert.equal(fs.readFileSync(path.join(root, 'data/zst.txt'), 'utf8'), 'from zstd\n');
    assert.equal(fs.existsSync(path.join(root, 'gone.txt')), false, 'the whiteout of layer 2 applies');
  });
  assertExtracted(sb, 'three:1');
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');

  sb.ok(['rmi', 'three:1']);
  assertEmptyStore(sb);

  // an image removed before anything extracted it leaves nothing either
  sb.ok(['load', '-i', src]);
  assertDeferred(sb, 'three:1');
  sb.ok(['rmi', 'three:1']);
  assertEmptyStore(sb);
});

test('load refuses a layer whose content does not have its config diff_id (plain, gzip, zstd), leaving nothing behind and the store as it was', async () => {
  const sb = box();
  const layers = await threeLayers();
  const wrong = sha256(Buffer.from('not the layer'));
  // an image sharing layer 1 is already stored: the refused load must not take it away
  const good = path.join(sb.dir, 'good');
  writeLayout(good, 'localhost/good:1', [layers[0]!]);
  sb.ok(['load', '-i', good]);
  const before = { blobs: ls(path.join(sb.root, 'blobs', 'sha256')), links: ls(path.join(sb.root, 'l')), layers: layerCount(sb) };

  for (const [i, c] of (['none', 'gzip', 'zstd'] as const).entries()) {
    const dir = path.join(sb.dir, `bad-${c}`);
    const diffIDs = layers.map((l) => sha256(l.tar));
    diffIDs[i] = wrong;
    const blobs = writeLayout(dir, `localhost/bad-${c}:1`, layers, { diffIDs });
    const r = sb.kiln(['load', '-i', dir]);
    assert.equal(r.status, 125, r.stderr);
    assert.match(r.stderr, new RegExp(`layer ${i + 1} \\(${blobs[i]}\\): the layer's uncompressed content has digest ${sha256(layers[i]!.tar)}, but the image config lists diff_id ${wrong}`));
    assert.equal(sb.kiln(['image', 'exists', `localhost/bad-${c}:1`]).status, 1);
    assert.deepEqual(ls(path.join(sb.root, 'blobs', 'sha256')), before.blobs, `${c}: no blob of the refused image stays`);
    assert.deepEqual(ls(path.join(sb.root, 'l')), before.links);
    assert.equal(layerCount(sb), before.layers, `${c}: no layer record of the refused image stays`);
    assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
  }
  assert.equal(sb.ok(['images', '-q']).trim().split('\n').length, 1);
  await withMounted(sb, 'good:1', (root) => assert.equal(fs.readFileSync(path.join(root, 'etc/base.txt'), 'utf8'), 'base\n'));
});

test('a layer the store has (same chain) is reused whatever blob it arrives as: no new record, both images mount', async () => {
  const sb = box();
  const layers = await threeLayers();
  const plain = path.join(sb.dir, 'plain');
  writeLayout(plain, 'localhost/plain:1', layers.map((l) => ({ ...l, c: 'none' as const })));
  sb.ok(['load', '-i', plain]);
  assert.equal(layerCount(sb), 3);
  const gz = path.join(sb.dir, 'gz');
  writeLayout(gz, 'localhost/gz:1', layers.map((l) => ({ ...l, c: 'gzip' as const })), { label: 'other' });
  sb.ok(['load', '-i', gz]);
  assert.equal(layerCount(sb), 3, 'the gzip image reuses the three layer records');
  assert.deepEqual(layersOf(sb, 'gz:1').map((l) => l.id), layersOf(sb, 'plain:1').map((l) => l.id));
  for (const img of ['plain:1', 'gz:1']) await withMounted(sb, img, (root) => assert.equal(fs.readFileSync(path.join(root, 'data/zst.txt'), 'utf8'), 'from zstd\n'));
  // the gzip blobs belong to their image: removing the plain one keeps them and the layers
  sb.ok(['rmi', 'plain:1']);
  await withMounted(sb, 'gz:1', (root) => assert.equal(fs.readFileSync(path.join(root, 'data/gz.txt'), 'utf8'), 'from gzip\n'));
  sb.ok(['rmi', 'gz:1']);
  assertEmptyStore(sb);
});

test('a deferred layer whose blob was altered in the store fails clearly at extraction and stays deferred', async () => {
  const sb = box();
  const tar = await makeTar({ 'msg.txt': 'original content\n' });
  const dir = path.join(sb.dir, 'one');
  const [digest] = writeLayout(dir, 'localhost/one:1', [{ tar, c: 'none' }]);
  sb.ok(['load', '-i', dir]);
  const blobFile = path.join(sb.root, 'blobs', 'sha256', digest!.slice(7));
  const bytes = fs.readFileSync(blobFile);
  const at = bytes.indexOf('original');
  bytes.write('ORIGINAL', at); // same size, still a valid tar: only the diffID tells
  fs.chmodSync(blobFile, 0o644);
  fs.writeFileSync(blobFile, bytes);
  const r = sb.kiln(['image', 'mount', 'one:1']);
  assert.equal(r.status, 125, r.stderr);
  assert.match(r.stderr, new RegExp(`layer [0-9a-f]{12} \\(blob ${digest}\\) \\(uncompressed\\): digest mismatch: expected ${sha256(tar)}, got ${sha256(bytes)}`));
  assertDeferred(sb, 'one:1');
  assert.deepEqual(ls(path.join(sb.root, 'layers')), [], 'nothing half-extracted stays');
});

test('a hostile layer is stored deferred and refused where it is extracted, naming the entry; nothing is extracted and rmi leaves nothing', async () => {
  const sb = box();
  const evil = fs.readFileSync(path.join(REPO, 'fixtures', 'tars', 'hostile', 'symlink-write-through.tar'));
  const dir = path.join(sb.dir, 'evil');
  writeLayout(dir, 'localhost/evil:1', [{ tar: await makeTar({ 'ok.txt': 'fine\n' }), c: 'gzip' }, { tar: evil, c: 'none' }]);
  sb.ok(['load', '-i', dir]);
  assertDeferred(sb, 'evil:1');
  const r = sb.kiln(['image', 'mount', 'evil:1']);
  assert.equal(r.status, 125, r.stderr);
  assert.match(r.stderr, /^Error: layer [0-9a-f]{12} .*(symlink|lnk)/m);
  const [lower, upper] = layersOf(sb, 'evil:1');
  assert.equal(upper!.extracted, 0, 'the hostile layer stays deferred');
  assert.deepEqual(ls(path.join(sb.root, 'layers')), lower!.extracted ? [lower!.id] : [], 'only a sound layer may have been made');
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
  sb.ok(['rmi', 'evil:1']);
  assertEmptyStore(sb);
});

test('debris of a killed extraction (a dir of a layer not extracted yet) is reported, repaired, and the layer is then made', async () => {
  const sb = box();
  const tar = await makeTar({ 'msg.txt': 'hello\n' });
  const dir = path.join(sb.dir, 'one');
  writeLayout(dir, 'localhost/one:1', [{ tar, c: 'gzip' }]);
  sb.ok(['load', '-i', dir]);
  const [l] = assertDeferred(sb, 'one:1');
  const debris = path.join(sb.root, 'layers', l!.id, 'diff');
  fs.mkdirSync(debris, { recursive: true });
  fs.writeFileSync(path.join(debris, 'half-written'), 'x');
  const chk = sb.kiln(['system', 'check']);
  assert.equal(chk.status, 125);
  assert.match(chk.stdout, new RegExp(`layer dir .*${l!.id} of a layer not extracted yet`));
  sb.ok(['system', 'check', '--repair']);
  assert.equal(fs.existsSync(path.join(sb.root, 'layers', l!.id)), false);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
  await withMounted(sb, 'one:1', (root) => {
    assert.equal(fs.readFileSync(path.join(root, 'msg.txt'), 'utf8'), 'hello\n');
    assert.equal(fs.existsSync(path.join(root, 'half-written')), false);
  });
  assertExtracted(sb, 'one:1');
});

test('two processes mounting a deferred image at once both get its content; the layers are made once', async () => {
  const sb = box();
  const layers = await threeLayers();
  const dir = path.join(sb.dir, 'three');
  writeLayout(dir, 'localhost/three:1', layers);
  sb.ok(['load', '-i', dir]);
  assertDeferred(sb, 'three:1');
  const mountOnce = (): Promise<{ code: number | null; out: string; err: string }> => new Promise((resolve) => {
    const c = spawnKiln(sb, ['image', 'mount', 'three:1']);
    let out = '';
    let err = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    c.on('close', (code) => resolve({ code, out: out.trim(), err }));
  });
  const [a, b] = await Promise.all([mountOnce(), mountOnce()]);
  assert.equal(a.code, 0, a.err);
  assert.equal(b.code, 0, b.err);
  assert.equal(a.out, b.out);
  assert.equal(fs.readFileSync(path.join(a.out, 'data/gz.txt'), 'utf8'), 'from gzip\n');
  sb.ok(['image', 'unmount', 'three:1']);
  sb.ok(['image', 'unmount', 'three:1']);
  assertExtracted(sb, 'three:1');
  assert.deepEqual(ls(path.join(sb.root, 'layers')), layersOf(sb, 'three:1').map((l) => l.id).sort());
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
});

test('pull records registry layers unextracted, fetches a stored layer again never, and a build FROM the image makes them', async () => {
  requireTool('skopeo');
  reg ??= await startRegistry();
  const sb = box();
  const rootfs = fs.readFileSync(await busyboxTar(sb.dir));
  const data = await makeTar({ 'data/msg.txt': 'pulled, then built on\n' });
  const src = path.join(sb.dir, 'base');
  writeLayout(src, 'localhost/base:1', [{ tar: rootfs, c: 'gzip' }, { tar: data, c: 'zstd' }]);
  const ref = `${reg.host}/deferred/base`;
  run('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--preserve-digests', `oci:${src}`, `docker://${ref}:1`]);
  run('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--preserve-digests', `oci:${src}`, `docker://${ref}:2`]);

  sb.ok(['pull', '-q', '--tls-verify=false', `${ref}:1`]);
  const recs = assertDeferred(sb, `${ref}:1`);
  assert.deepEqual(recs.map((l) => l.diffID), [sha256(rootfs), sha256(data)]);

  // the same layers under another tag: every blob is skipped, nothing is recorded again
  const again = sb.kiln(['pull', '--tls-verify=false', `${ref}:2`]);
  assert.equal(again.status, 0, again.stderr);
  const copied = again.stderr.split('\n').filter((l) => /^Copying blob sha256:[0-9a-f]{64}$/.test(l));
  assert.deepEqual(copied, [], `no layer blob is fetched again:\n${again.stderr}`);
  assert.equal((again.stderr.match(/Copying blob sha256:[0-9a-f]{64} skipped: already exists/g) ?? []).length, 2, again.stderr);
  assert.equal(layerCount(sb), 2);
  assertDeferred(sb, `${ref}:2`);

  buildImage(sb, 'localhost/built:1', `FROM ${ref}:1\nRUN cat /data/msg.txt > /built.txt\n`);
  assertExtracted(sb, `${ref}:1`);
  await withMounted(sb, 'localhost/built:1', (root) => assert.equal(fs.readFileSync(path.join(root, 'built.txt'), 'utf8'), 'pulled, then built on\n'));
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
});

test('pull refuses an image whose config lies about a diff_id, leaving nothing behind', async () => {
  requireTool('skopeo');
  reg ??= await startRegistry();
  const sb = box();
  const ok = await makeTar({ 'a.txt': 'a\n' });
  const lied = await makeTar({ 'b.txt': 'b\n' });
  const src = path.join(sb.dir, 'liar');
  const wrong = sha256(Buffer.from('something else'));
  const blobs = writeLayout(src, 'localhost/liar:1', [{ tar: ok, c: 'gzip' }, { tar: lied, c: 'gzip' }], { diffIDs: [sha256(ok), wrong] });
  const ref = `${reg.host}/deferred/liar:1`;
  run('skopeo', ['copy', '-q', '--dest-tls-verify=false', '--preserve-digests', `oci:${src}`, `docker://${ref}`]);
  const r = sb.kiln(['pull', '-q', '--tls-verify=false', ref]);
  assert.equal(r.status, 125, r.stderr);
  assert.match(r.stderr, new RegExp(`layer 2 \\(${blobs[1]}\\): the layer's uncompressed content has digest ${sha256(lied)}, but the image config lists diff_id ${wrong}`));
  assertEmptyStore(sb);
});

test('putLayerBlob: the diffID is right however the stream is cut; corrupt or xz data is refused and nothing is stored', async () => {
  const sb = box();
  const store = Store.open({ root: sb.root, runroot: sb.runroot });
  try {
    const lease = Lease.create(store);
    const tar = await makeTar({ 'x.txt': 'x'.repeat(100_000) });
    const cuts = (b: Buffer, sizes: number[]): Buffer[] => {
      const out: Buffer[] = [];
      let at = 0;
      for (const s of sizes) if (at < b.length) out.push(b.subarray(at, (at += s)));
      if (at < b.length) out.push(b.subarray(at));
      return out;
    };
    for (const c of ['none', 'gzip', 'zstd'] as const) {
      const blob = compress(tar, c);
      for (const sizes of [[1, 1, 1, 1, 1], [3, 4096], [blob.length]]) {
        const r = await putLayerBlob(store, Readable.from(cuts(blob, sizes)), lease, { digest: sha256(blob), size: blob.length, mediaType: MT_LAYER[c] });
        assert.deepEqual({ diffID: r.diffID, tarSize: r.tarSize, digest: r.blob.digest }, { diffID: sha256(tar), tarSize: tar.length, digest: sha256(blob) }, `${c} cut ${sizes.join(',')}`);
      }
    }
    const tiny = Buffer.from('abc');
    assert.equal((await putLayerBlob(store, Readable.from([tiny]), lease, {})).diffID, sha256(tiny), 'a blob shorter than the sniffed head is plain');

    const gz = gzipSync(tar);
    const corrupt = Buffer.concat([gz.subarray(0, 200), Buffer.alloc(500, 0xff), gz.subarray(700)]);
    const xz = Buffer.concat([Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), Buffer.alloc(100)]);
    const before = ls(path.join(sb.root, 'blobs', 'sha256'));
    await assert.rejects(putLayerBlob(store, Readable.from([corrupt]), lease, { what: 'corrupt layer' }), (e: unknown) => isKilnError(e, 'E_BAD_ARCHIVE') && /corrupt layer/.test((e as Error).message));
    await assert.rejects(putLayerBlob(store, Readable.from(cuts(xz, [2, 2, 2])), lease, {}), (e: unknown) => isKilnError(e, 'E_UNSUPPORTED'));
    await assert.rejects(putLayerBlob(store, Readable.from([gz]), lease, { digest: sha256(tar) }), (e: unknown) => isKilnError(e, 'E_DIGEST_MISMATCH'));
    assert.deepEqual(ls(path.join(sb.root, 'blobs', 'sha256')), before, 'no refused blob is stored');
    assert.deepEqual(ls(store.workDir()).filter((n) => n.startsWith('blob-')), [], 'no temp file stays');
    lease.release(true);
  } finally {
    store.close();
  }
  assertEmptyStore(sb);
});
