/**
 * `kiln build` end to end, the filesystem it produces: COPY/ADD placement rules, archives and
 * here-documents, whiteouts and opaque directories, hard and symbolic links, special mode bits,
 * ownership, .containerignore, --from, --exclude and --parents. Each test builds real images in
 * one shared store (busybox base) and reads them back through `kiln image mount`, through the
 * layer tars of `kiln save --format oci-dir`, and through umoci (an independent unpacker).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireTool, run, type Sandbox } from './helpers/env';
import { buildImage, withMounted, saveOciDir, topLayer, listTar, leftovers, writeContext, buildOk } from './helpers/build';
import { baseSandbox, teardown } from './helpers/build-e2e';

let sb: Sandbox;

before(async () => {
  sb = await baseSandbox('kiln-build-rootfs-');
});
after(() => teardown(sb));

const read = (root: string, p: string) => fs.readFileSync(path.join(root, p), 'utf8');
const exists = (root: string, p: string) => {
  try {
    fs.lstatSync(path.join(root, p));
    return true;
  } catch {
    return false;
  }
};
/** Every path under dir, relative, sorted (directories included). */
function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    out.push(r);
    if (e.isDirectory()) out.push(...walk(dir, r));
  }
  return out.sort();
}

test('COPY: destination rules (trailing slash, existing dir, WORKDIR-relative), dir contents, globs, symlinks kept inside dirs', async () => {
  buildImage(
    sb,
    'rootfs-copy',
    [
      'FROM localhost/busybox',
      'COPY f /asfile',
      'COPY f /intodir/',
      'COPY f /etc',
      'COPY dir /dircontents',
      'COPY dir/ /dircontents2/',
      'COPY *.txt /globs/',
      'COPY g?.txt f /multi/',
      'COPY pkg.tar /notextracted/',
      'COPY toplink /followed',
      'WORKDIR /w',
      'COPY f rel/',
      'COPY f ./dot',
      '',
    ].join('\n'),
    {
      f: 'F\n',
      'dir/a': 'A\n',
      'dir/sub/b': 'B\n',
      'dir/lnk': { symlink: 'a' },
      'dir/exe': { content: '#!/bin/sh\n', mode: 0o755 },
      toplink: { symlink: 'f' },
      'g1.txt': 'g1\n',
      'g2.txt': 'g2\n',
      'other.md': 'no\n',
      'pkg.tar': { bytes: fs.readFileSync(path.join(sb.dir, 'busybox-rootfs.tar')).subarray(0, 10240) },
    },
  );
  await withMounted(sb, 'rootfs-copy', (root) => {
    assert.ok(fs.statSync(path.join(root, 'asfile')).isFile(), 'COPY f /asfile makes a file named asfile');
    assert.equal(read(root, 'asfile'), 'F\n');
    assert.equal(read(root, 'intodir/f'), 'F\n', 'a trailing slash makes a directory');
    assert.equal(read(root, 'etc/f'), 'F\n', 'an existing directory receives the file');
    assert.ok(exists(root, 'etc/passwd'), 'the existing directory keeps its content');
    for (const d of ['dircontents', 'dircontents2']) {
      assert.deepEqual(walk(path.join(root, d)), ['a', 'exe', 'lnk', 'sub', 'sub/b'], `${d}: a directory source copies its contents, not itself`);
      assert.equal(fs.readlinkSync(path.join(root, d, 'lnk')), 'a', 'a symlink inside a copied directory stays a symlink');
      assert.equal(fs.statSync(path.join(root, d, 'exe')).mode & 0o777, 0o755, 'the source mode is kept');
    }
    assert.deepEqual(walk(path.join(root, 'globs')), ['g1.txt', 'g2.txt']);
    assert.deepEqual(walk(path.join(root, 'multi')), ['f', 'g1.txt', 'g2.txt']);
    assert.deepEqual(walk(path.join(root, 'notextracted')), ['pkg.tar'], 'COPY never extracts archives');
    assert.ok(fs.lstatSync(path.join(root, 'followed')).isFile(), 'a symlink named as the source is followed');
    assert.equal(read(root, 'followed'), 'F\n');
    assert.equal(read(root, 'w/rel/f'), 'F\n', 'a relative destination is under WORKDIR');
    assert.equal(read(root, 'w/dot'), 'F\n');
  });
});

