/**
 * Regression tests for `kiln build` bugs found in review (each fixed in 3f071de): every test
 * fails on the old behaviour named in its title and passes now. They go through the real CLI
 * with `--progress=json`; each test builds its own context with contents of its own, so the
 * tests share one store without sharing cache entries. After every failing build nothing may
 * stay mounted under the sandbox and no runc container may be left.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sandbox } from './helpers/env';
import {
  baseSandbox,
  buildJson,
  buildOk,
  exitOf,
  layerSteps,
  mountsUnder,
  runcContainers,
  spawnBuild,
  stepByText,
  teardown,
  writeTree,
  type BuildRun,
} from './helpers/build-e2e';

let sb: Sandbox;
before(async () => {
  sb = await baseSandbox('kiln-build-regress-');
});
after(() => teardown(sb));

/** A context directory `ctx-<tag>` in the sandbox holding `files`. */
function context(tag: string, files: Record<string, string>): string {
  return writeTree(path.join(sb.dir, `ctx-${tag}`), files);
}

/** Runs `fn` on the image's root filesystem (through `kiln image mount`), unmounting afterwards. */
function inImage<T>(image: string, fn: (root: string) => T): T {
  const root = sb.ok(['image', 'mount', image]).trim();
  try {
    return fn(root);
  } finally {
    sb.ok(['image', 'unmount', image]);
  }
}

function exists(p: string): boolean {
  try {
    fs.lstatSync(p);
    return true;
  } catch {
    return false;
  }
}

/** Asserts that a build failed and left nothing mounted under the sandbox and no runc container. */
function assertFailedClean(r: BuildRun, what: string): void {
  assert.notEqual(r.status, 0, `${what}: the build must fail`);
  assert.deepEqual(mountsUnder(sb.dir), [], `${what}: nothing stays mounted under the sandbox`);
  assert.deepEqual(runcContainers(sb.runroot), [], `${what}: no runc container is left`);
}

test('a RUN heredoc starting with #! is in the cache key: changing its body misses the cache (old: the script text was not keyed)', () => {
  const cf = (word: string) => `FROM localhost/busybox\nRUN <<EOF\n#!/bin/sh\necho ${word} > /f\nEOF\nRUN cat /f\n`;
  const ctx = context('heredoc', { Containerfile: cf('one') });
  const first = buildOk(sb, ['-t', 'localhost/regress-heredoc', ctx]);
  assert.equal(layerSteps(first.events)[0]?.outcome, 'ran');
  assert.equal(inImage('localhost/regress-heredoc', (r) => fs.readFileSync(path.join(r, 'f'), 'utf8')), 'one\n');
  fs.writeFileSync(path.join(ctx, 'Containerfile'), cf('two'));
  const second = buildOk(sb, ['-t', 'localhost/regress-heredoc', ctx]);
  const steps = layerSteps(second.events);
  assert.match(steps[0]?.text ?? '', /^RUN <<EOF/, 'the first layer step is the heredoc');
  assert.equal(steps[0]?.outcome, 'ran', 'the changed heredoc misses the cache');
  assert.notEqual(second.id, first.id);
  assert.equal(inImage('localhost/regress-heredoc', (r) => fs.readFileSync(path.join(r, 'f'), 'utf8')), 'two\n');
});

