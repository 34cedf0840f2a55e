import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { applyLayerTar } from '../src/layer/apply';
import { decompressStream, detectCompression } from '../src/layer/decompress';
import { isKilnError } from '../src/errors';
import { native } from '../src/native';
import { END, T0, buildTar, padded, paxBlock, rawHeader, streamOf, type E } from './helpers/tar-build';
import { DEFAULT_OUTSIDE, HOSTILE, fixtureDir } from './helpers/tar-fixtures';
import { mkTmp, rmTmp, snapshot } from './helpers/tar-tree';

/** Runs `fn` with TMP/dest (empty) and TMP/outside (a sentinel with a secret), then removes TMP. */
async function withLayout(fn: (tmp: string, dest: string, outside: string) => Promise<void>): Promise<void> {
  const tmp = mkTmp('apply');
  try {
    const dest = path.join(tmp, 'dest');
    const outside = path.join(tmp, 'outside');
    fs.mkdirSync(dest);
    fs.mkdirSync(path.join(outside, 'sub'), { recursive: true });
    fs.writeFileSync(path.join(outside, 'secret'), 'secret\n', { mode: 0o600 });
    fs.writeFileSync(path.join(outside, 'sub', 'file'), 'file\n');
    await fn(tmp, dest, outside);
  } finally {
    rmTmp(tmp);
  }
}

function escaped(s: string): string {
  return JSON.stringify(s).slice(1, -1);
}

test('at least 10 hostile fixtures exist and the committed ones match the generator', async () => {
  assert.ok(HOSTILE.length >= 10);
  for (const f of HOSTILE) {
    const committed = fs.readFileSync(path.join(fixtureDir(), f.file));
    assert.ok(committed.equals(await f.build(DEFAULT_OUTSIDE)), `${f.file} is stale: run node dist/test/helpers/tar-fixtures.js`);
  }
});

for (const f of HOSTILE) {
  test(`refuses ${f.file}: ${f.why}`, async () => {
    await withLayout(async (tmp, dest, outside) => {
      const before = snapshot(tmp, ['dest']);
      const src = streamOf(await f.build(outside), 700);
      await assert.rejects(applyLayerTar(src, dest, { what: 'fixture-layer', ...f.opts }), (e: unknown) => {
        assert.ok(isKilnError(e), String(e));
        assert.equal(e.code, f.code, e.message);
        assert.ok(e.message.includes(escaped(f.entry)), `message does not name ${f.entry}: ${e.message}`);
        assert.ok(e.message.includes('fixture-layer'), e.message);
        return true;
      });
      assert.ok(src.destroyed, 'the input stream is destroyed on failure');
      assert.deepEqual(snapshot(tmp, ['dest']), before, 'something outside dest changed');
      assert.deepEqual(fs.readdirSync(tmp).sort(), ['dest', 'outside']);
    });
  });
}

test('the committed hostile fixtures are refused as well', async () => {
  const existed = fs.existsSync(DEFAULT_OUTSIDE);
  for (const f of HOSTILE) {
    await withLayout(async (_tmp, dest) => {
      const src = fs.createReadStream(path.join(fixtureDir(), f.file));
      await assert.rejects(applyLayerTar(src, dest, f.opts), (e: unknown) => isKilnError(e, f.code));
    });
  }
  assert.equal(fs.existsSync(DEFAULT_OUTSIDE), existed);
});

