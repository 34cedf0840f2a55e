import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import * as tarStream from 'tar-stream';
import { applyLayerTar } from '../src/layer/apply';
import { writeLayerTar } from '../src/layer/diff';
import { isKilnError } from '../src/errors';
import { native } from '../src/native';
import { Collect, T0, buildTar, streamOf, type E } from './helpers/tar-build';
import { manifest, mkTmp, rmTmp } from './helpers/tar-tree';

interface Listed {
  name: string;
  type: string | null;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  linkname: string | null;
  devmajor: number;
  devminor: number;
  pax: Record<string, string> | null;
}

/** Lists a tar with tar-stream (an independent reader). */
async function list(tar: Buffer): Promise<Listed[]> {
  const out: Listed[] = [];
  const ex = tarStream.extract();
  streamOf(tar).pipe(ex as unknown as NodeJS.WritableStream);
  for await (const e of ex) {
    const h = e.header as unknown as Listed;
    out.push({ ...h, mtime: (h.mtime as unknown as Date).getTime() / 1000 });
    for await (const _ of e) void _;
  }
  return out;
}

async function tarOf(dir: string): Promise<Buffer> {
  const c = new Collect();
  const r = await writeLayerTar(dir, c);
  assert.equal(r.size, c.buffer.length);
  return c.buffer;
}

async function withTmp(fn: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = mkTmp('diff');
  try {
    await fn(tmp);
  } finally {
    rmTmp(tmp);
  }
}

function setTimes(p: string, sec: number): void {
  fs.lutimesSync(p, sec, sec);
}

test('writes a deterministic OCI tar: order, names, metadata, links, devices, whiteouts, opaque dirs, xattrs', async () => {
  await withTmp(async (tmp) => {
    const d = path.join(tmp, 'layer');
    const p = (r: string) => path.join(d, r);
    fs.mkdirSync(p('b/c'), { recursive: true });
    fs.mkdirSync(p('a'));
    fs.mkdirSync(p('o'));
    fs.writeFileSync(p('b/c/file'), 'hello');
    fs.chownSync(p('b/c/file'), 1000, 2000);
    fs.chmodSync(p('b/c/file'), 0o4751); // after chown, which clears setuid
    fs.linkSync(p('b/c/file'), p('a/hard'));
    fs.symlinkSync('../b/c/file', p('a/sym'));
    native().mknod(p('a/null'), fs.constants.S_IFCHR | 0o666, 1, 3);
    native().mknod(p('a/fifo'), fs.constants.S_IFIFO | 0o640, 0, 0);
    native().mknod(p('a/gone'), fs.constants.S_IFCHR, 0, 0);
    native().lsetxattr(p('o'), 'trusted.overlay.opaque', Buffer.from('y'));
    native().lsetxattr(p('o'), 'trusted.overlay.impure', Buffer.from('y'));
    native().lsetxattr(p('b/c/file'), 'user.bin', Buffer.from([0x80, 0xff, 0x00, 0x01]));
    native().lsetxattr(p('b/c/file'), 'user.text', Buffer.from('välue'));
    fs.writeFileSync(p('o/inside'), '');
    for (const r of ['a', 'b', 'b/c', 'o', 'o/inside', 'a/gone', 'a/sym', 'a/fifo', 'a/null']) setTimes(p(r), T0);
    setTimes(p('b/c/file'), T0 + 0.75);
    const tar = await tarOf(d);
    assert.equal(tar.length % 512, 0);
    assert.ok(tar.subarray(tar.length - 1024).equals(Buffer.alloc(1024)), 'ends with two zero blocks');
    assert.ok((await tarOf(d)).equals(tar), 'deterministic');
    const es = await list(tar);
    assert.deepEqual(es.map((e) => e.name), [
      'a/', 'a/fifo', 'a/.wh.gone', 'a/hard', 'a/null', 'a/sym', 'b/', 'b/c/', 'b/c/file', 'o/', 'o/.wh..wh..opq', 'o/inside',
    ]);
    const by = new Map(es.map((e) => [e.name, e]));
    assert.deepEqual([by.get('a/.wh.gone')!.type, by.get('a/.wh.gone')!.mode, by.get('a/.wh.gone')!.size], ['file', 0, 0]);
    assert.equal(by.get('o/.wh..wh..opq')!.type, 'file');
    assert.equal(by.get('a/hard')!.type, 'file', 'the first path of an inode carries the data');
    const link = by.get('b/c/file')!;
    assert.deepEqual([link.type, link.linkname], ['link', 'a/hard']);
    const hard = by.get('a/hard')!;
    assert.deepEqual([hard.mode, hard.uid, hard.gid, hard.size, hard.mtime], [0o4751, 1000, 2000, 5, T0]);
    assert.deepEqual([by.get('a/sym')!.type, by.get('a/sym')!.linkname], ['symlink', '../b/c/file']);
    assert.deepEqual([by.get('a/null')!.type, by.get('a/null')!.devmajor, by.get('a/null')!.devminor], ['character-device', 1, 3]);
    assert.deepEqual([by.get('a/fifo')!.type, by.get('a/fifo')!.mode], ['fifo', 0o640]);
    assert.equal(by.get('a/')!.type, 'directory');
    assert.equal(by.get('a/')!.mtime, T0);
    assert.equal(hard.pax?.['SCHILY.xattr.user.text'], 'välue');
    const rawBin = Buffer.concat([Buffer.from('SCHILY.xattr.user.bin='), Buffer.from([0x80, 0xff, 0x00, 0x01]), Buffer.from('\n')]);
    assert.ok(tar.includes(rawBin), 'binary xattr value written as raw bytes');
    assert.equal(tar.includes(Buffer.from('trusted.overlay')), false, 'overlay xattrs are not exported');
  });
});

