/**
 * Build context selection, content hashing and the COPY/ADD file operation, on real temp dirs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import * as tarStream from 'tar-stream';
import { isKilnError } from '../src/errors';
import { native } from '../src/native';
import { copyInto, type CopyOptions } from '../src/build/context/copy';
import { fetchUrl } from '../src/build/context/fetch';
import { compileComponent } from '../src/build/context/glob';
import { hashSources, memoSize } from '../src/build/context/hash';
import { writeHeredocFile } from '../src/build/context/heredoc';
import { resolveInRoot } from '../src/util/rootpath';
import { selectSources, type PathFilter } from '../src/build/context/select';
import { detectArchive } from '../src/build/context/untar';
import { IgnoreMatcher, parseIgnoreFile } from '../src/build/frontend/ignore';
import { requireTool, run } from './helpers/env';

const WHAT = 'COPY at Containerfile:7';

function tmp(t: { after: (fn: () => void) => void }): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-ctx-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Writes files: a key ending in "/" is a directory. */
function tree(root: string, files: Record<string, string>): string {
  fs.mkdirSync(root, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(root, rel);
    if (rel.endsWith('/')) fs.mkdirSync(p, { recursive: true });
    else {
      fs.mkdirSync(path.dirname(p), { recursive: true });
      fs.writeFileSync(p, content);
    }
  }
  return root;
}

function names(sel: { relPath: string; entries: { rel: string }[] }[]): string[] {
  return sel.flatMap((s) => [s.relPath, ...s.entries.map((e) => `${s.relPath || '.'}/${e.rel}`)]);
}