test('a context bind mount honours .containerignore, and only non-ignored files are in the cache key', () => {
  const ctx = context('ignore', {
    Containerfile: "FROM localhost/busybox\nRUN --mount=type=bind,target=/src sh -c 'ls -a /src > /out'\n",
    '.containerignore': 'ignored.txt\n',
    'ignored.txt': 'ignored v1\n',
    'kept.txt': 'kept v1\n',
  });
  const step = "RUN --mount=type=bind,target=/src sh -c 'ls -a /src > /out'";
  buildOk(sb, ['-t', 'localhost/regress-ignore', ctx]);
  const listing = inImage('localhost/regress-ignore', (r) => fs.readFileSync(path.join(r, 'out'), 'utf8')).split('\n');
  assert.ok(listing.includes('kept.txt'), `the mount shows kept.txt: ${listing.join(' ')}`);
  assert.ok(!listing.includes('ignored.txt'), `the mount must not show ignored.txt: ${listing.join(' ')}`);

  fs.writeFileSync(path.join(ctx, 'ignored.txt'), 'ignored v2\n');
  assert.equal(stepByText(buildOk(sb, [ctx]).events, step).outcome, 'cached', 'changing an ignored file keeps the cache');
  fs.writeFileSync(path.join(ctx, 'kept.txt'), 'kept v2\n');
  assert.equal(stepByText(buildOk(sb, [ctx]).events, step).outcome, 'ran', 'changing a non-ignored file misses the cache');
});

test('a bind mount from a stage resolves a symlink source inside that stage (old: the host file was bound)', () => {
  const hostFile = path.join(sb.dir, 'hostfile');
  fs.writeFileSync(hostFile, 'HOST\n');
  const ctx = context('bindlink', {
    Containerfile: `FROM localhost/busybox AS s
RUN mkdir -p ${sb.dir} && echo IMAGE > ${hostFile} && ln -s ${hostFile} /lnk
FROM localhost/busybox
RUN --mount=type=bind,from=s,source=/lnk,target=/m cat /m > /out
`,
  });
  buildOk(sb, ['-t', 'localhost/regress-bindlink', ctx]);
  assert.equal(inImage('localhost/regress-bindlink', (r) => fs.readFileSync(path.join(r, 'out'), 'utf8')), 'IMAGE\n');
  assert.equal(fs.readFileSync(hostFile, 'utf8'), 'HOST\n', 'the host file is untouched');
});

test('WORKDIR through a symlink to an absolute path creates the directory in the rootfs, never on the host', () => {
  const hostDir = path.join(sb.dir, 'hostdir');
  fs.mkdirSync(hostDir);
  const ctx = context('workdirlink', {
    Containerfile: `FROM localhost/busybox
WORKDIR /w
RUN rm -rf /w && ln -s ${hostDir} /w
WORKDIR /w/sub
RUN pwd
`,
  });
  const r = buildJson(sb, [ctx]);
  assert.equal(exists(path.join(hostDir, 'sub')), false, `WORKDIR must not create ${hostDir}/sub on the host (build exit ${r.status}: ${r.stderr})`);
  assert.deepEqual(fs.readdirSync(hostDir), [], 'the host directory stays empty');
  if (r.status !== 0) assertFailedClean(r, 'WORKDIR through a symlink');
});

test('a tmpfs mount stub is removed exactly: its parents that the step filled stay (old: /opt was pruned)', () => {
  const ctx = context('tmpfs', {
    Containerfile: `FROM localhost/busybox
RUN --mount=type=tmpfs,target=/opt/scratch mkdir -p /opt/app/empty && touch /opt/app/.keep /opt/READY
`,
  });
  buildOk(sb, ['-t', 'localhost/regress-tmpfs', ctx]);
  inImage('localhost/regress-tmpfs', (root) => {
    assert.ok(fs.statSync(path.join(root, 'opt/app/empty')).isDirectory(), '/opt/app/empty is a directory');
    assert.ok(fs.statSync(path.join(root, 'opt/app/.keep')).isFile(), '/opt/app/.keep is a file');
    assert.ok(fs.statSync(path.join(root, 'opt/READY')).isFile(), '/opt/READY is a file');
    assert.equal(exists(path.join(root, 'opt/scratch')), false, 'the mount point stub /opt/scratch is gone');
  });
});