test('round trip: apply → writeLayerTar → apply gives identical trees and identical tars', async () => {
  await withTmp(async (tmp) => {
    const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(tmp, n));
    for (const x of [a, b, c]) fs.mkdirSync(x);
    const entries: E[] = [
      { name: 'etc/', type: 'directory', mode: 0o755, mtime: T0 + 1 },
      { name: '.wh..wh..opq', data: '' },
      { name: 'etc/shadow', data: 'secret', mode: 0o640, gid: 42 },
      { name: 'bin/busybox', data: 'B'.repeat(3000), mode: 0o755 },
      { name: 'bin/sh', type: 'link', linkname: 'bin/busybox' },
      { name: 'bin/ls', type: 'symlink', linkname: 'busybox' },
      { name: 'bin/abs', type: 'symlink', linkname: '/' + 'z'.repeat(200) },
      { name: 'usr/bin/su', data: 'su', mode: 0o4755 },
      { name: 'tmp/', type: 'directory', mode: 0o1777 },
      { name: 'dev/null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 },
      { name: 'dev/loop0', type: 'block-device', devmajor: 7, devminor: 0, mode: 0o660 },
      { name: 'run/p', type: 'fifo' },
      { name: 'del/.wh.x', data: '', uid: 3 },
      { name: 'opq/', type: 'directory', mode: 0o711, uid: 9 },
      { name: 'opq/.wh..wh..opq', data: '' },
      { name: 'opq/new', data: 'n' },
      { name: 'huge-ids', data: 'i', pax: { uid: '3000000', gid: '4000000' } },
      { name: `deep/${'d'.repeat(120)}/${'e'.repeat(120)}/${'f'.repeat(100)}`, data: 'long' },
      { name: 'ünïcödé/名前', data: 'utf8', pax: { 'SCHILY.xattr.user.note': 'ok' } },
    ];
    await applyLayerTar(streamOf(await buildTar(entries)), a);
    const t1 = await tarOf(a);
    await applyLayerTar(streamOf(t1, 999), b);
    assert.deepEqual(manifest(b), manifest(a));
    const t2 = await tarOf(b);
    assert.ok(t2.equals(t1), 'the second tar is byte-identical');
    await applyLayerTar(streamOf(t2), c);
    assert.deepEqual(manifest(c), manifest(a));
    const m = new Map(manifest(a).map((r) => [r.path, r]));
    assert.equal(m.get('bin/sh')!.hardlinkOf, 'bin/busybox');
    assert.equal(m.get('huge-ids')!.uid, 3000000);
    assert.equal(m.get('del/x')!.type, 'char');
    assert.match(m.get('opq')!.xattrs ?? '', /trusted\.overlay\.opaque=79/);
    for (const x of [a, b, c]) assert.equal(native().lgetxattr(x, 'trusted.overlay.opaque')?.toString(), 'y', 'opaque root');
  });
});

