/**
 * The file transports (oci:, oci-archive:, docker-archive:, dir:) and reference parsing: round
 * trips through our Destination and Source, and skopeo / umoci / podman as oracles reading what we
 * write and writing what we read. Every test works in its own temp dir (podman's storage too) and
 * removes it. Missing tools fail the test with the package to install.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { describe, test } from 'node:test';
import { isKilnError, type ErrorCode } from '../src/errors';
import { MT } from '../src/image/oci';
import { sha256, type Digest } from '../src/util/digest';
import { parseImageReference } from '../src/transports/parse';
import { TarArchive, writeTarFile } from '../src/transports/tarutil';
import { writeVerifiedTemp } from '../src/util/blobfile';
import type { ImageReference, SourceImage } from '../src/transports/types';
import { buildImage, putSynthetic, readAll, type SyntheticImage } from './helpers/oci-build';

async function withTmp(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'kiln-transports-'));
  try {
    await fn(dir);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

function tool(name: string): string {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'pipe' });
  } catch {
    assert.fail(`${name} is not installed: install it: apt-get install ${name}`);
  }
  return name;
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync(tool(cmd), args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env });
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr ?? err.message}`);
  }
}

const ref = (s: string): ImageReference => parseImageReference(s);

async function write(r: string, imgs: { img: SyntheticImage; names?: string[] }[]): Promise<void> {
  const dest = await ref(r).newDestination();
  try {
    for (const { img, names } of imgs) await putSynthetic(dest, img, names ?? []);
  } catch (e) {
    await dest.abort();
    throw e;
  }
  await dest.commit();
}

interface ReadBack {
  names: string[];
  manifest: { bytes: Buffer; digest: Digest; mediaType: string };
  parsed: { config: { digest: Digest; mediaType: string }; layers: { digest: Digest; size: number; mediaType: string }[] };
  blobs: Map<Digest, Buffer>;
}

async function readImage(img: SourceImage): Promise<ReadBack> {
  const manifest = await img.manifest();
  assert.equal(sha256(manifest.bytes), manifest.digest);
  const parsed = JSON.parse(manifest.bytes.toString()) as ReadBack['parsed'];
  const blobs = new Map<Digest, Buffer>();
  for (const d of [parsed.config, ...parsed.layers]) {
    const bytes = await readAll(await img.getBlob({ ...d, size: 0 }));
    assert.equal(sha256(bytes), d.digest, `blob ${d.digest} read back intact`);
    blobs.set(d.digest, bytes);
  }
  return { names: img.names, manifest, parsed, blobs };
}

async function readBack(r: string): Promise<ReadBack[]> {
  const src = await ref(r).newSource();
  try {
    const out: ReadBack[] = [];
    for (const img of await src.images()) out.push(await readImage(img));
    return out;
  } finally {
    await src.close();
  }
}

async function rejectsWith(p: Promise<unknown>, code: ErrorCode, ...mustMention: string[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isKilnError(e, code), `expected ${code}, got ${String(e)}`);
    for (const m of mustMention) assert.ok(e.message.includes(m), `${JSON.stringify(e.message)} should mention ${m}`);
    return true;
  });
}

function flipByte(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, offset);
  b[0]! ^= 0xff;
  fs.writeSync(fd, b, 0, 1, offset);
  fs.closeSync(fd);
}

const TWO_LAYERS: Record<string, string>[] = [{ 'etc/hello.txt': 'hello from kiln\n' }, { 'usr/share/kiln/second': 'layer two\n' }];

describe('parseImageReference', () => {
  test('splits path and name at the first colon, like containers/image', () => {
    const a = ref('oci:/a/b:v1') as unknown as { dir: string; tag?: string };
    assert.deepEqual([a.dir, a.tag], ['/a/b', 'v1']);
    const b = ref('oci:/a/b:example.com/x:1') as unknown as { dir: string; tag?: string };
    assert.deepEqual([b.dir, b.tag], ['/a/b', 'example.com/x:1']);
    assert.equal(ref('oci:rel/dir').toString(), 'oci:rel/dir');
    assert.equal(ref('oci-archive:/x.tar:t').toString(), 'oci-archive:/x.tar:t');
    assert.equal(ref('docker-archive:/x.tar:foo').toString(), 'docker-archive:/x.tar:localhost/foo:latest');
    assert.equal(ref('docker-archive:/x.tar:@2').toString(), 'docker-archive:/x.tar:@2');
    assert.equal(ref('dir:/a:b').toString(), 'dir:/a:b');
  });
  test('local store references and errors', () => {
    const seen: string[] = [];
    const localStore = (n: string) => (seen.push(n), ref('dir:/dummy'));
    for (const s of ['containers-storage:foo', 'kiln-storage:bar:1', 'localhost:5000/x:2', 'docker:latest']) parseImageReference(s, { localStore });
    assert.deepEqual(seen, ['foo', 'bar:1', 'localhost:5000/x:2', 'docker:latest']);
    assert.throws(() => ref('docker-daemon:busybox'), (e: unknown) => isKilnError(e, 'E_UNSUPPORTED'));
    assert.equal(ref('docker://busybox').toString(), 'docker://docker.io/library/busybox:latest');
    for (const bad of ['oci::t', 'oci:', 'oci:/a:bad tag!', 'docker-archive:', 'docker-archive:/x:Foo', 'docker-archive:/x:@z', 'dir:', 'foo']) {
      assert.throws(() => ref(bad), (e: unknown) => isKilnError(e, 'E_INVALID_REFERENCE') && e.message.includes(JSON.stringify(bad)), bad);
    }
  });
});

describe('oci: layout', () => {
  test('round trip; skopeo reads the manifest; umoci unpacks the rootfs', () =>
    withTmp(async (tmp) => {
      const img = await buildImage({ gzip: true, layers: TWO_LAYERS });
      const dir = path.join(tmp, 'layout');
      await write(`oci:${dir}:v1`, [{ img, names: ['localhost/ignored:1'] }]);
      const [got, ...rest] = await readBack(`oci:${dir}:v1`);
      assert.equal(rest.length, 0);
      assert.deepEqual(got!.names, ['v1']);
      assert.ok(got!.manifest.bytes.equals(img.manifest.bytes));
      for (const [d, b] of img.blobs) assert.ok(got!.blobs.get(d)?.equals(b), d);
      assert.equal(run('skopeo', ['inspect', '--raw', `oci:${dir}:v1`]), img.manifest.bytes.toString());
      run('umoci', ['unpack', '--image', `${dir}:v1`, path.join(tmp, 'bundle')]);
      assert.equal(fs.readFileSync(path.join(tmp, 'bundle/rootfs/etc/hello.txt'), 'utf8'), 'hello from kiln\n');
      assert.equal(fs.readFileSync(path.join(tmp, 'bundle/rootfs/usr/share/kiln/second'), 'utf8'), 'layer two\n');
      assert.deepEqual(fs.readdirSync(tmp).sort(), ['bundle', 'layout'], 'no staging left behind');
    }));

  test('adds to an existing layout; a reused name moves like skopeo does', () =>
    withTmp(async (tmp) => {
      const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((label) => buildImage({ label })));
      const dir = path.join(tmp, 'layout');
      await write(`oci:${dir}:first`, [{ img: a! }]);
      await write(`oci:${dir}`, [{ img: b!, names: ['localhost/b:latest'] }]);
      await write(`oci:${dir}:first`, [{ img: c! }]);
      const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: { digest: string; annotations?: object }[] };
      assert.deepEqual(
        index.manifests.map((m) => [m.digest, m.annotations]),
        [[a!.manifest.digest, undefined], [b!.manifest.digest, { 'org.opencontainers.image.ref.name': 'localhost/b:latest' }], [c!.manifest.digest, { 'org.opencontainers.image.ref.name': 'first' }]],
      );
      assert.equal(run('skopeo', ['inspect', '--raw', `oci:${dir}:first`]), c!.manifest.bytes.toString());
      assert.deepEqual((await readBack(`oci:${dir}`)).map((i) => i.names), [[], ['localhost/b:latest'], ['first']]);
      await rejectsWith(readBack(`oci:${dir}:nope`), 'E_IMAGE_UNKNOWN', dir, 'localhost/b:latest, first');
      fs.mkdirSync(path.join(tmp, 'other'));
      fs.writeFileSync(path.join(tmp, 'other/precious'), 'x');
      await rejectsWith(ref(`oci:${tmp}/other`).newDestination(), 'E_TRANSPORT', 'not an OCI image layout');
      assert.deepEqual(fs.readdirSync(path.join(tmp, 'other')), ['precious']);
    }));

  test('reads layouts written by skopeo, and nested indexes resolve to linux/amd64', () =>
    withTmp(async (tmp) => {
      const img = await buildImage({ gzip: true });
      const other = await buildImage({ label: 'arm64' });
      await write(`oci:${tmp}/ours:v1`, [{ img: other }, { img }]); // the later one keeps the name
      run('skopeo', ['copy', '-q', `oci:${tmp}/ours:v1`, `oci:${tmp}/theirs:copied`]);
      const [got] = await readBack(`oci:${tmp}/theirs:copied`);
      assert.equal(got!.manifest.digest, img.manifest.digest);
      const plat = (m: SyntheticImage, architecture: string) => ({ mediaType: MT.ociManifest, digest: m.manifest.digest, size: m.manifest.bytes.length, platform: { architecture, os: 'linux' } });
      const idx = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MT.ociIndex, manifests: [plat(other, 'arm64'), plat(img, 'amd64')] }));
      fs.writeFileSync(path.join(tmp, 'ours/blobs/sha256', sha256(idx).slice(7)), idx);
      const top = { schemaVersion: 2, manifests: [{ mediaType: MT.ociIndex, digest: sha256(idx), size: idx.length, annotations: { 'org.opencontainers.image.ref.name': 'multi' } }] };
      fs.writeFileSync(path.join(tmp, 'ours/index.json'), JSON.stringify(top));
      const [multi] = await readBack(`oci:${tmp}/ours:multi`);
      assert.equal(multi!.manifest.digest, img.manifest.digest);
    }));
});

describe('oci-archive:', () => {
  test('round trip, deterministic output, skopeo reads it and we read skopeo\'s', () =>
    withTmp(async (tmp) => {
      const img = await buildImage({ gzip: true, layers: TWO_LAYERS });
      await write(`oci-archive:${tmp}/a.tar`, [{ img, names: ['localhost/foo:latest'] }]);
      await write(`oci-archive:${tmp}/b.tar`, [{ img, names: ['localhost/foo:latest'] }]);
      assert.ok(fs.readFileSync(`${tmp}/a.tar`).equals(fs.readFileSync(`${tmp}/b.tar`)), 'same input, same bytes');
      assert.deepEqual(fs.readdirSync(tmp).sort(), ['a.tar', 'b.tar']);
      const [got] = await readBack(`oci-archive:${tmp}/a.tar:localhost/foo:latest`);
      assert.deepEqual(got!.names, ['localhost/foo:latest']);
      assert.ok(got!.manifest.bytes.equals(img.manifest.bytes));
      const info = JSON.parse(run('skopeo', ['inspect', `oci-archive:${tmp}/a.tar`])) as { Digest: string; Layers: string[] };
      assert.equal(info.Digest, img.manifest.digest);
      assert.deepEqual(info.Layers, img.layers.map((l) => l.digest));
      run('skopeo', ['copy', '-q', `oci-archive:${tmp}/a.tar`, `oci-archive:${tmp}/s.tar:t`]);
      const [theirs] = await readBack(`oci-archive:${tmp}/s.tar:t`);
      assert.equal(theirs!.manifest.digest, img.manifest.digest);
      assert.deepEqual(theirs!.names, ['t']);
    }));
});

describe('docker-archive:', () => {
  test('round trip; skopeo and podman read it; contents equal podman save', () =>
    withTmp(async (tmp) => {
      const img = await buildImage({ layers: TWO_LAYERS });
      const file = path.join(tmp, 'd.tar');
      await write(`docker-archive:${file}`, [{ img, names: ['foo'] }]);
      const [got] = await readBack(`docker-archive:${file}`);
      assert.deepEqual(got!.names, ['localhost/foo:latest']);
      assert.equal(got!.manifest.mediaType, MT.dockerManifest);
      assert.equal(got!.parsed.config.digest, img.config.digest);
      assert.deepEqual(got!.parsed.layers.map((l) => [l.digest, l.mediaType]), img.diffIDs.map((d) => [d, MT.dockerLayer]));
      for (const [d, b] of img.blobs) assert.ok(got!.blobs.get(d)?.equals(b));
      const info = JSON.parse(run('skopeo', ['inspect', `docker-archive:${file}`])) as { Layers: string[] };
      assert.deepEqual(info.Layers, img.diffIDs);
      run('skopeo', ['copy', '-q', `docker-archive:${file}`, `oci:${tmp}/copied:t`]);
      assert.equal(JSON.parse(run('skopeo', ['inspect', '--raw', `oci:${tmp}/copied:t`])).config.digest, img.config.digest);
      // podman: load ours, save it back, and compare every member.
      const conf = path.join(tmp, 'containers.conf');
      fs.writeFileSync(conf, '[engine]\nruntime = "runc"\n[containers]\ndefault_ulimits = ["nofile=1024:1024","nproc=1000:1000"]\n');
      const env = { ...process.env, CONTAINERS_CONF: conf };
      const pod = (...a: string[]) => run('podman', ['--root', `${tmp}/pm/root`, '--runroot', `${tmp}/pm/run`, '--storage-driver', 'vfs', ...a], env);
      pod('load', '-q', '-i', file);
      assert.match(pod('images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}'), new RegExp(`^localhost/foo:latest ${img.config.digest.slice(7, 19)}`, 'm'));
      pod('save', '-q', '-o', `${tmp}/podman.tar`, 'localhost/foo:latest');
      const members = async (f: string) => {
        const a = await TarArchive.open(f, f);
        try {
          return Object.fromEntries(await Promise.all(a.names().sort().map(async (n) => [n, a.lookup(n) ? sha256(await a.read(a.lookup(n)!, 1 << 24)) : 'link'])));
        } finally {
          await a.close();
        }
      };
      assert.deepEqual(await members(file), await members(`${tmp}/podman.tar`));
      // and the headers too: type, mode, owner, size, time, link target
      const listing = (f: string) => run('tar', ['-tv', '--numeric-owner', '-f', f], {}).split('\n').sort();
      assert.deepEqual(listing(file), listing(`${tmp}/podman.tar`));
    }));

  test('several images, selection by name and @index, named reference', () =>
    withTmp(async (tmp) => {
      const [a, b] = await Promise.all([buildImage({ label: 'a' }), buildImage({ label: 'b' })]);
      await write(`docker-archive:${tmp}/m.tar`, [{ img: a!, names: ['a'] }, { img: b!, names: ['example.com/b:2'] }]);
      assert.deepEqual((await readBack(`docker-archive:${tmp}/m.tar`)).map((i) => i.names), [['localhost/a:latest'], ['example.com/b:2']]);
      assert.equal((await readBack(`docker-archive:${tmp}/m.tar:example.com/b:2`))[0]!.parsed.config.digest, b!.config.digest);
      assert.equal((await readBack(`docker-archive:${tmp}/m.tar:@0`))[0]!.parsed.config.digest, a!.config.digest);
      await rejectsWith(readBack(`docker-archive:${tmp}/m.tar:c`), 'E_IMAGE_UNKNOWN', 'localhost/a:latest, example.com/b:2');
      await rejectsWith(readBack(`docker-archive:${tmp}/m.tar:@2`), 'E_IMAGE_UNKNOWN');
      await write(`docker-archive:${tmp}/n.tar:bar:2`, [{ img: a!, names: ['ignored'] }]);
      assert.deepEqual((await readBack(`docker-archive:${tmp}/n.tar`))[0]!.names, ['localhost/bar:2']);
    }));

  test('reads gzip\'d archives with legacy paths, symlinked and gzip\'d layer members', () =>
    withTmp(async (tmp) => {
      const img = await buildImage({ gzip: true, layers: TWO_LAYERS });
      const plain = zlib.gunzipSync(img.layers[0]!.bytes);
      const gz = img.layers[1]!.bytes;
      const manifest = [{ Config: `${img.config.digest.slice(7)}.json`, RepoTags: null, Layers: ['aaa/layer.tar', 'bbb/layer.tar'] }];
      await writeTarFile(`${tmp}/x.tar`, [
        { name: `${img.config.digest.slice(7)}.json`, type: 'file', data: img.config.bytes },
        { name: 'aaa/layer.tar', type: 'file', data: plain },
        { name: 'second.tar.gz', type: 'file', data: gz },
        { name: 'bbb/layer.tar', type: 'symlink', linkname: '../second.tar.gz' },
        { name: 'manifest.json', type: 'file', data: Buffer.from(JSON.stringify(manifest)) },
      ]);
      fs.writeFileSync(`${tmp}/x.tar.gz`, zlib.gzipSync(fs.readFileSync(`${tmp}/x.tar`)));
      const [got] = await readBack(`docker-archive:${tmp}/x.tar.gz`);
      assert.deepEqual(got!.names, []);
      assert.deepEqual(got!.parsed.layers.map((l) => [l.digest, l.mediaType]), [[img.diffIDs[0], MT.dockerLayer], [img.layers[1]!.digest, MT.dockerLayerGzip]]);
      assert.ok(got!.blobs.get(img.layers[1]!.digest)!.equals(gz));
      assert.equal(fs.readdirSync(tmp).length, 2);
    }));

  test('reads an archive skopeo wrote from gzip layers', () =>
    withTmp(async (tmp) => {
      const img = await buildImage({ gzip: true, layers: TWO_LAYERS });
      await write(`oci:${tmp}/a:t`, [{ img }]);
      run('skopeo', ['copy', '-q', `oci:${tmp}/a:t`, `docker-archive:${tmp}/b.tar:foo:1`]);
      const [got] = await readBack(`docker-archive:${tmp}/b.tar:foo:1`);
      assert.deepEqual(got!.names, ['docker.io/library/foo:1']);
      assert.deepEqual(got!.parsed.layers.map((l) => l.digest), img.diffIDs);
      assert.equal(got!.parsed.config.digest, img.config.digest);
    }));
});

describe('dir:', () => {
  test('round trip; skopeo reads it; replaces a previous dir: image; refuses other dirs', () =>
    withTmp(async (tmp) => {
      const [img, next] = await Promise.all([buildImage({ gzip: true, layers: TWO_LAYERS }), buildImage({ label: 'next' })]);
      const dir = path.join(tmp, 'd');
      await write(`dir:${dir}`, [{ img }]);
      assert.equal(fs.readFileSync(path.join(dir, 'version'), 'utf8'), 'Directory Transport Version: 1.1\n');
      assert.ok(fs.existsSync(path.join(dir, img.layers[0]!.digest.slice(7))));
      const [got] = await readBack(`dir:${dir}`);
      assert.ok(got!.manifest.bytes.equals(img.manifest.bytes));
      assert.equal(JSON.parse(run('skopeo', ['inspect', `dir:${dir}`])).Digest, img.manifest.digest);
      run('skopeo', ['copy', '-q', `dir:${dir}`, `dir:${tmp}/theirs`]);
      assert.equal((await readBack(`dir:${tmp}/theirs`))[0]!.manifest.digest, img.manifest.digest);
      await write(`dir:${dir}`, [{ img: next }]);
      assert.equal((await readBack(`dir:${dir}`))[0]!.manifest.digest, next.manifest.digest);
      assert.equal(fs.readdirSync(dir).length, 4, 'old blobs are gone');
      assert.deepEqual(fs.readdirSync(tmp).sort(), ['d', 'theirs']);
      fs.mkdirSync(path.join(tmp, 'other'));
      fs.writeFileSync(path.join(tmp, 'other/precious'), 'x');
      await rejectsWith(ref(`dir:${tmp}/other`).newDestination(), 'E_TRANSPORT', 'refusing');
      const d = await ref(`dir:${tmp}/one`).newDestination();
      await putSynthetic(d, img);
      await rejectsWith(putSynthetic(d, next), 'E_UNSUPPORTED');
      await d.abort();
    }));
});

describe('failures leave nothing and corruption is caught', () => {
  test('abort() removes everything, also after a digest mismatch', () =>
    withTmp(async (tmp) => {
      const img = await buildImage({ layers: TWO_LAYERS });
      await write(`oci:${tmp}/existing:keep`, [{ img }]);
      const snapshot = () => execFileSync('sh', ['-c', `cd ${tmp} && find . -printf '%p %s\\n' | sort && cat existing/index.json`], { encoding: 'utf8' });
      const before = snapshot();
      for (const r of [`oci:${tmp}/new`, `oci:${tmp}/existing:other`, `oci-archive:${tmp}/a.tar`, `docker-archive:${tmp}/d.tar`, `dir:${tmp}/dir`]) {
        const dest = await ref(r).newDestination();
        await putSynthetic(dest, img, ['x']);
        const { Readable } = await import('node:stream');
        await rejectsWith(dest.putBlob(Readable.from([Buffer.from('junk')]), { digest: img.config.digest, mediaType: MT.ociConfig }), 'E_DIGEST_MISMATCH');
        await dest.abort();
        assert.equal(snapshot(), before, `${r}: nothing left after abort`);
      }
    }));

  test('a flipped byte in a stored blob fails verification', () =>
    withTmp(async (tmp) => {
      const img = await buildImage({ layers: TWO_LAYERS });
      const layer = img.layers[1]!;
      await write(`oci:${tmp}/l:t`, [{ img }]);
      await write(`dir:${tmp}/d`, [{ img }]);
      await write(`oci-archive:${tmp}/o.tar`, [{ img }]);
      await write(`docker-archive:${tmp}/k.tar`, [{ img }]);
      flipByte(`${tmp}/l/blobs/sha256/${layer.digest.slice(7)}`, 600);
      flipByte(`${tmp}/d/${layer.digest.slice(7)}`, 600);
      for (const [file, member] of [[`${tmp}/o.tar`, `blobs/sha256/${layer.digest.slice(7)}`], [`${tmp}/k.tar`, `${layer.diffID.slice(7)}.tar`]] as const) {
        const a = await TarArchive.open(file, file);
        flipByte(file, a.lookup(member)!.offset + 600);
        await a.close();
      }
      for (const r of [`oci:${tmp}/l:t`, `dir:${tmp}/d`, `oci-archive:${tmp}/o.tar`]) {
        const src = await ref(r).newSource();
        const [image] = await src.images();
        const blob = await image!.getBlob(layer);
        await rejectsWith(writeVerifiedTemp(blob, tmp, { digest: layer.digest, size: layer.size, what: r }), 'E_DIGEST_MISMATCH', r);
        await src.close();
      }
      const src = await ref(`docker-archive:${tmp}/k.tar`).newSource();
      await rejectsWith((await src.images())[0]!.manifest(), 'E_DIGEST_MISMATCH', `${layer.diffID.slice(7)}.tar`);
      await src.close();
    }));

  test('malformed archives are E_BAD_ARCHIVE naming the archive and the member', () =>
    withTmp(async (tmp) => {
      const img = await buildImage();
      const data = (name: string, s: string) => ({ name, type: 'file' as const, data: Buffer.from(s) });
      const cases: [string, string[]][] = [
        ['[{"Config": 5, "RepoTags": [], "Layers": []}]', ['manifest.json', 'Config']],
        ['{"Config": "x"}', ['manifest.json', 'array']],
        ['[{"Config": "c.json", "RepoTags": [1], "Layers": []}]', ['manifest.json', 'RepoTags']],
        ['not json', ['manifest.json', 'invalid JSON']],
        ['[{"Config": "missing.json", "RepoTags": null, "Layers": []}]', ['missing.json', 'missing from the archive']],
      ];
      for (const [i, [json, words]] of cases.entries()) {
        const file = path.join(tmp, `bad${i}.tar`);
        await writeTarFile(file, [data('manifest.json', json)]);
        const src = await ref(`docker-archive:${file}`).newSource();
        await rejectsWith(src.images().then((imgs) => Promise.all(imgs.map((x) => x.manifest()))), 'E_BAD_ARCHIVE', file, ...words);
        await src.close();
      }
      await write(`oci:${tmp}/l`, [{ img }]);
      fs.writeFileSync(`${tmp}/l/index.json`, '{"schemaVersion": 2, "manifests": [{"digest": "sha256:nope"}]}');
      await rejectsWith(readBack(`oci:${tmp}/l`), 'E_BAD_ARCHIVE', `${tmp}/l`, 'index.json', 'manifests[0]');
      await writeTarFile(`${tmp}/o.tar`, [data('oci-layout', '{"imageLayoutVersion":"1.0.0"}'), data('index.json', '{')]);
      await rejectsWith(readBack(`oci-archive:${tmp}/o.tar`), 'E_BAD_ARCHIVE', `${tmp}/o.tar`, 'index.json');
      await write(`oci-archive:${tmp}/good.tar`, [{ img }]);
      fs.truncateSync(`${tmp}/good.tar`, fs.statSync(`${tmp}/good.tar`).size - 1536);
      await rejectsWith(readBack(`oci-archive:${tmp}/good.tar`), 'E_BAD_ARCHIVE', 'truncated');
      fs.writeFileSync(`${tmp}/junk.tar`, Buffer.alloc(2048, 'x'));
      await rejectsWith(readBack(`docker-archive:${tmp}/junk.tar`), 'E_BAD_ARCHIVE', 'not a tar');
    }));
});
