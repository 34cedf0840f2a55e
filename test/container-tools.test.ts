/**
 * `kiln cp`, `diff`, `commit`, `top` and `port` end to end through the CLI with real
 * containers (conmon + runc) on the busybox base: cp both ways and as tar streams, symlinks
 * resolved inside the container (never out of it), ownership, --overwrite, a stopped container
 * with a volume and bind mounts; diff's podman order and JSON; a committed image that runs,
 * with its config and history; top's table and the ps fallback; port without mappings; and the
 * errors of each with podman's wording and exit code 125.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KILN, requireTool, type Sandbox } from './helpers/env';
import { BASE, baseSandbox, mountsUnder } from './helpers/build-e2e';
import { teardownContainers } from './helpers/containers';

let sb: Sandbox;

before(async () => {
  sb = await baseSandbox('kiln-ctools-');
});

after(() => teardownContainers(sb));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** kiln with binary stdin/stdout (tar streams). */
function kilnBin(args: string[], input?: Buffer): { status: number | null; stdout: Buffer; stderr: string } {
  const r = spawnSync(process.execPath, [KILN, '--root', sb.root, '--runroot', sb.runroot, ...args], { input, maxBuffer: 64 << 20 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.toString() };
}

interface TarMember { name: string; type: string; uid: number; gid: number; mode: number; linkname: string; data: string }

/** The members of a plain ustar stream (enough for what kiln cp writes in these tests). */
function untar(b: Buffer): TarMember[] {
  const out: TarMember[] = [];
  const str = (o: number, n: number) => b.subarray(o, o + n).toString('latin1').replace(/\0.*$/s, '');
  const num = (o: number, n: number) => parseInt(str(o, n).trim() || '0', 8);
  for (let off = 0; off + 512 <= b.length && b[off] !== 0; ) {
    const size = num(off + 124, 12);
    const prefix = str(off + 345, 155);
    const name = (prefix ? `${prefix}/` : '') + str(off, 100);
    out.push({ name, type: str(off + 156, 1), uid: num(off + 108, 8), gid: num(off + 116, 8), mode: num(off + 100, 8), linkname: str(off + 157, 100), data: b.subarray(off + 512, off + 512 + size).toString('utf8') });
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** A file's content and owner inside a container, through `kiln cp CTR:PATH -`. */
function catIn(ctr: string, p: string): TarMember {
  const r = kilnBin(['cp', `${ctr}:${p}`, '-']);
  assert.equal(r.status, 0, r.stderr);
  const [m] = untar(r.stdout);
  assert.ok(m, `no tar member for ${ctr}:${p}`);
  return m;
}

function fails(args: string[], message: RegExp, code = 125): void {
  const r = sb.kiln(args);
  assert.equal(r.status, code, `kiln ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  assert.match(r.stderr, message);
}

/** Waits until `ctr` has created `file` (its setup commands are done). */
async function ready(ctr: string, file = '/ready'): Promise<void> {
  for (const end = Date.now() + 10_000; kilnBin(['cp', `${ctr}:${file}`, '-']).status !== 0; ) {
    if (Date.now() > end) assert.fail(`${ctr} never made ${file}`);
    await sleep(50);
  }
}

test('cp between the host and a running container: files, directories, "/.", tar streams, ownership, --overwrite', async () => {
  requireTool('tar');
  sb.ok(['run', '-d', '--name', 'cpr', BASE, 'sh', '-c', 'mkdir -p /d/e /w/gone/sub; echo c > /d/c.txt; touch /ready; sleep 100000']);
  await ready('cpr');
  const host = path.join(sb.dir, 'cp-host');
  fs.mkdirSync(path.join(host, 'src', 'sub'), { recursive: true });
  fs.writeFileSync(path.join(host, 'src', 'a.txt'), 'a\n');
  fs.writeFileSync(path.join(host, 'src', 'sub', 'b.txt'), 'b\n');
  fs.symlinkSync('a.txt', path.join(host, 'src', 'link'));
  fs.writeFileSync(path.join(host, 'file.txt'), 'f\n');
  fs.chownSync(path.join(host, 'file.txt'), 1234, 1234);
  fs.chmodSync(path.join(host, 'file.txt'), 0o640);
  fs.utimesSync(path.join(host, 'file.txt'), 978307200, 978307200);

  // host → container: into a directory, under a new name, a directory as itself and "/."
  assert.equal(sb.ok(['cp', path.join(host, 'file.txt'), 'cpr:/d']), '');
  const f = catIn('cpr', '/d/file.txt');
  assert.deepEqual([f.data, f.uid, f.gid, f.mode], ['f\n', 0, 0, 0o640], '--archive (default): owned by the container user');
  sb.ok(['cp', '--archive=false', path.join(host, 'file.txt'), 'cpr:/kept']);
  assert.deepEqual([catIn('cpr', '/kept').uid, catIn('cpr', '/kept').gid], [1234, 1234]);
  sb.ok(['cp', path.join(host, 'src'), 'cpr:/d']);
  sb.ok(['cp', path.join(host, 'src'), 'cpr:/newdir']);
  sb.ok(['container', 'cp', `${path.join(host, 'src')}/.`, 'cpr:/d/e']);
  const listing = sb.ok(['exec', 'cpr', 'sh', '-c', 'cd / && find /d /newdir | sort; readlink /d/src/link']);
  assert.equal(listing, ['/d', '/d/c.txt', '/d/e', '/d/e/a.txt', '/d/e/link', '/d/e/sub', '/d/e/sub/b.txt', '/d/file.txt', '/d/src', '/d/src/a.txt', '/d/src/link', '/d/src/sub', '/d/src/sub/b.txt',
    '/newdir', '/newdir/a.txt', '/newdir/link', '/newdir/sub', '/newdir/sub/b.txt', 'a.txt', ''].join('\n'));
  // a relative container path is taken from the working directory (podman's code)
  sb.ok(['cp', path.join(host, 'file.txt'), 'cpr:rel.txt']);
  assert.equal(catIn('cpr', '/rel.txt').data, 'f\n');

  // container → host
  const out = path.join(sb.dir, 'cp-out');
  fs.mkdirSync(out);
  sb.ok(['cp', 'cpr:/d/c.txt', out]);
  sb.ok(['cp', 'cpr:/d', path.join(out, 'copy')]);
  sb.ok(['cp', 'cpr:/d/src/.', path.join(out, 'contents')]);
  assert.equal(fs.readFileSync(path.join(out, 'c.txt'), 'utf8'), 'c\n');
  assert.equal(fs.readFileSync(path.join(out, 'copy', 'src', 'sub', 'b.txt'), 'utf8'), 'b\n');
  assert.equal(fs.readlinkSync(path.join(out, 'copy', 'src', 'link')), 'a.txt', 'symlinks inside a tree stay symlinks');
  assert.deepEqual(fs.readdirSync(path.join(out, 'contents')).sort(), ['a.txt', 'link', 'sub']);
  const st = fs.statSync(path.join(out, 'copy', 'file.txt'));
  assert.deepEqual([st.uid, st.mode & 0o777, st.mtimeMs], [process.getuid!(), 0o640, 978307200000], 'onto the host: the caller owns it, mode and mtime kept');

  // tar streams: out named by the basename (contents with "/."), in extracted into a directory
  assert.deepEqual(untar(kilnBin(['cp', 'cpr:/d/src', '-']).stdout).map((m) => m.name), ['src/', 'src/a.txt', 'src/link', 'src/sub/', 'src/sub/b.txt']);
  assert.deepEqual(untar(kilnBin(['cp', 'cpr:/d/src/.', '-']).stdout).map((m) => m.name), ['a.txt', 'link', 'sub/', 'sub/b.txt']);
  const tarIn = spawnSync('tar', ['-C', host, '-czf', '-', 'src', 'file.txt']).stdout;
  const r = kilnBin(['cp', '-', 'cpr:/w'], tarIn);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(catIn('cpr', '/w/src/sub/b.txt').data, 'b\n');
  assert.equal(catIn('cpr', '/w/file.txt').uid, 0);
  assert.match(kilnBin(['cp', '-', 'cpr:/w/nope'], tarIn).stderr, /destination must be a directory when copying from stdin/);
  const notTar = kilnBin(['cp', '-', 'cpr:/w'], Buffer.from('hello\n'));
  assert.equal(notTar.status, 125);
  assert.match(notTar.stderr, /source must be a \(compressed\) tar archive when copying from stdin/);

  // --overwrite: a directory over a file and a file over a directory
  fails(['cp', path.join(host, 'src'), 'cpr:/w/src/a.txt'], /destination must be a directory when copying a directory/);
  fails(['cp', path.join(host, 'file.txt'), 'cpr:/w/gone/sub/../../file.txt/'], /could not be found on container cpr: not a directory/);
  fs.mkdirSync(path.join(host, 'ov'));
  fs.writeFileSync(path.join(host, 'ov', 'src'), 'now a file\n');
  fails(['cp', `${path.join(host, 'ov')}/.`, 'cpr:/w'], /cannot replace the directory \/w\/src with a non-directory/);
  sb.ok(['cp', '--overwrite', `${path.join(host, 'ov')}/.`, 'cpr:/w']);
  assert.equal(catIn('cpr', '/w/src').data, 'now a file\n');

  // errors with podman's wording
  fails(['cp', path.join(host, 'file.txt'), 'nope:/x'], /^Error: container "nope" does not exist$/m);
  fails(['cp', 'cpr:/missing', out], /"\/missing" could not be found on container cpr: no such file or directory/);
  fails(['cp', path.join(host, 'missing'), 'cpr:/d'], /could not be found on the host: no such file or directory/);
  fails(['cp', path.join(host, 'file.txt'), 'cpr:/no/such/dir'], /"\/no\/such\/dir" could not be found on container cpr/);
  fails(['cp', path.join(host, 'file.txt')], /accepts 2 arg\(s\), received 1/);
  fails(['cp', path.join(host, 'file.txt'), path.join(out, 'x')], /involves no container/);
});

test('cp resolves symlinks inside the container: nothing on the host is read or written through them', async () => {
  const marker = `kiln-cp-escape-${process.pid}`;
  sb.ok(['run', '-d', '--name', 'cpsym', BASE, 'sh', '-c', 'ln -s /etc /etclink; ln -s ../../../../../../../etc/passwd /esc; ln -s ../../../../../../../tmp /up; ln -s / /rootlink; touch /ready; sleep 100000']);
  await ready('cpsym');
  const containerPasswd = catIn('cpsym', '/etc/passwd').data;
  assert.notEqual(containerPasswd, fs.readFileSync('/etc/passwd', 'utf8'), 'the test needs the host passwd to differ');
  assert.equal(catIn('cpsym', '/esc').data, containerPasswd, 'a relative link climbing out stops at the container root');
  assert.equal(catIn('cpsym', '/rootlink/etc/passwd').data, containerPasswd);
  const viaDir = untar(kilnBin(['cp', 'cpsym:/etclink', '-']).stdout);
  assert.equal(viaDir[0]?.name, 'etc/', 'a symlinked source is copied as its target, under the target\'s name');
  assert.equal(viaDir.find((m) => m.name === 'etc/passwd')?.data, containerPasswd);
  const src = path.join(sb.dir, 'escape.txt');
  fs.writeFileSync(src, 'inside\n');
  sb.ok(['cp', src, `cpsym:/up/${marker}`]);
  assert.equal(fs.existsSync(`/tmp/${marker}`), false, 'nothing written on the host through /up');
  assert.equal(catIn('cpsym', `/tmp/${marker}`).data, 'inside\n', 'written to the container\'s /tmp instead');
  sb.ok(['cp', src, 'cpsym:/etclink/written']);
  assert.equal(catIn('cpsym', '/etc/written').data, 'inside\n');
  assert.equal(fs.existsSync('/etc/written'), false);
});

test('cp into and out of a stopped container: volume and bind mount paths go to their sources; rootfs unmounted after', () => {
  const bind = path.join(sb.dir, 'bind-src');
  fs.mkdirSync(bind);
  fs.writeFileSync(path.join(bind, 'there'), 'bound\n');
  const id = sb.ok(['create', '--name', 'cpstop', '-u', '65534', '-v', 'cpvol:/data', '-v', `${bind}:/bind`, '-v', `${bind}:/robind:ro`, '--tmpfs', '/scratch', BASE,
    'cat', '/data/v.txt', '/bind/b.txt', '/x.txt']).trim();
  const src = path.join(sb.dir, 'stopped.txt');
  fs.writeFileSync(src, 'to a stopped container\n');
  sb.ok(['cp', src, 'cpstop:/data/v.txt']);
  sb.ok(['cp', src, 'cpstop:/bind/b.txt']);
  sb.ok(['cp', src, 'cpstop:/x.txt']);
  assert.equal(fs.readFileSync(path.join(sb.root, 'volumes', 'cpvol', '_data', 'v.txt'), 'utf8'), 'to a stopped container\n', 'the volume\'s data dir');
  assert.equal(fs.readFileSync(path.join(bind, 'b.txt'), 'utf8'), 'to a stopped container\n', 'the bind mount\'s source');
  assert.equal(catIn('cpstop', '/bind/there').data, 'bound\n');
  assert.equal(catIn('cpstop', '/x.txt').uid, 65534, 'owned by the container\'s user (-u 65534)');
  assert.deepEqual(mountsUnder(sb.runroot).filter((m) => m.includes(id)), [], 'the rootfs kiln cp mounted is unmounted again');
  fails(['cp', src, 'cpstop:/robind/no'], /read-only mount \/robind of container cpstop/);
  fails(['cp', src, 'cpstop:/scratch/no'], /tmpfs mounted at \/scratch/);
  const r = sb.kiln(['start', '-a', 'cpstop']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, 'to a stopped container\n'.repeat(3), 'the container sees all three files');
});

test('diff lists A/C/D as podman does (order, opaque directories, whiteouts, runtime mount points left out); --format json', () => {
  sb.ok(['run', '--name', 'differ', BASE, 'sh', '-c', 'mkdir -p /etc/newdir/sub; echo x > /etc/newdir/sub/f; echo y > /etc/new; rm /bin/ls; mkdir /opq; touch /tmp/t; rm -rf /usr; mkdir /usr; touch /usr/z']);
  const expected = ['C /bin', 'D /bin/ls', 'C /etc', 'A /etc/new', 'A /etc/newdir', 'A /etc/newdir/sub', 'A /etc/newdir/sub/f', 'A /opq', 'C /tmp', 'A /tmp/t', 'D /usr', 'A /usr/z'];
  assert.equal(sb.ok(['diff', 'differ']), `${expected.join('\n')}\n`);
  assert.equal(sb.ok(['container', 'diff', 'differ']), `${expected.join('\n')}\n`);
  const json = sb.ok(['diff', '--format', 'json', 'differ']);
  assert.match(json, /^\{\n {5}"changed": \[\n {10}"\/bin",/, 'podman\'s key order and five-space indent');
  assert.deepEqual(JSON.parse(json), {
    changed: ['/bin', '/etc', '/tmp'],
    added: ['/etc/new', '/etc/newdir', '/etc/newdir/sub', '/etc/newdir/sub/f', '/opq', '/tmp/t', '/usr/z'],
    deleted: ['/bin/ls', '/usr'],
  });
  sb.ok(['run', '--name', 'quiet', BASE, 'true']);
  assert.equal(sb.ok(['diff', 'quiet']), 'C /etc\n', '/etc/hosts, /etc/hostname, /etc/resolv.conf, /proc, /sys, /dev are not listed');
  fails(['diff', 'nope'], /^Error: nope not found: container not known$/m);
  fails(['diff', BASE], /is an image: kiln diff compares containers/);
  fails(['diff', '--format', 'yaml', 'differ'], /only supported value for '--format' is 'json'/);
});

test('commit: a new image of the container\'s changes that runs, with podman\'s config and history, progress on stderr', () => {
  sb.ok(['run', '--name', 'tocommit', '-e', 'FOO=bar', '-w', '/tmp', '--label', 'l1=v1', BASE, 'sh', '-c', 'echo made > /made; rm /bin/ls; rm -rf /usr; mkdir /usr; echo z > /usr/z']);
  const r = sb.kiln(['commit', 'tocommit', 'localhost/committed:1']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^[0-9a-f]{64}\n$/);
  const id = r.stdout.trim();
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines[0], 'Getting image source signatures');
  assert.equal(lines.filter((l) => /^Copying blob sha256:[0-9a-f]{64}$/.test(l)).length, 2, 'the base layer and the new one');
  assert.deepEqual(lines.slice(-3), [`Copying config sha256:${id}`, 'Writing manifest to image destination', 'Storing signatures']);
  assert.equal(sb.ok(['run', '--rm', 'localhost/committed:1', 'cat', '/made']), 'made\n');
  assert.equal(sb.ok(['run', '--rm', 'localhost/committed:1', 'sh', '-c', 'test -e /bin/ls || echo gone; ls /usr; pwd; echo $FOO']), 'gone\nz\n/tmp\nbar\n', 'whiteouts, an opaque dir, WORKDIR and ENV carried');
  const cfg = JSON.parse(sb.ok(['image', 'inspect', '--format', '{{json .Config}}', 'localhost/committed:1'])) as Record<string, unknown>;
  assert.deepEqual(cfg.Cmd, ['sh', '-c', 'echo made > /made; rm /bin/ls; rm -rf /usr; mkdir /usr; echo z > /usr/z']);
  assert.equal(cfg.WorkingDir, '/tmp');
  assert.deepEqual(cfg.Labels, { l1: 'v1' });
  assert.ok((cfg.Env as string[]).includes('FOO=bar') && (cfg.Env as string[]).some((e) => e.startsWith('PATH=')), JSON.stringify(cfg.Env));

  // -q, --author, --change, docker format with --message
  const q = sb.kiln(['commit', '-q', '-f', 'docker', '-a', 'Kiln Tester <t@example.com>', '-m', 'a message', '-c', 'CMD ["cat", "/made"]', '-c', 'ENV A=1', '-c', 'EXPOSE 8080',
    '-c', 'LABEL x=y', '-c', 'USER nobody', '-c', 'STOPSIGNAL SIGINT', '-c', 'VOLUME /vol', '-c', 'ONBUILD RUN echo hi', '-c', 'WORKDIR=/', 'tocommit', 'committed-docker']);
  assert.equal(q.status, 0, q.stderr);
  assert.equal(q.stderr, '', '-q prints no progress');
  assert.equal(sb.ok(['run', '--rm', 'localhost/committed-docker:latest']), 'made\n');
  const img = (JSON.parse(sb.ok(['image', 'inspect', 'committed-docker'])) as Record<string, unknown>[])[0]!;
  const c = img.Config as Record<string, unknown>;
  assert.deepEqual([c.User, c.WorkingDir, c.StopSignal, c.ExposedPorts, c.Volumes, c.OnBuild, (c.Labels as Record<string, string>).x], ['nobody', '/', 'SIGINT', { '8080/tcp': {} }, { '/vol': {} }, ['RUN echo hi'], 'y']);
  assert.ok((c.Env as string[]).includes('A=1'));
  assert.equal(img.Author, 'Kiln Tester <t@example.com>');
  assert.equal(img.Comment, 'a message');
  const history = JSON.parse(sb.ok(['history', '--format', 'json', 'committed-docker'])) as { CreatedBy: string; comment?: string }[];
  assert.equal(history.length, 2);
  assert.equal(history[0]!.CreatedBy, '/bin/sh');
  assert.equal(history[0]!.comment, 'FROM localhost/busybox:latest');
  const top = sb.ok(['image', 'inspect', '--format', '{{json .History}}', 'committed-docker']);
  assert.match(top, /"author":"Kiln Tester <t@example.com>"/);

  // errors
  fails(['commit', '-m', 'msg', 'tocommit'], /messages are only compatible with the docker image format \(-f docker\)/);
  fails(['commit', 'nope'], /no container with name or ID "nope" found: no such container/);
  fails(['commit', '-c', 'RUN x', 'tocommit'], /--change "RUN x": unsupported instruction RUN/);
  const warn = sb.kiln(['commit', '-q', '-c', 'ONBUILD RUN x', 'tocommit']);
  assert.equal(warn.status, 0);
  assert.match(warn.stderr, /ONBUILD is not supported for OCI image format/);
});

test('commit of a running container (--pause=true) keeps it running', async () => {
  sb.ok(['run', '-d', '--name', 'livecommit', BASE, 'sh', '-c', 'echo live > /live; touch /ready; sleep 100000']);
  await ready('livecommit');
  const id = sb.ok(['commit', '-q', '--pause=true', 'livecommit', 'localhost/live']).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  assert.equal(sb.ok(['run', '--rm', 'localhost/live', 'cat', '/live']), 'live\n');
  assert.equal(sb.ok(['inspect', '--format', '{{.State.Status}}', 'livecommit']).trim(), 'running');
});

test('top: podman\'s default table from /proc, chosen descriptors, the ps fallback; port: no mappings', async () => {
  sb.ok(['run', '-d', '--name', 'topper', BASE, 'sh', '-c', 'sleep 100000 & touch /ready; wait']);
  await ready('topper');
  const out = sb.ok(['top', 'topper']);
  const [header, ...rows] = out.split('\n').filter((l) => l !== '');
  assert.match(header!, /^USER {8}PID {9}PPID {8}%CPU {8}ELAPSED +TTY +TIME +COMMAND$/);
  assert.equal(rows.length, 2, out);
  assert.match(rows[0]!, /^root +1 +0 +\d+\.\d{3} +[\d.]+(ms|s) +\? +0s +sh -c sleep 100000 & touch \/ready; wait $/);
  assert.match(rows[1]!, /^root +\d+ +1 +\d+\.\d{3} +\S+ +\? +\S+ +sleep 100000 $/);
  const pid = sb.ok(['inspect', '--format', '{{.State.Pid}}', 'topper']).trim();
  assert.equal(sb.ok(['container', 'top', 'topper', 'pid,hpid', 'comm']).split('\n')[1]!.split(/\s+/).join(' '), `1 ${pid} sh`);
  const ps = sb.ok(['top', 'topper', '-o', 'pid,comm']);
  assert.match(ps, /^\s*PID\s+COMMAND\n/, 'an unknown descriptor runs ps in the container');
  assert.match(ps, /\bsleep\n/);
  fails(['top', 'nope'], /no container with name or ID "nope" found: no such container/);
  sb.ok(['create', '--name', 'nottop', BASE, 'true']);
  fails(['top', 'nottop'], /^Error: top can only be used on running containers$/m);

  for (const args of [['port', 'topper'], ['port', 'topper', '80'], ['port', 'topper', '80/tcp'], ['port', '-a'], ['container', 'port', 'nottop']]) {
    const r = sb.kiln(args);
    assert.deepEqual([r.status, r.stdout, r.stderr], [0, '', ''], args.join(' '));
  }
  fails(['port', 'nope'], /^Error: no container with name or ID "nope" found: no such container$/m);
  fails(['port'], /you must supply a running container name or id/);
  fails(['port', '-a', 'topper'], /no arguments are needed with --all/);
  fails(['port', 'topper', 'abc'], /strconv\.ParseUint: parsing "abc": invalid syntax/);
});