test('a real overlay upper dir becomes a layer with whiteouts and opaque markers', async () => {
  await withTmp(async (tmp) => {
    const [l1, l2, upper, work, merged] = ['l1', 'l2', 'upper', 'work', 'merged'].map((n) => path.join(tmp, n));
    for (const x of [l1, l2, upper, work, merged]) fs.mkdirSync(x);
    await applyLayerTar(streamOf(await buildTar([
      { name: 'f1', data: '1' },
      { name: 'f2', data: '2' },
      { name: 'keep', data: 'k' },
      { name: 'd/x', data: 'x' },
      { name: 'd/y', data: 'y' },
    ])), l1);
    const mount = (lower: string) =>
      native().mount('overlay', merged, 'overlay', 0, `lowerdir=${lower},upperdir=${upper},workdir=${work},redirect_dir=off,metacopy=off`);
    mount(l1);
    try {
      fs.rmSync(path.join(merged, 'f1'));
      fs.rmSync(path.join(merged, 'f2'));
      fs.rmSync(path.join(merged, 'd'), { recursive: true });
      fs.mkdirSync(path.join(merged, 'd'));
      fs.writeFileSync(path.join(merged, 'd/new'), 'new');
      fs.writeFileSync(path.join(merged, 'f3'), '3');
    } finally {
      native().umount2(merged, 0);
    }
    const tar = await tarOf(upper);
    const es = await list(tar);
    // sorted by the names in the upper dir (d < f1 < f2 < f3), whiteouts renamed in place
    assert.deepEqual(es.map((e) => `${e.name}:${e.type}`), ['d/:directory', 'd/.wh..wh..opq:file', 'd/new:file', '.wh.f1:file', '.wh.f2:file', 'f3:file']);
    await applyLayerTar(streamOf(tar), l2);
    fs.rmSync(upper, { recursive: true });
    fs.rmSync(work, { recursive: true });
    fs.mkdirSync(upper);
    fs.mkdirSync(work);
    mount(`${l2}:${l1}`);
    try {
      assert.deepEqual(fs.readdirSync(merged).sort(), ['d', 'f3', 'keep']);
      assert.deepEqual(fs.readdirSync(path.join(merged, 'd')), ['new']);
    } finally {
      native().umount2(merged, 0);
    }
  });
});

test('GNU tar reads our output (names, modes, owners, links, xattrs)', async () => {
  await withTmp(async (tmp) => {
    const [src, out] = ['src', 'out'].map((n) => path.join(tmp, n));
    fs.mkdirSync(src);
    fs.mkdirSync(out);
    const entries: E[] = [
      { name: 'x/', type: 'directory', mode: 0o750, uid: 5, gid: 6 },
      { name: 'x/file', data: 'data', mode: 0o2755, uid: 7 },
      { name: 'x/hl', type: 'link', linkname: 'x/file' },
      { name: 'x/sl', type: 'symlink', linkname: '/etc/passwd' },
      { name: `long/${'n'.repeat(150)}/${'m'.repeat(150)}`, data: 'long' },
      { name: 'ünï', data: 'u', pax: { 'SCHILY.xattr.user.k': 'v' } },
    ];
    await applyLayerTar(streamOf(await buildTar(entries)), src);
    const file = path.join(tmp, 'layer.tar');
    fs.writeFileSync(file, await tarOf(src));
    execFileSync('tar', ['--xattrs', '--xattrs-include=*', '--numeric-owner', '-xpf', file, '-C', out]);
    assert.deepEqual(manifest(out), manifest(src));
  });
});

test('refuses overlay redirect/metacopy xattrs (E_UNSUPPORTED)', async () => {
  await withTmp(async (tmp) => {
    fs.mkdirSync(path.join(tmp, 'd'));
    native().lsetxattr(path.join(tmp, 'd'), 'trusted.overlay.redirect', Buffer.from('/elsewhere'));
    await assert.rejects(writeLayerTar(tmp, new Collect()), (e: unknown) => isKilnError(e, 'E_UNSUPPORTED') && e.message.includes('redirect'));
  });
});

test('respects backpressure of a slow consumer; output errors reject with E_IO', async () => {
  await withTmp(async (tmp) => {
    const d = path.join(tmp, 'l');
    fs.mkdirSync(d);
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(d, `f${i}`), Buffer.alloc(300_000, i));
    const chunks: Buffer[] = [];
    let maxBuffered = 0;
    const slow = new Writable({
      highWaterMark: 64 * 1024,
      write(c: Buffer, _e, cb) {
        chunks.push(c);
        setImmediate(cb);
      },
    });
    const timer = setInterval(() => (maxBuffered = Math.max(maxBuffered, slow.writableLength)), 0);
    const r = await writeLayerTar(d, slow).finally(() => clearInterval(timer));
    assert.equal(r.size, Buffer.concat(chunks).length);
    assert.ok(maxBuffered <= 2 * 1024 * 1024, `buffered ${maxBuffered} bytes: backpressure ignored`);
    assert.equal((await list(Buffer.concat(chunks))).length, 20);
    const broken = new Writable({
      write(_c, _e, cb) {
        cb(new Error('disk full'));
      },
    });
    await assert.rejects(writeLayerTar(d, broken), (e: unknown) => isKilnError(e, 'E_IO') && e.message.includes('disk full'));
  });
});