test('a secret mount at /run/secrets/x leaves no /run/secrets, nor /run when the step made nothing there, and keeps what it made', () => {
  const secret = path.join(sb.dir, 'secret-x.txt');
  fs.writeFileSync(secret, 'regress-secret\n');
  const ctx = context('secret', {
    Containerfile: `FROM localhost/busybox
RUN --mount=type=secret,id=x,required=true cp /run/secrets/x /copied
RUN if [ -e /run ]; then ls -la /run; else echo absent; fi > /run-state
RUN --mount=type=secret,id=x,required=true touch /run/.keep
`,
  });
  buildOk(sb, ['--secret', `id=x,src=${secret}`, '-t', 'localhost/regress-secret', ctx]);
  inImage('localhost/regress-secret', (root) => {
    assert.equal(fs.readFileSync(path.join(root, 'copied'), 'utf8'), 'regress-secret\n', 'the step read the secret');
    assert.equal(fs.readFileSync(path.join(root, 'run-state'), 'utf8'), 'absent\n', 'after a secret-only step the base still has no /run');
    assert.equal(exists(path.join(root, 'run/secrets')), false, 'no /run/secrets in the image');
    assert.ok(fs.statSync(path.join(root, 'run/.keep')).isFile(), 'the empty file the step made under the stub /run stays');
  });
});

test('--timestamp is in every layer key: a --timestamp 0 build does not take a layer made without it', () => {
  const ctx = context('timestamp', { Containerfile: 'FROM localhost/busybox\nRUN echo hi-timestamp > /hi\n' });
  const step = 'RUN echo hi-timestamp > /hi';
  buildOk(sb, [ctx]);
  const ts = buildOk(sb, ['--timestamp', '0', ctx]);
  assert.notEqual(stepByText(ts.events, step).outcome, 'cached', 'the --timestamp 0 build must not reuse the un-clamped layer');
  const fresh = buildOk(sb, ['--timestamp', '0', '--no-cache', ctx]);
  assert.equal(ts.id, fresh.id, 'the --timestamp 0 build is the same image as a --no-cache one');
});

test('COPY --from=$ARG and a bind mount from=${ARG} take the global ARG, as BuildKit does', () => {
  const ctx = context('fromarg', {
    Containerfile: `ARG SRC=a
FROM localhost/busybox AS a
RUN echo a > /o
FROM localhost/busybox AS b
RUN echo b > /o
FROM localhost/busybox
ARG SRC=b
COPY --from=$SRC /o /o
RUN --mount=type=bind,from=\${SRC},target=/x cat /x/o > /o2
`,
  });
  buildOk(sb, ['-t', 'localhost/regress-fromarg', ctx]);
  const files = inImage('localhost/regress-fromarg', (r) => ({ o: fs.readFileSync(path.join(r, 'o'), 'utf8'), o2: fs.readFileSync(path.join(r, 'o2'), 'utf8') }));
  assert.deepEqual(files, { o: 'a\n', o2: 'a\n' });
});

test('three concurrent builds of one file all succeed and leave a consistent store (old: leaked layers)', async () => {
  const ctx = context('concurrent', {
    Containerfile: `FROM localhost/busybox AS b
RUN head -c8 /dev/urandom > /r3; sleep 1
FROM localhost/busybox
COPY --from=b /r3 /r3
`,
  });
  const builds = [0, 1, 2].map(() => spawnBuild(sb, ['--progress=plain', ctx]));
  const exits = await Promise.all(builds.map((b) => exitOf(b.child, 30_000)));
  exits.forEach((e, i) => assert.equal(e.code, 0, `build ${i} exited ${e.code ?? e.signal}:\n${builds[i]!.output()}`));
  const check = sb.kiln(['system', 'check']);
  assert.equal(check.status, 0, `kiln system check exited ${check.status}:\n${check.stdout}${check.stderr}`);
});