test('extracts every entry type with ownership, modes, mtimes and PAX overrides', async () => {
  await withLayout(async (_tmp, dest) => {
    const long = `long/${'x'.repeat(150)}/${'y'.repeat(120)}`;
    const entries: E[] = [
      { name: './', type: 'directory', mode: 0o751, mtime: T0 + 9 },
      { name: './etc/', type: 'directory' },
      { name: './etc/passwd', data: 'root:x:0:0::/root:/bin/sh\n' },
      { name: 'bin/busybox', data: 'BUSYBOX', mode: 0o755 },
      { name: 'bin/su', data: 'su', mode: 0o4755 },
      { name: 'bin/sg', data: 'sg', mode: 0o2755, gid: 42 },
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox' },
      { name: 'bin/ls', type: 'symlink', linkname: 'busybox' },
      { name: 'bin/hl', type: 'link', linkname: 'bin/busybox' },
      { name: 'usr/lib/pw', type: 'symlink', linkname: '../../etc/passwd' },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
      { name: 'home/u/', type: 'directory', mode: 0o700, uid: 1000, gid: 1000, mtime: T0 + 100 },
      { name: 'home/u/f', data: 'f', mode: 0o600, uid: 1000, gid: 1000, mtime: T0 + 5 },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660, gid: 6 },
      { name: 'run/fifo', type: 'fifo', mode: 0o600 },
      { name: 'big', data: 'b', pax: { uid: '3000000', gid: '3000001', mtime: `${T0}.5` } },
      { name: long, data: 'long' },
      { name: 'ünï/cödé', data: 'u' },
    ];
    const r = await applyLayerTar(streamOf(await buildTar(entries), 333), dest);
    assert.equal(r.entries, entries.length);
    assert.equal(r.size, 26 + 7 + 2 + 2 + 1 + 1 + 4 + 1);
    const st = (p: string) => fs.lstatSync(path.join(dest, p));
    assert.equal(fs.lstatSync(dest).mode & 0o7777, 0o751);
    assert.equal(fs.lstatSync(dest).mtimeMs, (T0 + 9) * 1000);
    assert.equal(st('bin/su').mode & 0o7777, 0o4755);
    assert.equal(st('bin/sg').mode & 0o7777, 0o2755);
    assert.equal(st('bin/sg').gid, 42);
    assert.equal(st('tmp').mode & 0o7777, 0o1777);
    assert.equal(fs.readlinkSync(path.join(dest, 'bin/sh')), '/bin/busybox');
    assert.equal(fs.readlinkSync(path.join(dest, 'bin/ls')), 'busybox');
    assert.equal(fs.readlinkSync(path.join(dest, 'usr/lib/pw')), '../../etc/passwd');
    assert.equal(st('usr/lib').mode & 0o7777, 0o755, 'implicit parents are 0755');
    assert.equal(st('bin/hl').ino, st('bin/busybox').ino);
    assert.equal(st('bin/hl').nlink, 2);
    const u = st('home/u');
    assert.deepEqual([u.uid, u.gid, u.mode & 0o7777, u.mtimeMs], [1000, 1000, 0o700, (T0 + 100) * 1000]);
    assert.equal(st('home/u/f').mtimeMs, (T0 + 5) * 1000);
    assert.equal(st('etc').mtimeMs, T0 * 1000, 'directory mtimes are set after their children');
    assert.ok(st('dev/null').isCharacterDevice());
    assert.equal(st('dev/null').rdev, 0x103);
    assert.ok(st('dev/sda').isBlockDevice());
    assert.equal(st('dev/sda').rdev, 0x800);
    assert.ok(st('run/fifo').isFIFO());
    assert.equal(st('run/fifo').mode & 0o7777, 0o600);
    assert.deepEqual([st('big').uid, st('big').gid, st('big').mtimeMs], [3000000, 3000001, T0 * 1000 + 500]);
    assert.equal(fs.readFileSync(path.join(dest, long), 'utf8'), 'long');
    assert.equal(fs.readFileSync(path.join(dest, 'ünï/cödé'), 'utf8'), 'u');
  });
});

