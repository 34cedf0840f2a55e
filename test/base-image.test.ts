/**
 * The embedded default base image (src/base/busybox-rootfs.ts): deterministic bytes,
 * the expected entries, and a rootfs that actually runs /bin/sh under chroot.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as tar from 'tar-stream';
import { writeBusyboxRootfs } from '../src/base/busybox-rootfs';

const SCRIPT = path.join(__dirname, '..', 'src', 'base', 'busybox-rootfs.js');

function sha256File(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

interface Seen { name: string; type: string; mode: number; uid: number; gid: number; mtime: number; linkname: string | null; body: Buffer }

async function readTar(p: string): Promise<Seen[]> {
  const out: Seen[] = [];
  const ex = tar.extract();
  createReadStream(p).pipe(ex);
  for await (const e of ex) {
    const chunks: Buffer[] = [];
    for await (const c of e) chunks.push(c as Buffer);
    const h = e.header;
    out.push({
      name: h.name, type: h.type ?? 'file', mode: h.mode ?? 0, uid: h.uid ?? -1, gid: h.gid ?? -1,
      mtime: h.mtime ? h.mtime.getTime() : -1, linkname: h.linkname ?? null, body: Buffer.concat(chunks),
    });
  }
  return out;
}

function withTmp(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kiln-base-test-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('busybox rootfs tar is deterministic (API and script give identical bytes)', withTmp(async (dir) => {
  const a = path.join(dir, 'a.tar');
  const b = path.join(dir, 'b.tar');
  await writeBusyboxRootfs(a);
  execFileSync(process.execPath, [SCRIPT, b], { stdio: 'pipe' });
  assert.equal(sha256File(a), sha256File(b));
}));

test('busybox rootfs tar has sorted root-owned entries, bin/sh -> busybox and etc/passwd', withTmp(async (dir) => {
  const p = path.join(dir, 'rootfs.tar');
  await writeBusyboxRootfs(p, { mtime: 0 });
  const entries = await readTar(p);
  const byName = new Map(entries.map((e) => [e.name.replace(/\/$/, ''), e]));

  const names = entries.map((e) => e.name.replace(/\/$/, ''));
  assert.deepEqual(names, [...names].sort((x, y) => (x < y ? -1 : x > y ? 1 : 0)), 'entries are sorted');
  for (const e of entries) {
    assert.equal(e.uid, 0, `${e.name} uid`);
    assert.equal(e.gid, 0, `${e.name} gid`);
    assert.equal(e.mtime, 0, `${e.name} mtime`);
  }

  const sh = byName.get('bin/sh');
  assert.ok(sh, 'bin/sh present');
  assert.equal(sh.type, 'symlink');
  assert.match(sh.linkname ?? '', /(^|\/)busybox$/);

  const bb = byName.get('bin/busybox');
  assert.ok(bb, 'bin/busybox present');
  assert.equal(bb.type, 'file');
  assert.equal(bb.mode & 0o777, 0o755);
  assert.ok(bb.body.equals(readFileSync('/bin/busybox')), 'bin/busybox is /bin/busybox');

  const passwd = byName.get('etc/passwd');
  assert.ok(passwd, 'etc/passwd present');
  assert.match(passwd.body.toString(), /^root:x:0:0:root:\/root:\/bin\/sh$/m);
  assert.match(byName.get('etc/group')?.body.toString() ?? '', /^root:x:0:$/m);

  assert.equal(byName.get('tmp')?.type, 'directory');
  assert.equal((byName.get('tmp')?.mode ?? 0) & 0o7777, 0o1777);
  assert.equal((byName.get('root')?.mode ?? 0) & 0o7777, 0o700);
  for (const d of ['dev', 'proc', 'sys', 'etc', 'var', 'usr/bin', 'usr/sbin', 'sbin']) {
    assert.equal(byName.get(d)?.type, 'directory', `${d} is a directory`);
  }
}));

test('extracted busybox rootfs runs /bin/sh under chroot', withTmp(async (dir) => {
  // never a silent skip: without root the test fails and says why
  assert.equal(process.getuid?.(), 0, 'chroot needs root: run the suite as root (bash scripts/setup.sh test)');
  const p = path.join(dir, 'rootfs.tar');
  const root = path.join(dir, 'rootfs');
  await writeBusyboxRootfs(p);
  execFileSync('mkdir', [root]);
  execFileSync('tar', ['-x', '-f', p, '-C', root]);
  const out = execFileSync('chroot', [root, '/bin/sh', '-c', 'echo ok; id -un'], {
    encoding: 'utf8', env: { PATH: '/bin:/sbin:/usr/bin:/usr/sbin' },
  });
  assert.equal(out, 'ok\nroot\n');
}));