async function rejectsWith(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isKilnError(e), `not a KilnError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.match(e.message, re);
    return true;
  });
}

// ---------------------------------------------------------------- rootpath

test('resolveInRoot follows hostile symlinks without leaving the root', (t) => {
  const root = tmp(t);
  fs.mkdirSync(path.join(root, 'usr/bin'), { recursive: true });
  fs.symlinkSync('/', path.join(root, 'escape'));
  fs.symlinkSync('../../../../..', path.join(root, 'up'));
  fs.symlinkSync('/usr/bin', path.join(root, 'bin'));
  fs.symlinkSync('loop2', path.join(root, 'loop1'));
  fs.symlinkSync('loop1', path.join(root, 'loop2'));
  assert.equal(resolveInRoot(root, '/escape/etc/passwd', { followLast: true }), path.join(root, 'etc/passwd'));
  assert.equal(resolveInRoot(root, 'up/up/x'), path.join(root, 'x'));
  assert.equal(resolveInRoot(root, '/../../bin/sh'), path.join(root, 'usr/bin/sh'));
  assert.equal(resolveInRoot(root, '/bin'), path.join(root, 'bin'), 'last component not followed by default');
  assert.equal(resolveInRoot(root, '/bin', { followLast: true }), path.join(root, 'usr/bin'));
  assert.equal(resolveInRoot(root, '/bin/'), path.join(root, 'usr/bin'), 'a trailing slash follows');
  assert.throws(() => resolveInRoot(root, '/loop1/x'), /too many levels of symbolic links/);
});

// ---------------------------------------------------------------- select

test('glob: filepath.Match components, also in directory components', async (t) => {
  const root = tree(tmp(t), { 'a.txt': 'a', 'b.txt': 'b', '.hidden.txt': 'h', 'c.md': 'c', 'dir1/x1.js': '1', 'dir2/x2.js': '2', 'dir2/y.js': 'y', 's*1': 's', 'my-app.cfg': 'm' });
  assert.deepEqual(names(await selectSources(root, ['*.txt'], { what: WHAT })), ['.hidden.txt', 'a.txt', 'b.txt']);
  assert.deepEqual(names(await selectSources(root, ['/dir*/x?.js'], { what: WHAT })), ['dir1/x1.js', 'dir2/x2.js']);
  assert.deepEqual(names(await selectSources(root, ['[ab].txt', 's\\*[0-9]'], { what: WHAT })), ['a.txt', 'b.txt', 's*1']);
  assert.deepEqual(names(await selectSources(root, ['[^a-b].*'], { what: WHAT })), ['c.md']);
  // `-` is literal outside a class (and escapable with `\`): a hyphenated glob must compile
  assert.deepEqual(names(await selectSources(root, ['my-*', 'my\\-app.c?g'], { what: WHAT })), ['my-app.cfg', 'my-app.cfg']);
  assert.ok(compileComponent('[\\-]x')?.('-x'), 'an escaped "-" in a class');
  const m = compileComponent('[a-c]?\\[');
  assert.ok(m && m('bx[') && !m('dx['));
  assert.equal(compileComponent('[abc'), null);
  assert.equal(compileComponent('x\\'), null);
  await rejectsWith(selectSources(root, ['*.nothing'], { what: WHAT }), 'E_BUILD', /^COPY at Containerfile:7: no source files were specified$/);
  await rejectsWith(selectSources(root, ['missing.txt'], { what: WHAT }), 'E_BUILD', /^COPY at Containerfile:7: "missing.txt": no such file or directory in the build context/);
});

test('select: directories list their contents; .. is clamped; symlinks cannot leave the context', async (t) => {
  const base = tmp(t);
  const root = tree(path.join(base, 'ctx'), { 'a.txt': 'a', 'sub/b.txt': 'b', 'sub/deep/c.txt': 'c' });
  fs.writeFileSync(path.join(base, 'outside.txt'), 'secret');
  fs.symlinkSync('../outside.txt', path.join(root, 'rel-out'));
  fs.symlinkSync('/etc/passwd', path.join(root, 'abs-out'));
  fs.symlinkSync('sub', path.join(root, 'sublink'));
  const [s] = await selectSources(root, ['sub'], { what: WHAT });
  assert.equal(s.isDir, true);
  assert.deepEqual(s.entries.map((e) => e.rel), ['b.txt', 'deep', 'deep/c.txt']);
  const [c] = await selectSources(root, ['../../a.txt'], { what: WHAT });
  assert.equal(c.relPath, 'a.txt');
  assert.equal(c.realPath, path.join(root, 'a.txt'));
  const [dot] = await selectSources(root, ['.'], { what: WHAT });
  assert.equal(dot.relPath, '');
  assert.ok(dot.entries.some((e) => e.rel === 'rel-out' && e.link === '../outside.txt'), 'symlinks inside a copied dir stay symlinks');
  const [viaLink] = await selectSources(root, ['sublink'], { what: WHAT });
  assert.equal(viaLink.realPath, path.join(root, 'sub'), 'a named symlink is followed');
  await rejectsWith(selectSources(root, ['rel-out'], { what: WHAT }), 'E_BUILD', /"rel-out": no such file/);
  await rejectsWith(selectSources(root, ['abs-out'], { what: WHAT }), 'E_BUILD', /"abs-out": no such file/);
});

test('select: .containerignore hides files, ! exceptions keep them, a named ignored file is an error', async (t) => {
  const root = tree(tmp(t), { 'app.js': 'x', 'debug.log': 'l', 'secret.key': 'k', 'build/out.o': 'o', 'build/keep.txt': 'k', 'sub/x.log': 'l' });
  const filter: PathFilter = new IgnoreMatcher(parseIgnoreFile('# comment\n*.log\n/secret.key\nbuild\n!build/keep.txt\n'));
  const [all] = await selectSources(root, ['.'], { what: WHAT, filter });
  assert.deepEqual(all.entries.map((e) => e.rel), ['app.js', 'build', 'build/keep.txt', 'sub', 'sub/x.log']);
  assert.deepEqual(names(await selectSources(root, ['*'], { what: WHAT, filter })), ['app.js', 'build', 'build/keep.txt', 'sub', 'sub/x.log']);
  await rejectsWith(selectSources(root, ['secret.key'], { what: WHAT, filter }), 'E_BUILD', /"secret.key": no such file or directory in the build context \(or excluded by \.containerignore\)/);
  await rejectsWith(selectSources(root, ['build/out.o'], { what: WHAT, filter }), 'E_BUILD', /no such file/);
  await rejectsWith(selectSources(root, ['*.key'], { what: WHAT, filter }), 'E_BUILD', /no source files were specified/);
  assert.equal((await selectSources(root, ['build/keep.txt'], { what: WHAT, filter }))[0].isDir, false);
  // A hand-written filter works too (the interface is all select needs); directories it does
  // not ignore stay, even when everything in them is ignored (Docker sends them empty).
  const onlyJs: PathFilter = { ignores: (p, isDir) => !isDir && !p.endsWith('.js'), mayIncludeUnder: () => true };
  assert.deepEqual((await selectSources(root, ['.'], { what: WHAT, filter: onlyJs }))[0].entries.map((e) => e.rel), ['app.js', 'build', 'sub']);
});

test('select: --exclude patterns, relative to each source', async (t) => {
  const root = tree(tmp(t), { 'dir/a.md': 'a', 'dir/b.txt': 'b', 'dir/sub/c.md': 'c', 'homer.txt': 'h', 'home.js': 'j' });
  const one = await selectSources(root, ['dir'], { what: WHAT, excludes: ['*.md'] });
  assert.deepEqual(one[0].entries.map((e) => e.rel), ['b.txt', 'sub', 'sub/c.md']);
  const deep = await selectSources(root, ['dir'], { what: WHAT, excludes: ['**/*.md'] });
  assert.deepEqual(deep[0].entries.map((e) => e.rel), ['b.txt', 'sub']);
  const exc = await selectSources(root, ['dir'], { what: WHAT, excludes: ['sub', '!sub/c.md'] });
  assert.deepEqual(exc[0].entries.map((e) => e.rel), ['a.md', 'b.txt', 'sub', 'sub/c.md']);
  assert.deepEqual(names(await selectSources(root, ['hom*'], { what: WHAT, excludes: ['*.txt'] })), ['home.js']);
});

// ---------------------------------------------------------------- hash

test('hash: touch keeps it; content, mode, setuid and (optionally) owner change it', async (t) => {
  const root = tree(tmp(t), { 'a.txt': 'hello', 'd/b.txt': 'world' });
  const h = async (ownership = false) => hashSources(root, await selectSources(root, ['.'], { what: WHAT }), { ownership });
  const h0 = await h();
  assert.match(h0, /^sha256:[0-9a-f]{64}$/);
  fs.utimesSync(path.join(root, 'd/b.txt'), new Date(1000), new Date(2000));
  assert.equal(await h(), h0, 'mtime/atime are not part of the hash');
  fs.writeFileSync(path.join(root, 'd/b.txt'), 'world');
  assert.equal(await h(), h0, 'rewriting the same bytes keeps it');
  fs.writeFileSync(path.join(root, 'd/b.txt'), 'World');
  const h1 = await h();
  assert.notEqual(h1, h0);
  fs.chmodSync(path.join(root, 'a.txt'), 0o755);
  const h2 = await h();
  assert.notEqual(h2, h1);
  fs.chmodSync(path.join(root, 'a.txt'), 0o4755);
  assert.notEqual(await h(), h2, 'setuid counts');
  const hOwn = await h(true);
  fs.chownSync(path.join(root, 'a.txt'), 1234, 1234);
  fs.chmodSync(path.join(root, 'a.txt'), 0o4755);
  assert.notEqual(await h(true), hOwn, 'ownership counts when preserved');
  fs.renameSync(path.join(root, 'a.txt'), path.join(root, 'c.txt'));
  assert.notEqual(await h(true), hOwn, 'names count');
  const before = memoSize();
  await h();
  assert.equal(memoSize(), before, 'unchanged files hit the memo');
});

test('hash: 3000 small files well under a second; 64 MiB streamed without blocking the event loop', async (t) => {
  const root = tmp(t);
  for (let d = 0; d < 30; d++) {
    fs.mkdirSync(path.join(root, `d${d}`));
    for (let f = 0; f < 100; f++) fs.writeFileSync(path.join(root, `d${d}`, `f${f}`), `file ${d}/${f}\n`.repeat(20));
  }
  let t0 = performance.now();
  const sel = await selectSources(root, ['.'], { what: WHAT });
  const tSelect = performance.now() - t0;
  t0 = performance.now();
  await hashSources(root, sel);
  const tCold = performance.now() - t0;
  t0 = performance.now();
  await hashSources(root, sel);
  const tWarm = performance.now() - t0;
  t.diagnostic(`3000 files: select ${tSelect.toFixed(0)} ms, hash cold ${tCold.toFixed(0)} ms, warm ${tWarm.toFixed(0)} ms`);
  assert.ok(tSelect + tCold < 1000, `select+hash of 3000 files took ${(tSelect + tCold).toFixed(0)} ms`);

  const big = path.join(root, 'big.bin');
  const chunk = Buffer.alloc(1 << 20, 7);
  const fd = fs.openSync(big, 'w');
  for (let i = 0; i < 64; i++) fs.writeSync(fd, chunk);
  fs.closeSync(fd);
  // Hashing it in one synchronous go would let the timer run at most once; streamed, it
  // runs between chunks (a loaded machine may still delay single ticks, hence the loose bound).
  let maxLag = 0;
  let ticks = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    maxLag = Math.max(maxLag, now - last);
    last = now;
    ticks++;
  }, 2);
  t0 = performance.now();
  await hashSources(root, await selectSources(root, ['big.bin'], { what: WHAT }));
  const tBig = performance.now() - t0;
  clearInterval(timer);
  t.diagnostic(`64 MiB: ${tBig.toFixed(0)} ms, ${ticks} timer ticks meanwhile, longest event-loop stall ${maxLag.toFixed(0)} ms`);
  assert.ok(ticks >= 4, `the event loop ran only ${ticks} timer ticks while hashing for ${tBig.toFixed(0)} ms`);
  assert.ok(maxLag < 200, `event loop blocked for ${maxLag.toFixed(0)} ms`);
});

// ---------------------------------------------------------------- copy

interface Layout {
  ctx: string;
  rootfs: string;
  copy: (sources: string[], dest: string, extra?: Partial<CopyOptions> & { excludes?: string[] }) => Promise<void>;
}

function layout(t: { after: (fn: () => void) => void }, files: Record<string, string>): Layout {
  const base = tmp(t);
  const ctx = tree(path.join(base, 'ctx'), files);
  const rootfs = path.join(base, 'rootfs');
  fs.mkdirSync(rootfs);
  return {
    ctx,
    rootfs,
    copy: async (sources, dest, extra = {}) => {
      const selected = await selectSources(extra.srcRoot ?? ctx, sources, { what: WHAT, excludes: extra.excludes });
      await copyInto({ rootfs, workdir: '/', dest, srcRoot: ctx, selected, preserveOwnership: false, parents: false, add: false, ...extra });
    },
  };
}

const lst = (p: string) => fs.lstatSync(p);
const read = (p: string) => fs.readFileSync(p, 'utf8');

test('copy: destination rules (trailing slash, existing dir, rename, several sources)', async (t) => {
  const L = layout(t, { 'a.txt': 'A', 'b.txt': 'B', 'dir/x': 'X', 'dir/sub/y': 'Y' });
  await L.copy(['a.txt'], '/dst/');
  assert.equal(read(path.join(L.rootfs, 'dst/a.txt')), 'A');
  assert.equal(lst(path.join(L.rootfs, 'dst')).mode & 0o7777, 0o755);
  await L.copy(['a.txt'], '/renamed');
  assert.equal(read(path.join(L.rootfs, 'renamed')), 'A');
  await L.copy(['b.txt'], '/dst');
  assert.equal(read(path.join(L.rootfs, 'dst/b.txt')), 'B', 'an existing directory receives the file');
  await L.copy(['b.txt'], '/renamed');
  assert.equal(read(path.join(L.rootfs, 'renamed')), 'B', 'an existing file is replaced');
  await L.copy(['a.txt'], 'rel/', { workdir: '/work' });
  assert.equal(read(path.join(L.rootfs, 'work/rel/a.txt')), 'A', 'relative dest is under WORKDIR');
  await L.copy(['a.txt'], '.', { workdir: '/wd' });
  assert.equal(read(path.join(L.rootfs, 'wd/a.txt')), 'A');
  await rejectsWith(L.copy(['a.txt', 'b.txt'], '/multi'), 'E_BUILD', /When using COPY with more than one source file, the destination must be a directory and end with a \//);
  await rejectsWith(L.copy(['*.txt'], '/multi'), 'E_BUILD', /more than one source file/);
  await L.copy(['*.txt'], '/multi/');
  assert.deepEqual(fs.readdirSync(path.join(L.rootfs, 'multi')).sort(), ['a.txt', 'b.txt']);
  // A directory copies its contents, merging into what is there.
  fs.mkdirSync(path.join(L.rootfs, 'app'));
  fs.writeFileSync(path.join(L.rootfs, 'app/old'), 'old');
  await L.copy(['dir'], '/app');
  assert.deepEqual(fs.readdirSync(path.join(L.rootfs, 'app')).sort(), ['old', 'sub', 'x']);
  assert.equal(read(path.join(L.rootfs, 'app/sub/y')), 'Y');
  await rejectsWith(L.copy(['dir'], '/renamed'), 'E_BUILD', /cannot copy to non-directory: \/renamed/);
});

test('copy: --parents keeps the source path, from a /./ pivot when given', async (t) => {
  const L = layout(t, { 'x/y/a.txt': 'A', 'x/y/z/b.txt': 'B' });
  fs.chmodSync(path.join(L.ctx, 'x'), 0o750);
  await L.copy(['x/y/a.txt', 'x/y/z'], '/p/', { parents: true });
  assert.equal(read(path.join(L.rootfs, 'p/x/y/a.txt')), 'A');
  assert.equal(read(path.join(L.rootfs, 'p/x/y/z/b.txt')), 'B');
  assert.equal(lst(path.join(L.rootfs, 'p/x')).mode & 0o777, 0o750, 'parents take the source directory modes');
  await L.copy(['./x/./y/*.txt'], '/q/', { parents: true });
  assert.equal(read(path.join(L.rootfs, 'q/y/a.txt')), 'A');
});

test('copy: modes, setuid, mtimes, symlinks, hard links, xattrs and ownership', async (t) => {
  const L = layout(t, { 'src/run': '#!/bin/sh\n', 'src/data': 'd', 'src/dir/f': 'f' });
  const s = (p: string) => path.join(L.ctx, 'src', p);
  fs.chmodSync(s('run'), 0o4755);
  fs.chmodSync(s('dir'), 0o1777);
  fs.chownSync(s('data'), 1234, 5678);
  fs.utimesSync(s('data'), 1_000_000, 1_500_000);
  fs.symlinkSync('data', s('link'));
  fs.symlinkSync('/etc/shadow', s('abslink'));
  fs.linkSync(s('data'), s('hard'));
  native().lsetxattr(s('run'), 'user.kiln', Buffer.from('v'));
  await L.copy(['src'], '/out/');
  const o = (p: string) => path.join(L.rootfs, 'out', p);
  assert.equal(lst(o('run')).mode & 0o7777, 0o4755, 'setuid kept');
  assert.equal(lst(o('dir')).mode & 0o7777, 0o1777, 'sticky kept');
  assert.equal(lst(o('data')).mtimeMs, 1_500_000_000, 'mtime kept');
  assert.equal(lst(o('data')).uid, 0, 'build context files become root-owned');
  assert.equal(fs.readlinkSync(o('link')), 'data');
  assert.equal(fs.readlinkSync(o('abslink')), '/etc/shadow');
  assert.equal(lst(o('hard')).ino, lst(o('data')).ino, 'hard links stay hard links');
  assert.equal(native().lgetxattr(o('run'), 'user.kiln')?.toString(), 'v');

  await L.copy(['src'], '/from/', { preserveOwnership: true });
  assert.equal(lst(path.join(L.rootfs, 'from/data')).uid, 1234);
  assert.equal(lst(path.join(L.rootfs, 'from/data')).gid, 5678);
  assert.equal(lst(path.join(L.rootfs, 'from/run')).mode & 0o7777, 0o4755, 'setuid survives the chown');

  await L.copy(['src'], '/own/deep/', { chown: { uid: 1000, gid: 1001 }, chmod: 0o640 });
  const own = (p: string) => lst(path.join(L.rootfs, 'own', p));
  assert.deepEqual([own('deep').uid, own('deep').gid, own('deep').mode & 0o7777], [1000, 1001, 0o755], 'created parents: 0755, --chown user');
  assert.deepEqual([own('deep/data').uid, own('deep/data').mode & 0o7777], [1000, 0o640]);
  assert.equal(own('deep/dir').mode & 0o7777, 0o640, '--chmod applies to copied directories too');
  assert.equal(own('deep/link').uid, 1000);
});

test('copy: symlinks in the image never redirect writes outside the rootfs', async (t) => {
  const L = layout(t, { 'a.txt': 'A', 'tree/bin/tool': 'T', 'tree/etc/conf': 'C' });
  const marker = `kiln-escape-${process.pid}-${Date.now()}`;
  fs.symlinkSync('/', path.join(L.rootfs, 'escape'));
  fs.symlinkSync('../../../../../../../../tmp', path.join(L.rootfs, 'up'));
  await L.copy(['a.txt'], `/escape/${marker}`);
  assert.equal(read(path.join(L.rootfs, marker)), 'A');
  assert.equal(fs.existsSync(`/${marker}`), false);
  await L.copy(['a.txt'], `/up/${marker}`);
  assert.equal(read(path.join(L.rootfs, 'tmp', marker)), 'A');
  assert.equal(fs.existsSync(`/tmp/${marker}`), false);
  // Debian's merged /usr: a copied bin/ directory lands in usr/bin, the symlink stays.
  fs.mkdirSync(path.join(L.rootfs, 'usr/bin'), { recursive: true });
  fs.symlinkSync('usr/bin', path.join(L.rootfs, 'bin'));
  fs.symlinkSync('/', path.join(L.rootfs, 'etc'));
  await L.copy(['tree'], '/');
  assert.equal(read(path.join(L.rootfs, 'usr/bin/tool')), 'T');
  assert.ok(lst(path.join(L.rootfs, 'bin')).isSymbolicLink());
  assert.equal(read(path.join(L.rootfs, 'conf')), 'C', '/etc -> / is followed inside the rootfs');
  assert.equal(fs.existsSync('/conf'), false);
});

test('heredoc sources follow the file placement rules', async (t) => {
  const rootfs = tmp(t);
  await writeHeredocFile(rootfs, '/app', 'bin/', 'run.sh', 'echo hi\n', { uid: 7, gid: 8 }, 0o755);
  const st = lst(path.join(rootfs, 'app/bin/run.sh'));
  assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [7, 8, 0o755]);
  assert.equal(read(path.join(rootfs, 'app/bin/run.sh')), 'echo hi\n');
  await writeHeredocFile(rootfs, '/', '/etc/motd', 'EOF', 'hello\n');
  assert.equal(lst(path.join(rootfs, 'etc/motd')).mode & 0o7777, 0o644);
});

// ---------------------------------------------------------------- ADD

test('ADD extracts local tar archives (plain, gzip, bzip2, xz) and copies other files as they are', async (t) => {
  requireTool('tar');
  requireTool('bzip2');
  requireTool('xz', 'xz-utils');
  const L = layout(t, { 'payload/bin/app': 'APP', 'payload/etc/conf': 'CONF', 'notes.txt': 'n' });
  fs.chmodSync(path.join(L.ctx, 'payload/bin/app'), 0o4711);
  for (const [name, flag] of [['p.tar', ''], ['p.tar.gz', 'z'], ['p.tbz', 'j'], ['p.txz', 'J']] as const) {
    run('tar', [`-c${flag}f`, path.join(L.ctx, name), '--owner=1000', '--group=1000', '-C', path.join(L.ctx, 'payload'), '.']);
  }
  run('gzip', ['-k', path.join(L.ctx, 'notes.txt')]);
  assert.equal(await detectArchive(path.join(L.ctx, 'notes.txt.gz')), null);
  assert.equal(await detectArchive(path.join(L.ctx, 'p.tbz')), 'bzip2');
  for (const name of ['p.tar', 'p.tar.gz', 'p.tbz', 'p.txz']) {
    await L.copy([name], `/x/${name}`, { add: true });
    const d = path.join(L.rootfs, 'x', name);
    assert.ok(lst(d).isDirectory(), `${name} is extracted into a directory`);
    assert.equal(read(path.join(d, 'bin/app')), 'APP');
    assert.equal(read(path.join(d, 'etc/conf')), 'CONF');
    assert.equal(lst(path.join(d, 'bin/app')).uid, 1000, 'archive ownership is kept');
    assert.equal(lst(path.join(d, 'bin/app')).mode & 0o7777, 0o4711);
  }
  await L.copy(['notes.txt.gz'], '/n/', { add: true });
  assert.ok(lst(path.join(L.rootfs, 'n/notes.txt.gz')).isFile(), 'a gzip that is not a tar is copied as is');
  await L.copy(['p.tar'], '/y/', { add: false });
  assert.ok(lst(path.join(L.rootfs, 'y/p.tar')).isFile(), 'COPY never extracts');
});

test('ADD refuses archive members that climb out of the destination', async (t) => {
  const L = layout(t, {});
  const pack = tarStream.pack();
  pack.entry({ name: 'ok.txt' }, 'ok');
  pack.entry({ name: '../../evil.txt' }, 'evil');
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack) chunks.push(c as Buffer);
  fs.writeFileSync(path.join(L.ctx, 'evil.tar'), Buffer.concat(chunks));
  await rejectsWith(L.copy(['evil.tar'], '/d/', { add: true }), 'E_HOSTILE_TAR', /"\.\.\/\.\.\/evil\.txt"/);
  assert.equal(fs.existsSync(path.join(L.rootfs, 'evil.txt')), false);
  assert.equal(fs.existsSync(path.join(path.dirname(L.rootfs), 'evil.txt')), false);
});

test('ADD of a URL: name from the path, mode 0600, Last-Modified mtime, --checksum verified', async (t) => {
  const body = 'remote content\n';
  const server = http.createServer((req, res) => {
    if (req.url === '/files/tool.sh') {
      res.writeHead(200, { 'Last-Modified': 'Wed, 21 Oct 2015 07:28:00 GMT', 'Content-Length': String(body.length) });
      res.end(body);
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const dir = tmp(t);
  const good = 'sha256:' + (await import('node:crypto')).createHash('sha256').update(body).digest('hex');
  const got = await fetchUrl(`${base}/files/tool.sh`, dir, good);
  assert.equal(got.digest, good);
  assert.equal(got.path, path.join(dir, 'tool.sh'));
  assert.equal(read(got.path), body);
  assert.equal(lst(got.path).mode & 0o7777, 0o600);
  assert.equal(lst(got.path).mtime.toISOString(), '2015-10-21T07:28:00.000Z');
  fs.rmSync(got.path);
  const bad = 'sha256:' + '0'.repeat(64);
  await rejectsWith(fetchUrl(`${base}/files/tool.sh`, dir, bad), 'E_DIGEST_MISMATCH', new RegExp(`${base}/files/tool\\.sh.*expected ${bad}`));
  assert.deepEqual(fs.readdirSync(dir), [], 'nothing is left behind');
  await rejectsWith(fetchUrl(`${base}/nope`, dir), 'E_TRANSPORT', /HTTP 404/);
  await rejectsWith(fetchUrl(`${base}/files/tool.sh`, dir, 'md5:abc'), 'E_INVALID_ARGUMENT', /--checksum=md5:abc/);
  // The download then goes through the ordinary file rules.
  const again = await fetchUrl(`${base}/files/tool.sh`, dir);
  const rootfs = tmp(t);
  const selected = await selectSources(dir, [path.basename(again.path)], { what: 'ADD' });
  await copyInto({ rootfs, workdir: '/', dest: '/usr/local/bin/', srcRoot: dir, selected, preserveOwnership: false, parents: false, add: false });
  assert.equal(lst(path.join(rootfs, 'usr/local/bin/tool.sh')).mode & 0o7777, 0o600);
});