test('COPY with several sources and no trailing slash fails, naming the instruction', () => {
  const ctx = writeContext(sb, 'ctx-multi-err', { Containerfile: 'FROM localhost/busybox\nCOPY f g /nodir\n', f: 'f', g: 'g' });
  const r = sb.kiln(['build', '-t', 'rootfs-multi-err', ctx]);
  assert.equal(r.status, 125, r.stderr);
  assert.match(r.stderr, /Containerfile:2/);
  assert.match(r.stderr, /must be a directory and end with a \//);
});

test('ADD extracts local tar archives (plain and gzip), COPY/ADD here-documents write files', async () => {
  const src = writeContext(sb, 'tarsrc', { 'top.txt': 'top\n', 'deep/er/x': 'x\n', 'run.sh': { content: '#!/bin/sh\n', mode: 0o750 } });
  const ctx = writeContext(sb, 'ctx-add', {
    Containerfile: [
      'FROM localhost/busybox',
      'ENV WHO=world',
      'ADD plain.tar /plain/',
      'ADD packed.tar.gz /gz',
      'ADD <<EOT /heredoc.txt',
      'hello ${WHO}',
      'EOT',
      'COPY <<EOF /etc/cfg.conf',
      'key=value',
      'second line',
      'EOF',
      "COPY --chmod=0755 <<'EOS' /usr/bin/hello.sh",
      '#!/bin/sh',
      'echo $WHO',
      'EOS',
      '',
    ].join('\n'),
  });
  run('tar', ['-cf', path.join(ctx, 'plain.tar'), '-C', src, '.']);
  run('tar', ['-czf', path.join(ctx, 'packed.tar.gz'), '-C', src, '.']);
  buildOk(sb, ctx, ['-t', 'rootfs-add']);
  await withMounted(sb, 'rootfs-add', (root) => {
    for (const d of ['plain', 'gz']) {
      assert.deepEqual(walk(path.join(root, d)), ['deep', 'deep/er', 'deep/er/x', 'run.sh', 'top.txt'], `${d}: the archive is extracted`);
      assert.equal(read(root, `${d}/deep/er/x`), 'x\n');
      assert.equal(fs.statSync(path.join(root, d, 'run.sh')).mode & 0o777, 0o750, 'modes from the archive are kept');
    }
    assert.equal(read(root, 'heredoc.txt'), 'hello world\n', 'an unquoted here-document delimiter expands variables');
    assert.equal(read(root, 'etc/cfg.conf'), 'key=value\nsecond line\n');
    assert.equal(read(root, 'usr/bin/hello.sh'), '#!/bin/sh\necho $WHO\n', 'a quoted delimiter keeps the text verbatim');
    assert.equal(fs.statSync(path.join(root, 'usr/bin/hello.sh')).mode & 0o7777, 0o755);
  });
});

test('whiteouts: a base file removed by RUN is absent and its layer holds a .wh. entry; a directory deleted and recreated holds only the new content', async () => {
  buildImage(
    sb,
    'rootfs-whiteout',
    [
      'FROM localhost/busybox',
      'RUN mkdir -p /od/sub && echo old > /od/old && echo old > /od/sub/x && echo keep > /keep',
      'RUN rm /etc/group && rm -rf /od && mkdir /od && echo new > /od/new',
      '',
    ].join('\n'),
  );
  await withMounted(sb, 'rootfs-whiteout', (root) => {
    assert.ok(!exists(root, 'etc/group'), '/etc/group was deleted');
    assert.ok(exists(root, 'etc/passwd'));
    assert.deepEqual(walk(path.join(root, 'od')), ['new'], 'the recreated directory holds only the new content');
    assert.equal(read(root, 'keep'), 'keep\n');
  });
  const layout = saveOciDir(sb, 'rootfs-whiteout', 'oci-whiteout');
  const entries = await topLayer(layout);
  const names = entries.map((e) => e.name);
  assert.ok(names.includes('etc/.wh.group'), `the layer records the deletion: ${names.join(', ')}`);
  assert.ok(names.includes('od/.wh..wh..opq') || (names.includes('od/.wh.old') && names.includes('od/.wh.sub')), `the layer hides the old directory content: ${names.join(', ')}`);
  assert.ok(names.includes('od/new'));
  assert.ok(!names.includes('keep'), 'an unchanged file is not in the layer');
});

test('hard links, symlinks, setuid/setgid and sticky bits survive into the image and its layer tar', async () => {
  buildImage(
    sb,
    'rootfs-links',
    [
      'FROM localhost/busybox',
      'RUN echo data > /a && ln /a /b && ln /etc/passwd /etc/passwd.hard' +
        ' && ln -s /a /abs-link && ln -s ../a /etc/rel-link && ln -s /nowhere /dangling' +
        ' && touch /suid /sgid && chmod 4755 /suid && chmod 2755 /sgid && mkdir /sticky && chmod 1777 /sticky',
      '',
    ].join('\n'),
  );
  await withMounted(sb, 'rootfs-links', (root) => {
    const a = fs.statSync(path.join(root, 'a'));
    const b = fs.statSync(path.join(root, 'b'));
    assert.equal(a.ino, b.ino, '/a and /b are one inode');
    assert.equal(a.nlink, 2);
    assert.equal(fs.statSync(path.join(root, 'etc/passwd')).ino, fs.statSync(path.join(root, 'etc/passwd.hard')).ino, 'a link to a base file shares its inode');
    assert.equal(fs.readlinkSync(path.join(root, 'abs-link')), '/a');
    assert.equal(fs.readlinkSync(path.join(root, 'etc/rel-link')), '../a');
    assert.equal(fs.readlinkSync(path.join(root, 'dangling')), '/nowhere');
    assert.equal(fs.statSync(path.join(root, 'suid')).mode & 0o7777, 0o4755);
    assert.equal(fs.statSync(path.join(root, 'sgid')).mode & 0o7777, 0o2755);
    const sticky = fs.statSync(path.join(root, 'sticky'));
    assert.ok(sticky.isDirectory());
    assert.equal(sticky.mode & 0o7777, 0o1777);
  });
  const entries = await topLayer(saveOciDir(sb, 'rootfs-links', 'oci-links'));
  const by = new Map(entries.map((e) => [e.name, e]));
  const ab = [by.get('a'), by.get('b')];
  assert.ok(ab[0] && ab[1], 'both names are in the layer');
  const link = ab.find((e) => e!.type === 'link');
  const file = ab.find((e) => e!.type === 'file');
  assert.ok(link && file, `one of /a, /b is a hardlink entry to the other: ${JSON.stringify(ab)}`);
  assert.equal(link.linkname, file.name);
  assert.equal(file.text, 'data\n');
  const pw = [by.get('etc/passwd'), by.get('etc/passwd.hard')];
  assert.equal(pw.filter((e) => e?.type === 'link').length, 1, 'the link to the base file is a hardlink entry too');
  assert.equal(by.get('abs-link')?.type, 'symlink');
  assert.equal(by.get('abs-link')?.linkname, '/a');
  assert.equal(by.get('dangling')?.linkname, '/nowhere');
  assert.equal(by.get('suid')!.mode & 0o7777, 0o4755);
  assert.equal(by.get('sgid')!.mode & 0o7777, 0o2755);
  assert.equal(by.get('sticky')!.type, 'directory');
  assert.equal(by.get('sticky')!.mode & 0o7777, 0o1777);
});

test('ownership and modes: COPY --chown=uid:gid, --chown=name, --chown=name:group, --chmod; RUN under USER', async () => {
  buildImage(
    sb,
    'rootfs-owner',
    [
      'FROM localhost/busybox',
      'RUN echo "bob:x:4321:4322::/home/bob:/bin/sh" >> /etc/passwd && echo "bobs:x:4322:" >> /etc/group && echo "staff:x:50:" >> /etc/group',
      'COPY --chown=1234:5678 f /numeric',
      'COPY --chown=1234 f /uid-only',
      'COPY --chown=bob f /byname',
      'COPY --chown=bob:staff dir /bydir/',
      'COPY --chmod=0741 f /chmod',
      'COPY --chown=7:8 --chmod=600 f /both',
      'RUN mkdir /home/u && chown 1000 /home/u',
      'USER 1000',
      'RUN echo mine > /home/u/made-by-1000 && mkdir /home/u/d && touch /tmp/t1000',
      'USER 4321',
      'RUN touch /tmp/by-bob',
      '',
    ].join('\n'),
    { f: 'F\n', 'dir/x': 'x', 'dir/sub/y': 'y' },
  );
  await withMounted(sb, 'rootfs-owner', (root) => {
    const own = (p: string) => {
      const st = fs.lstatSync(path.join(root, p));
      return `${st.uid}:${st.gid}`;
    };
    assert.equal(own('numeric'), '1234:5678');
    assert.equal(own('uid-only'), '1234:1234', 'a bare uid is used as the gid too');
    assert.equal(own('byname'), '4321:4322', "a user name takes the user's primary group from /etc/passwd (buildah, BuildKit)");
    for (const p of ['bydir', 'bydir/x', 'bydir/sub', 'bydir/sub/y']) assert.equal(own(p), '4321:50', `${p}: --chown applies to everything copied`);
    assert.equal(fs.statSync(path.join(root, 'chmod')).mode & 0o7777, 0o741);
    assert.equal(own('chmod'), '0:0', 'files from the context belong to root');
    assert.equal(own('both'), '7:8');
    assert.equal(fs.statSync(path.join(root, 'both')).mode & 0o7777, 0o600);
    assert.equal(own('home/u/made-by-1000'), '1000:0', 'USER 1000 without a passwd entry runs as 1000:0');
    assert.equal(own('home/u/d'), '1000:0');
    assert.equal(own('tmp/t1000'), '1000:0');
    assert.equal(own('tmp/by-bob'), '4321:4322', "USER name runs with the user's primary group");
  });
});

test('.containerignore with a ! exception filters the context for COPY . ', async () => {
  buildImage(sb, 'rootfs-ignore', 'FROM localhost/busybox\nCOPY . /ctx/\n', {
    '.containerignore': '# comment\nlogs/*.log\n!logs/keep.log\nsecret.txt\n**/*.tmp\n',
    'logs/a.log': 'a',
    'logs/keep.log': 'keep',
    'logs/readme': 'r',
    'secret.txt': 's',
    'src/main.c': 'int main;',
    'src/deep/junk.tmp': 'j',
  });
  await withMounted(sb, 'rootfs-ignore', (root) => {
    const got = walk(path.join(root, 'ctx')).filter((p) => p !== '.containerignore' && p !== 'Containerfile');
    assert.deepEqual(got, ['logs', 'logs/keep.log', 'logs/readme', 'src', 'src/deep', 'src/main.c']);
  });
});

test('COPY --from=NAME, --from=0, --from=IMAGE; ownership from another stage is kept; --exclude; --parents', async () => {
  buildImage(
    sb,
    'rootfs-from',
    [
      'FROM localhost/busybox AS builder',
      'RUN mkdir -p /out/sub && echo built > /out/artifact && echo s > /out/sub/s && chown -R 33:44 /out && chmod 4711 /out/artifact',
      'FROM localhost/busybox',
      'COPY --from=builder /out/artifact /from-name',
      'COPY --from=0 /out /from-index/',
      'COPY --from=localhost/busybox /etc/passwd /from-image',
      'COPY --chown=1:2 --from=builder /out/sub/s /from-chown',
      'COPY --exclude=**/*.md --exclude=secret src /excluded/',
      'COPY --exclude=*.md src/a/b/* /excluded-glob/',
      'COPY --parents src/a/b/f.go src/c/g.go /par/',
      'COPY --parents src/*/g.go /par-glob/',
      '',
    ].join('\n'),
    { 'src/a/b/f.go': 'f', 'src/a/b/m.md': 'm', 'src/c/g.go': 'g', 'src/top.md': 't', 'src/secret': 's' },
  );
  await withMounted(sb, 'rootfs-from', (root) => {
    assert.equal(read(root, 'from-name'), 'built\n');
    const art = fs.statSync(path.join(root, 'from-name'));
    assert.equal(`${art.uid}:${art.gid}`, '33:44', 'COPY --from keeps the owner');
    assert.equal(art.mode & 0o7777, 0o4711, 'and the mode bits');
    assert.deepEqual(walk(path.join(root, 'from-index')), ['artifact', 'sub', 'sub/s']);
    assert.equal(read(root, 'from-image'), read(root, 'etc/passwd'));
    const ch = fs.statSync(path.join(root, 'from-chown'));
    assert.equal(`${ch.uid}:${ch.gid}`, '1:2', '--chown wins over the source owner');
    assert.deepEqual(walk(path.join(root, 'excluded')), ['a', 'a/b', 'a/b/f.go', 'c', 'c/g.go']);
    assert.deepEqual(walk(path.join(root, 'excluded-glob')), ['f.go']);
    assert.deepEqual(walk(path.join(root, 'par')), ['src', 'src/a', 'src/a/b', 'src/a/b/f.go', 'src/c', 'src/c/g.go']);
    assert.deepEqual(walk(path.join(root, 'par-glob')), ['src', 'src/c', 'src/c/g.go']);
  });
});

test('umoci (independent unpacker) sees the same rootfs: whiteouts applied, links, modes and owners', async () => {
  requireTool('umoci');
  buildImage(
    sb,
    'rootfs-umoci',
    [
      'FROM localhost/busybox',
      'RUN mkdir /od && echo old > /od/old && echo x > /gone',
      'RUN rm /gone /etc/group && rm -rf /od && mkdir /od && echo new > /od/new && ln /od/new /od/new2 && chown 12:34 /od/new && chmod 4750 /od/new',
      'COPY --chown=5:6 f /copied',
      'RUN ln -s /copied /sym && mkdir /sticky && chmod 1777 /sticky',
      '',
    ].join('\n'),
    { f: 'F\n' },
  );
  const layout = path.join(sb.dir, 'umoci-layout');
  sb.ok(['push', 'rootfs-umoci', `oci:${layout}:t`]);
  const bundle = path.join(sb.dir, 'umoci-bundle');
  run('umoci', ['unpack', '--image', `${layout}:t`, bundle]);
  const root = path.join(bundle, 'rootfs');
  assert.ok(!exists(root, 'gone'));
  assert.ok(!exists(root, 'etc/group'));
  assert.ok(exists(root, 'etc/passwd'));
  assert.deepEqual(walk(path.join(root, 'od')), ['new', 'new2']);
  const n = fs.statSync(path.join(root, 'od/new'));
  assert.equal(n.ino, fs.statSync(path.join(root, 'od/new2')).ino);
  assert.equal(n.mode & 0o7777, 0o4750);
  assert.equal(`${n.uid}:${n.gid}`, '12:34');
  const c = fs.statSync(path.join(root, 'copied'));
  assert.equal(`${c.uid}:${c.gid}`, '5:6');
  assert.equal(read(root, 'copied'), 'F\n');
  assert.equal(fs.readlinkSync(path.join(root, 'sym')), '/copied');
  assert.equal(fs.statSync(path.join(root, 'sticky')).mode & 0o7777, 0o1777);
  assert.ok(fs.lstatSync(path.join(root, 'bin/sh')).isSymbolicLink(), 'the base layer is there too');
  // the whole layer chain as tars: the base layer plus one per RUN/COPY
  const saved = saveOciDir(sb, 'rootfs-umoci', 'oci-umoci');
  assert.equal(saved.manifest.layers.length, 5);
  const copyLayer = await listTar(saved.blob(saved.manifest.layers[3]!.digest));
  assert.deepEqual(
    copyLayer.filter((e) => e.type !== 'directory').map((e) => [e.name, e.uid, e.gid]),
    [['copied', 5, 6]],
  );
});

test('builds leave no mounts and no runtime containers behind', () => {
  const l = leftovers(sb);
  assert.deepEqual(l.mounts, []);
  assert.deepEqual(l.containers, []);
});