test('later entries replace earlier ones; a directory over a directory merges', async () => {
  await withLayout(async (_tmp, dest, outside) => {
    const entries: E[] = [
      { name: 'a', data: 'one' },
      { name: 'a', data: 'two' },
      { name: 'b/c', data: 'c' },
      { name: 'b', data: 'now a file' },
      { name: 'd', data: 'file' },
      { name: 'd/', type: 'directory', mode: 0o750 },
      { name: 'e/', type: 'directory', mode: 0o700 },
      { name: 'e/keep', data: 'k' },
      { name: 'e/', type: 'directory', mode: 0o755, uid: 7 },
      { name: 'l', type: 'symlink', linkname: `${outside}/secret` },
      { name: 'l', data: 'not through the link' },
      { name: 'h', data: 'old' },
      { name: 'h2', type: 'link', linkname: 'h' },
      { name: 'h', data: 'new' },
      { name: 'p/q/r', data: 'r' },
      { name: 'p', data: 'file' },
      { name: 'p/', type: 'directory' },
      { name: 'p/q/s', data: 's' },
    ];
    await applyLayerTar(streamOf(await buildTar(entries)), dest);
    const read = (p: string) => fs.readFileSync(path.join(dest, p), 'utf8');
    assert.equal(read('a'), 'two');
    assert.equal(read('b'), 'now a file');
    assert.ok(fs.lstatSync(path.join(dest, 'd')).isDirectory());
    assert.equal(fs.lstatSync(path.join(dest, 'd')).mode & 0o7777, 0o750);
    assert.equal(read('e/keep'), 'k');
    assert.deepEqual([fs.lstatSync(path.join(dest, 'e')).mode & 0o7777, fs.lstatSync(path.join(dest, 'e')).uid], [0o755, 7]);
    assert.ok(fs.lstatSync(path.join(dest, 'l')).isFile());
    assert.equal(read('l'), 'not through the link');
    assert.equal(fs.readFileSync(path.join(outside, 'secret'), 'utf8'), 'secret\n');
    assert.equal(read('h'), 'new');
    assert.equal(read('h2'), 'old');
    assert.deepEqual(fs.readdirSync(path.join(dest, 'p/q')), ['s']);
  });
});