test('WORKDIR onto a file fails naming Containerfile:N and "not a directory", without raw errno or store paths', () => {
  const ctx = context('workdirfile', { Containerfile: 'FROM localhost/busybox\nWORKDIR /etc/passwd\nRUN true\n' });
  const r = buildJson(sb, [ctx]);
  assertFailedClean(r, 'WORKDIR /etc/passwd');
  assert.match(r.stderr, /Containerfile:[23]\b/, `the error names the Containerfile line: ${r.stderr}`);
  assert.match(r.stderr, /not a directory/i);
  assert.doesNotMatch(r.stderr, /EEXIST|ENOTDIR/, 'no raw errno code');
  assert.ok(!r.stderr.includes(sb.root) && !r.stderr.includes(sb.runroot), `no store path in: ${r.stderr}`);
});

test('USER with an unknown name fails naming Containerfile:N and the user', () => {
  const ctx = context('nouser', { Containerfile: 'FROM localhost/busybox\nUSER nosuchuser\nRUN true\n' });
  const r = buildJson(sb, [ctx]);
  assertFailedClean(r, 'USER nosuchuser');
  assert.match(r.stderr, /Containerfile:[23]\b/, `the error names the Containerfile line: ${r.stderr}`);
  assert.match(r.stderr, /nosuchuser/);
  assert.ok(!r.stderr.includes(sb.root) && !r.stderr.includes(sb.runroot), `no store path in: ${r.stderr}`);
});

test('WORKDIR creates its directory owned by the current USER, so the user can write there', () => {
  const ctx = context('workdiruser', { Containerfile: 'FROM localhost/busybox\nUSER 1234:1234\nWORKDIR /home/u/work\nRUN touch f\n' });
  buildOk(sb, ['-t', 'localhost/regress-workdiruser', ctx]);
  inImage('localhost/regress-workdiruser', (root) => {
    const st = fs.statSync(path.join(root, 'home/u/work'));
    assert.deepEqual([st.uid, st.gid], [1234, 1234], '/home/u/work is owned by 1234:1234');
    assert.equal(fs.statSync(path.join(root, 'home/u/work/f')).uid, 1234, 'the RUN wrote f as 1234');
  });
});

test('COPY --link --chown=NAME:NAME resolves names from the stage\'s /etc/passwd and /etc/group', () => {
  const ctx = context('linkchown', {
    Containerfile: `FROM localhost/busybox
RUN echo 'bob:x:4321:4322:bob:/home/bob:/bin/sh' >> /etc/passwd && echo 'bob:x:4322:' >> /etc/group
COPY --link --chown=bob:bob file /f
`,
    file: 'linked\n',
  });
  buildOk(sb, ['-t', 'localhost/regress-linkchown', ctx]);
  inImage('localhost/regress-linkchown', (root) => {
    const st = fs.statSync(path.join(root, 'f'));
    assert.deepEqual([st.uid, st.gid], [4321, 4322], '/f is owned by bob:bob');
    assert.equal(fs.readFileSync(path.join(root, 'f'), 'utf8'), 'linked\n');
  });
});

test('RUN --mount fields take variables: a cache mount at $DIR with id=${ID}', () => {
  const ctx = context('mount-vars', {
    Containerfile: [
      'FROM localhost/busybox',
      'ARG DIR=/var/cache/tool',
      'ARG ID=tool-cache',
      'RUN --mount=type=cache,id=${ID},target=$DIR echo cached > $DIR/seen && ls $DIR > /listing && mount | grep -q " $DIR " && echo mounted > /mounted',
    ].join('\n'),
  });
  buildOk(sb, ['-t', 'localhost/mount-vars', ctx]);
  inImage('localhost/mount-vars', (root) => {
    assert.equal(fs.readFileSync(path.join(root, 'listing'), 'utf8'), 'seen\n', 'the cache dir was mounted at the expanded target');
    assert.equal(fs.readFileSync(path.join(root, 'mounted'), 'utf8'), 'mounted\n');
    assert.equal(exists(path.join(root, 'var/cache/tool/seen')), false, 'what went into the cache mount is not in the layer');
  });
});