test('translates OCI whiteouts and opaque markers into overlay form', async () => {
  await withLayout(async (_tmp, dest) => {
    const entries: E[] = [
      { name: 'a/', type: 'directory' },
      { name: 'a/b', data: 'in this layer' },
      { name: 'a/.wh.b', data: '' },
      { name: 'a/.wh.c', data: '', uid: 5, gid: 6 },
      { name: 'x/y/.wh..wh..opq', data: '' },
      { name: 'o/', type: 'directory' },
      { name: 'o/keep', data: 'k' },
      { name: 'o/.wh..wh..opq', data: '' },
      { name: '.wh..wh.plnk/', type: 'directory' },
      { name: '.wh..wh.plnk/123.456', data: 'aufs' },
      { name: '.wh..wh.aufs', data: '' },
      { name: '.wh..wh.orph/', type: 'directory' },
      { name: 'gone/z', data: 'z' },
      { name: '.wh.gone', data: '' },
    ];
    const r = await applyLayerTar(streamOf(await buildTar(entries)), dest);
    assert.equal(r.entries, entries.length);
    const st = (p: string) => fs.lstatSync(path.join(dest, p));
    for (const p of ['a/b', 'a/c', 'gone']) {
      assert.ok(st(p).isCharacterDevice(), `${p} is a whiteout`);
      assert.equal(st(p).rdev, 0);
    }
    assert.deepEqual([st('a/c').uid, st('a/c').gid], [5, 6]);
    assert.equal(native().lgetxattr(path.join(dest, 'x/y'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(native().lgetxattr(path.join(dest, 'o'), 'trusted.overlay.opaque')?.toString(), 'y');
    assert.equal(native().lgetxattr(path.join(dest, 'a'), 'trusted.overlay.opaque'), null);
    assert.equal(fs.readFileSync(path.join(dest, 'o/keep'), 'utf8'), 'k');
    assert.deepEqual(fs.readdirSync(dest).sort(), ['a', 'gone', 'o', 'x']);
    assert.deepEqual(fs.readdirSync(path.join(dest, 'a')).sort(), ['b', 'c']);
  });
});

test('applies PAX xattrs byte for byte and ignores overlay xattrs from the tar', async () => {
  await withLayout(async (_tmp, dest) => {
    const bin = Buffer.from([0x80, 0xff, 0x00, 0x01, 0xc3]);
    const tar = Buffer.concat([
      paxBlock([
        ['SCHILY.xattr.user.bin', bin],
        ['SCHILY.xattr.trusted.overlay.opaque', 'y'],
        ['LIBARCHIVE.xattr.user.b64', Buffer.from('hello').toString('base64')],
      ]),
      rawHeader({ name: 'f', type: '0', size: 2 }),
      padded(Buffer.from('hi')),
      rawHeader({ name: 'g', type: '0', size: 0 }),
      END,
    ]);
    await applyLayerTar(streamOf(tar, 100), dest);
    const f = path.join(dest, 'f');
    assert.deepEqual(native().lgetxattr(f, 'user.bin'), bin);
    assert.deepEqual(native().lgetxattr(f, 'user.b64'), Buffer.from('hello'));
    assert.equal(native().lgetxattr(f, 'trusted.overlay.opaque'), null);
    assert.deepEqual(native().llistxattr(path.join(dest, 'g')), [], 'PAX records apply to one entry only');
  });
});

test('a cached parent that is replaced is re-verified', async () => {
  await withLayout(async (_tmp, dest) => {
    const entries: E[] = [{ name: 'd/e/f', data: 'f' }, { name: 'd', data: 'file' }, { name: 'd/', type: 'directory' }, { name: 'd/e/g', data: 'g' }];
    await applyLayerTar(streamOf(await buildTar(entries)), dest);
    assert.deepEqual(fs.readdirSync(path.join(dest, 'd/e')), ['g']);
    const bad: E[] = [{ name: 'd/e/f', data: 'f' }, { name: 'd', data: 'file' }, { name: 'd/e/g', data: 'g' }];
    fs.rmSync(dest, { recursive: true });
    fs.mkdirSync(dest);
    await assert.rejects(applyLayerTar(streamOf(await buildTar(bad)), dest), (e: unknown) => isKilnError(e, 'E_BAD_ARCHIVE') && e.message.includes('"d/e/g"'));
  });
});

test('dest must be an existing empty directory', async () => {
  await withLayout(async (tmp, dest) => {
    const tar = await buildTar([{ name: 'f', data: 'x' }]);
    fs.writeFileSync(path.join(dest, 'x'), '');
    await assert.rejects(applyLayerTar(streamOf(tar), dest), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT'));
    const src = streamOf(tar);
    await assert.rejects(applyLayerTar(src, path.join(tmp, 'missing')), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT'));
    assert.ok(src.destroyed);
  });
});

test('consumes the whole input, including zero padding after the end of the archive', async () => {
  await withLayout(async (_tmp, dest) => {
    const tar = Buffer.concat([await buildTar([{ name: 'f', data: 'x' }]), Buffer.alloc(10240)]);
    let seen = 0;
    const counter = new PassThrough();
    counter.on('data', (c: Buffer) => (seen += c.length));
    const tee = streamOf(tar, 4096).pipe(counter);
    await applyLayerTar(tee, dest);
    assert.equal(seen, tar.length);
  });
});

test('errors of the source stream are E_IO; corrupt gzip is E_BAD_ARCHIVE', async () => {
  await withLayout(async (_tmp, dest) => {
    const tar = await buildTar([{ name: 'f', data: 'x'.repeat(5000) }]);
    const failing = new Readable({
      read() {
        this.push(tar.subarray(0, 1024));
        this.destroy(new Error('network went away'));
      },
    });
    await assert.rejects(applyLayerTar(failing, dest), (e: unknown) => isKilnError(e, 'E_IO') && e.message.includes('network went away'));
    const dest2 = path.join(path.dirname(dest), 'dest2');
    fs.mkdirSync(dest2);
    const gz = zlib.gzipSync(tar);
    gz[gz.length - 20] ^= 0xff;
    gz[40] ^= 0xff;
    await assert.rejects(applyLayerTar(await decompressStream(streamOf(gz, 512)), dest2), (e: unknown) => isKilnError(e, 'E_BAD_ARCHIVE'));
    fs.rmSync(dest2, { recursive: true });
  });
});

test('detects and decompresses gzip and zstd (zstd CLI as the compressor)', async () => {
  assert.equal(detectCompression(Buffer.from([0x1f, 0x8b, 8])), 'gzip');
  assert.equal(detectCompression(Buffer.from([0x28, 0xb5, 0x2f, 0xfd])), 'zstd');
  assert.equal(detectCompression(Buffer.from('ustar')), 'none');
  assert.equal(detectCompression(Buffer.alloc(0)), 'none');
  await withLayout(async (_tmp, dest) => {
    const tar = await buildTar([{ name: 'd/f', data: 'gz' }]);
    await applyLayerTar(await decompressStream(streamOf(zlib.gzipSync(tar), 3)), dest);
    assert.equal(fs.readFileSync(path.join(dest, 'd/f'), 'utf8'), 'gz');
    const plain = await decompressStream(streamOf(Buffer.from('abc')));
    const chunks: Buffer[] = [];
    for await (const c of plain) chunks.push(c as Buffer);
    assert.equal(Buffer.concat(chunks).toString(), 'abc', 'short plain streams pass through intact');
  });
  const zstdBin = spawnSync('sh', ['-c', 'command -v zstd']);
  assert.equal(zstdBin.status, 0, 'zstd is not installed: apt-get install -y zstd (or run scripts/setup.sh)');
  await withLayout(async (_tmp, dest) => {
    const tar = await buildTar([{ name: 'z/f', data: 'zstd layer' }, { name: 'z/big', data: 'y'.repeat(300_000) }]);
    const zst = spawnSync('zstd', ['-q', '-c', '-19'], { input: tar, maxBuffer: 1 << 24 }).stdout as Buffer;
    assert.equal(detectCompression(zst), 'zstd');
    await applyLayerTar(await decompressStream(streamOf(zst, 7)), dest);
    assert.equal(fs.readFileSync(path.join(dest, 'z/f'), 'utf8'), 'zstd layer');
    assert.equal(fs.statSync(path.join(dest, 'z/big')).size, 300_000);
    const bad = Buffer.from(zst);
    bad[Math.floor(bad.length / 2)] ^= 0xff;
    bad[Math.floor(bad.length / 2) + 1] ^= 0xff;
    const dest2 = `${dest}-bad`;
    fs.mkdirSync(dest2);
    await assert.rejects(applyLayerTar(await decompressStream(streamOf(bad.subarray(0, bad.length - 5))), dest2), (e: unknown) => isKilnError(e, 'E_BAD_ARCHIVE'));
    fs.rmSync(dest2, { recursive: true });
  });
});

test('whiteouts and opaque dirs work in a real overlay mount', async () => {
  const tmp = mkTmp('ovl');
  const merged = path.join(tmp, 'merged');
  let mounted = false;
  try {
    const [l1, l2, upper, work] = ['l1', 'l2', 'upper', 'work'].map((d) => path.join(tmp, d));
    for (const d of [l1, l2, upper, work, merged]) fs.mkdirSync(d);
    await applyLayerTar(streamOf(await buildTar([
      { name: 'a', data: 'A' },
      { name: 'b', data: 'B' },
      { name: 'd/x', data: 'x' },
      { name: 'd/y', data: 'y' },
      { name: 'keep/k', data: 'k' },
    ])), l1);
    await applyLayerTar(streamOf(await buildTar([
      { name: '.wh.a', data: '' },
      { name: 'd/', type: 'directory' },
      { name: 'd/.wh..wh..opq', data: '' },
      { name: 'd/z', data: 'z' },
      { name: 'keep/.wh.nothing', data: '' },
      { name: 'new', data: 'n' },
    ])), l2);
    native().mount('overlay', merged, 'overlay', 0, `lowerdir=${l2}:${l1},upperdir=${upper},workdir=${work}`);
    mounted = true;
    assert.deepEqual(fs.readdirSync(merged).sort(), ['b', 'd', 'keep', 'new']);
    assert.deepEqual(fs.readdirSync(path.join(merged, 'd')), ['z']);
    assert.deepEqual(fs.readdirSync(path.join(merged, 'keep')), ['k']);
    assert.equal(fs.readFileSync(path.join(merged, 'b'), 'utf8'), 'B');
    assert.equal(fs.existsSync(path.join(merged, 'a')), false);
  } finally {
    if (mounted) native().umount2(merged, 0);
    rmTmp(tmp);
  }
});

test('3000 files / 64 MiB apply in reasonable time', async (t) => {
  await withLayout(async (_tmp, dest) => {
    const entries: E[] = [];
    const blob = Buffer.alloc(64 * 1024 * 1024 / 3000, 0x5a);
    for (let i = 0; i < 3000; i++) entries.push({ name: `d${i % 50}/f${i}`, data: blob });
    const tar = await buildTar(entries);
    const t0 = process.hrtime.bigint();
    const r = await applyLayerTar(streamOf(tar), dest);
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    t.diagnostic(`applied ${r.entries} entries, ${r.size} bytes in ${ms.toFixed(0)} ms`);
    assert.equal(r.entries, 3000);
    assert.ok(ms < 20000, `too slow: ${ms} ms`);
  });
});

test('entries are read as Go tools read them: a symlink with data is refused, sparse PAX files too, V7 tars accepted', async () => {
  await withLayout(async (tmp, dest) => {
    // A symlink header claiming 512 bytes of "data" that is itself a header: Go's archive/tar
    // sees a second entry "hidden", tar-stream would skip it.
    const hidden = rawHeader({ name: 'hidden', type: '0', size: 0 });
    const tricky = Buffer.concat([rawHeader({ name: 'lnk', type: '2', size: 512, linkname: 'target' }), hidden, END]);
    await assert.rejects(applyLayerTar(streamOf(tricky), dest), (e: unknown) => isKilnError(e, 'E_HOSTILE_TAR') && /"lnk".*carries 512 bytes/.test(e.message));
    assert.equal(fs.existsSync(path.join(dest, 'hidden')), false);

    const src = path.join(tmp, 'src');
    fs.mkdirSync(src);
    fs.writeFileSync(path.join(src, 'plain'), 'v7');
    const v7 = spawnSync('tar', ['--format=v7', '-C', src, '-cf', '-', 'plain']).stdout as Buffer;
    const d2 = path.join(tmp, 'v7');
    fs.mkdirSync(d2);
    await applyLayerTar(streamOf(v7), d2);
    assert.equal(fs.readFileSync(path.join(d2, 'plain'), 'utf8'), 'v7');

    fs.writeFileSync(path.join(src, 'sparse'), '');
    fs.truncateSync(path.join(src, 'sparse'), 8 << 20);
    fs.appendFileSync(path.join(src, 'sparse'), 'end');
    const sparse = spawnSync('tar', ['--sparse', '--format=pax', '-C', src, '-cf', '-', 'sparse']).stdout as Buffer;
    const d3 = path.join(tmp, 'sparse');
    fs.mkdirSync(d3);
    await assert.rejects(applyLayerTar(streamOf(sparse), d3), (e: unknown) => isKilnError(e, 'E_UNSUPPORTED') && /PAX sparse file/.test(e.message));
  });
});