test('system prune during a build leaves the cache mount a running step holds alone', async () => {
  const ctx = context('prune-while-locked', {
    Containerfile: "FROM localhost/busybox\nRUN --mount=type=cache,id=held,target=/c,sharing=locked sh -c 'echo data > /c/f; echo started; sleep 3; cat /c/f > /seen'\n",
  });
  const b = spawnBuild(sb, ['--progress=plain', '--no-cache', '-t', 'localhost/prune-while-locked', ctx]);
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (/^started$/m.test(b.output())) {
        clearInterval(t);
        resolve();
      } else if (b.child.exitCode !== null) {
        clearInterval(t);
        reject(new Error(b.output()));
      }
    }, 50);
  });
  sb.ok(['system', 'prune', '-f']);
  const exit = await exitOf(b.child, 30_000);
  assert.equal(exit.code, 0, b.output());
  inImage('localhost/prune-while-locked', (root) => assert.equal(fs.readFileSync(path.join(root, 'seen'), 'utf8'), 'data\n', 'the step still saw its cache dir'));
});

test('a COPY destination with .. is not staged onto an existing directory', () => {
  const ctx = context('dotdot-dest', {
    Containerfile: 'FROM localhost/busybox\nRUN mkdir /data && chmod 1777 /data && chown 12:34 /data\nCOPY a.txt /nonexist/../data/\n',
    'a.txt': 'a\n',
  });
  buildOk(sb, ['-t', 'localhost/dotdot-dest', ctx]);
  inImage('localhost/dotdot-dest', (root) => {
    const st = fs.statSync(path.join(root, 'data'));
    assert.equal((st.mode & 0o7777).toString(8), '1777', 'the existing directory keeps its mode');
    assert.equal(`${st.uid}:${st.gid}`, '12:34', 'and its owner');
    assert.equal(fs.readFileSync(path.join(root, 'data', 'a.txt'), 'utf8'), 'a\n');
  });
});

test('a COPY that overflows the tmpfs staging area falls back to the disk', () => {
  const files: Record<string, string> = { Containerfile: 'FROM localhost/busybox\nCOPY many /many/\n' };
  for (let i = 0; i < 150; i++) files[`many/f${i}`] = `${i}\n`;
  const ctx = context('tmpfs-full', files);
  // a private /dev/shm with room for bytes but only 64 inodes: creating the files fails with ENOSPC
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const { KILN } = require('./helpers/env') as typeof import('./helpers/env');
  const script = `mount -t tmpfs -o size=1g,nr_inodes=64 tmpfs /dev/shm && exec "${process.execPath}" "${KILN}" --root "${sb.root}" --runroot "${sb.runroot}" build -q -t localhost/tmpfs-full "${ctx}"`;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  inImage('localhost/tmpfs-full', (root) => assert.equal(fs.readdirSync(path.join(root, 'many')).length, 150));
});

test('WORKDIR and cache-mount dirs get their modes whatever the umask', () => {
  const ctx = context('umask', {
    Containerfile: "FROM localhost/busybox\nWORKDIR /wd/sub\nRUN --mount=type=cache,id=umask-mode,target=/c,mode=0777 stat -c %a /c > /cache-mode\n",
  });
  const { spawnSync } = require('node:child_process') as typeof import('node:child_process');
  const { KILN } = require('./helpers/env') as typeof import('./helpers/env');
  const r = spawnSync('sh', ['-c', `umask 077 && exec "${process.execPath}" "${KILN}" --root "${sb.root}" --runroot "${sb.runroot}" build -q -t localhost/umask "${ctx}"`], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  inImage('localhost/umask', (root) => {
    assert.equal((fs.statSync(path.join(root, 'wd')).mode & 0o777).toString(8), '755');
    assert.equal((fs.statSync(path.join(root, 'wd/sub')).mode & 0o777).toString(8), '755');
    assert.equal(fs.readFileSync(path.join(root, 'cache-mode'), 'utf8'), '777\n');
  });
});
