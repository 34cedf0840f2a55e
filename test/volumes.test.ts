/**
 * Named volumes: `kiln volume create|ls|inspect|rm|prune|exists` through the CLI, against
 * podman 4.3.1's output, filters and exit codes; then the engine API the container code uses
 * (ensureVolume, copyUpIfEmpty, removeIfUnused) on the compiled module with real files. The
 * "used by a container" cases create containers with `kiln create` (the container code).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sandbox, run, type Sandbox } from './helpers/env';
import { EngineContext } from '../src/engine/context';
import { copyUpIfEmpty, createVolume, ensureVolume, removeIfUnused, volumePath } from '../src/engine/volumes';
import { isKilnError } from '../src/errors';

const boxes: Sandbox[] = [];
function box(): Sandbox {
  const sb = sandbox('kiln-volumes-');
  boxes.push(sb);
  return sb;
}
after(() => {
  for (const sb of boxes) sb.cleanup();
});

/** Runs kiln expecting `code`; returns stdout and stderr. */
function expect(sb: Sandbox, args: string[], code: number, input?: string): { out: string; err: string } {
  const r = sb.kiln(args, input === undefined ? {} : { input });
  assert.equal(r.status, code, `kiln ${args.join(' ')}: exit ${r.status}, stderr: ${r.stderr}`);
  return { out: r.stdout, err: r.stderr };
}

const inspect = (sb: Sandbox, name: string) => (JSON.parse(sb.ok(['volume', 'inspect', name])) as Record<string, unknown>[])[0]!;

test('volume create: names, random names, the local driver layout, --ignore, errors', () => {
  const sb = box();
  assert.equal(sb.ok(['volume', 'create', 'myvol']), 'myvol\n');
  const random = sb.ok(['volume', 'create']).trim();
  assert.match(random, /^[0-9a-f]{64}$/);
  const dir = path.join(sb.root, 'volumes', 'myvol');
  assert.equal(fs.statSync(dir).mode & 0o7777, 0o700);
  assert.equal(fs.statSync(path.join(dir, '_data')).mode & 0o7777, 0o755);
  assert.deepEqual(fs.readdirSync(path.join(dir, '_data')), []);

  const dup = expect(sb, ['volume', 'create', 'myvol'], 125);
  assert.match(dup.err, /^Error: volume with name myvol already exists: volume already exists$/m);
  assert.equal(expect(sb, ['volume', 'create', '--ignore', 'myvol'], 0).out, 'myvol\n');

  for (const bad of ['-bad', 'bad/name', '.x', 'a b', 'ü']) {
    const r = expect(sb, ['volume', 'create', '--', bad], 125);
    assert.ok(r.err.includes(`volume name ${JSON.stringify(bad)} is invalid: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*`), r.err);
  }
  assert.equal(sb.ok(['volume', 'create', 'A0_b.c-d']), 'A0_b.c-d\n');
  // a directory without a record is debris (a killed create, a rolled-back container create)
  fs.mkdirSync(path.join(sb.root, 'volumes', 'debris', '_data'), { recursive: true });
  fs.writeFileSync(path.join(sb.root, 'volumes', 'debris', '_data', 'junk'), 'x');
  assert.equal(sb.ok(['volume', 'create', 'debris']), 'debris\n');
  assert.deepEqual(fs.readdirSync(path.join(sb.root, 'volumes', 'debris', '_data')), []);

  for (const flag of [['--driver', 'nfs'], ['-d', 'nfs']]) {
    const r = expect(sb, ['volume', 'create', ...flag, 'x'], 125);
    assert.match(r.err, /^Error: --driver nfs: volume x uses volume plugin nfs but it could not be retrieved/m);
  }
  assert.equal(sb.ok(['volume', 'create', '--driver', 'local', 'loc']), 'loc\n');
  assert.match(expect(sb, ['volume', 'create', '-o', 'foo=bar', 'y'], 125).err, /invalid mount option foo for driver 'local': invalid argument/);
  assert.match(expect(sb, ['volume', 'create', '-o', 'novalue', 'y'], 125).err, /invalid mount option novalue for driver 'local'/);
  assert.match(expect(sb, ['volume', 'create', '-o', '=x', 'y'], 125).err, /unable to process options: invalid label format: "=x"/);
  assert.match(expect(sb, ['volume', 'create', '-l', '=x', 'y'], 125).err, /unable to process labels: invalid label format: "=x"/);
  assert.match(expect(sb, ['volume', 'create', '-o', 'o=uid', 'y'], 125).err, /uid option must provide a UID: invalid argument/);
  assert.match(expect(sb, ['volume', 'create', '-o', 'o=gid=x', 'y'], 125).err, /cannot convert GID x to integer/);
  assert.match(expect(sb, ['volume', 'create', '-o', 'o=size=1m', 'y'], 125).err, /size and inodes not supported/);
  assert.match(expect(sb, ['volume', 'create', '-o', 'o=timeout=3', 'y'], 125).err, /timeout can only be used with non-local volume drivers/);
  assert.equal(sb.kiln(['volume', 'exists', 'y']).status, 1, 'no failed create left a volume');
  assert.ok(!fs.existsSync(path.join(sb.root, 'volumes', 'y')), 'nor its directory');
  assert.equal(sb.kiln(['volume', 'exists', 'myvol']).status, 0);
  assert.equal(sb.kiln(['volume', 'exists', 'myv']).status, 1, 'exists takes exact names');
});

test('volume create: labels and options are recorded as podman records them', () => {
  const sb = box();
  sb.ok(['volume', 'create', '-l', 'a=b,c', '-l', 'k=v=w', '-l', 'k=last', 'lab']);
  assert.deepEqual(inspect(sb, 'lab').Labels, { a: 'b', c: '', k: 'last' });
  sb.ok(['volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', '-o', 'o=nodev,noexec', '-o', 'TYPE=x', '-o', 'copy', 'opts']);
  assert.deepEqual(inspect(sb, 'opts').Options, { TYPE: 'x', copy: '', device: 'tmpfs', o: 'nodev,noexec', type: 'tmpfs' });
  sb.ok(['volume', 'create', '-o', 'o=uid=1,gid=2', '-o', 'o=uid=5,gid=6,nodev,noquota', 'own']);
  const own = inspect(sb, 'own');
  assert.deepEqual(own.Options, { GID: '6', NOQUOTA: 'true', UID: '5', o: 'uid=5,gid=6,nodev' });
  assert.equal(own.UID, 5);
  assert.equal(own.GID, 6);
  assert.equal(own.NeedsChown, undefined, 'an owner given: no chown on first use');
  for (const d of [path.join(sb.root, 'volumes', 'own'), path.join(sb.root, 'volumes', 'own', '_data')]) {
    const st = fs.statSync(d);
    assert.deepEqual([st.uid, st.gid], [5, 6], d);
  }
});

test('volume inspect: podman fields, RFC 3339 in the local zone, templates, --all, errors', () => {
  const sb = box();
  const before = Date.now();
  sb.ok(['volume', 'create', '-l', 'x=1', 'alpha']);
  sb.ok(['volume', 'create', 'alphabet']);
  const v = inspect(sb, 'alpha');
  assert.deepEqual(Object.keys(v), ['Name', 'Driver', 'Mountpoint', 'CreatedAt', 'Labels', 'Scope', 'Options', 'MountCount', 'NeedsCopyUp', 'NeedsChown']);
  assert.equal(v.Name, 'alpha');
  assert.equal(v.Driver, 'local');
  assert.equal(v.Mountpoint, path.join(sb.root, 'volumes', 'alpha', '_data'));
  assert.equal(v.Scope, 'local');
  assert.deepEqual(v.Options, {});
  assert.equal(v.MountCount, 0);
  assert.equal(v.NeedsCopyUp, true);
  assert.equal(v.NeedsChown, true);
  const created = Date.parse(String(v.CreatedAt));
  assert.ok(created >= before - 1000 && created <= Date.now(), String(v.CreatedAt));
  // podman's text: 5-space indent, json and {{json .}} alike
  const text = sb.ok(['volume', 'inspect', 'alpha']);
  assert.match(text, /^\[\n {5}\{\n {10}"Name": "alpha",\n/);
  assert.equal(sb.ok(['volume', 'inspect', '-f', '{{json .}}', 'alpha']), text);
  assert.equal(sb.ok(['volume', 'inspect', '-f', 'json', 'alpha']), text);

  // the zone of the process: Z for UTC, an offset otherwise; templates print Go's time.Time
  const utc = sb.kiln(['volume', 'inspect', '-f', '{{.CreatedAt}}', 'alpha'], { env: { TZ: 'UTC' } }).stdout;
  assert.match(utc, /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \+0000 UTC\n$/);
  const stj = sb.kiln(['volume', 'inspect', 'alpha'], { env: { TZ: 'America/St_Johns' } }).stdout;
  const at = String((JSON.parse(stj) as Record<string, unknown>[])[0]!.CreatedAt);
  assert.match(at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?-0[23]:30$/);
  assert.equal(Date.parse(at), created, 'the same instant');
  assert.match(sb.kiln(['volume', 'inspect', '-f', '{{.CreatedAt}}', 'alpha'], { env: { TZ: 'America/St_Johns' } }).stdout, / -0[23]30 -0[23]30\n$/);

  assert.equal(sb.ok(['volume', 'inspect', '-f', '{{.Name}} {{.Labels.x}} {{.Anonymous}} {{.UID}} {{.Timeout}} {{.Status}} {{.NeedsCopyUp}}', 'alpha']), 'alpha 1 false 0 0 map[] true\n');
  assert.equal(sb.ok(['volume', 'inspect', '--all', '--format', '{{.Name}}']), 'alpha\nalphabet\n');
  assert.equal(sb.ok(['volume', 'inspect', '-f', '{{.Name}}', 'alphab']), 'alphabet\n', 'a unique prefix names a volume');
  const amb = expect(sb, ['volume', 'inspect', 'alph'], 125);
  assert.match(amb.err, /^Error: inspecting volume alph: more than one result for volume name "alph": volume already exists$/m);
  assert.equal(amb.out, '');

  const missing = expect(sb, ['volume', 'inspect', '-f', '{{.Name}}', 'nope1', 'alpha', 'nope2'], 125);
  assert.equal(missing.out, 'alpha\n');
  assert.match(missing.err, /^error inspecting object: no such volume nope2\nError: inspecting object: no such volume nope1\n/);
  assert.equal(expect(sb, ['volume', 'inspect', 'nope'], 125).out, '[]\n');
  assert.match(expect(sb, ['volume', 'inspect'], 125).err, /provide one or more volume names or use --all/);
  assert.match(expect(sb, ['volume', 'inspect', '-a', 'alpha'], 125).err, /provide one or more volume names or use --all/);
});

test('volume ls: podman table, -q, --noheading, templates and json', () => {
  const sb = box();
  assert.equal(sb.ok(['volume', 'ls']), '', 'no volumes: not even a header');
  assert.equal(sb.ok(['volume', 'ls', '--format', 'json']), '[]\n');
  sb.ok(['volume', 'create', '-l', 'k=v', 'b']);
  sb.ok(['volume', 'create', 'a']);
  assert.equal(sb.ok(['volume', 'ls']), 'DRIVER      VOLUME NAME\nlocal       a\nlocal       b\n');
  assert.equal(sb.ok(['volume', 'list', '--noheading']), 'local       a\nlocal       b\n');
  assert.equal(sb.ok(['volume', 'ls', '-q']), 'a\nb\n');
  assert.equal(sb.ok(['volume', 'ls', '--format', '{{.Name}}:{{.Labels}}:{{.Scope}}']), 'a:map[]:local\nb:map[k:v]:local\n');
  assert.equal(sb.ok(['volume', 'ls', '--format', 'table {{.Name}} {{.Labels}}']), 'VOLUME NAME  LABELS\na            map[]\nb            map[k:v]\n');
  assert.equal(sb.ok(['volume', 'ls', '--format', 'table {{.Name}}', '--noheading']), 'a\nb\n');
  assert.equal(sb.ok(['volume', 'ls', '--format', '{{json .Labels}}']), '{}\n{"k":"v"}\n');
  const json = sb.ok(['volume', 'ls', '--format', 'json']);
  assert.equal(sb.ok(['volume', 'ls', '--format', '{{json .}}']), json);
  // podman 4.3.1's encoder: 2-space indent, an empty map spread over three lines
  assert.match(json, /^\[\n {2}\{\n {4}"Name": "a",\n/);
  assert.match(json, /\n {4}"Labels": \{\n {6}\n {4}\},\n/);
  const rows = JSON.parse(json) as Record<string, unknown>[];
  assert.deepEqual(rows.map((r) => [r.Name, r.Labels]), [['a', {}], ['b', { k: 'v' }]]);
  const bad = expect(sb, ['volume', 'ls', '--format', '{{.Bogus}}'], 125);
  assert.match(bad.err, /Bogus/);
});

test('volume ls --filter: podman 4.3.1 filters, ORed, and their errors', () => {
  const sb = box();
  sb.ok(['volume', 'create', '-l', 'x=1', '-l', 'y=2', 'lab']);
  sb.ok(['volume', 'create', '-o', 'type=tmpfs', 'tmp']);
  sb.ok(['volume', 'create', 'my-one']);
  sb.ok(['volume', 'create', 'my-two']);
  const q = (...f: string[]) => sb.ok(['volume', 'ls', '-q', ...f.flatMap((x) => ['--filter', x])]).trim().split('\n').filter(Boolean);
  assert.deepEqual(q('name=my'), ['my-one', 'my-two']);
  assert.deepEqual(q('name=^m.*o$'), ['my-two']);
  assert.deepEqual(q('name=ONE'), []);
  assert.deepEqual(q('label=x'), ['lab']);
  assert.deepEqual(q('label=x=1'), ['lab']);
  assert.deepEqual(q('label=x='), ['lab']);
  assert.deepEqual(q('label=x=2'), []);
  assert.deepEqual(q('opt=type=tmpfs'), ['tmp']);
  assert.deepEqual(q('opt=type'), ['tmp']);
  assert.deepEqual(q('driver=local').length, 4);
  assert.deepEqual(q('driver=nfs'), []);
  assert.deepEqual(q('scope=local').length, 4);
  assert.deepEqual(q('dangling=true').length, 4);
  assert.deepEqual(q('dangling=0'), []);
  assert.deepEqual(q('until=1h'), [], 'created less than an hour ago');
  assert.deepEqual(q(`until=${Math.floor(Date.now() / 1000) + 60}`).length, 4);
  assert.deepEqual(q('until=2000-01-01T00:00:00Z'), []);
  // 4.3.1 ORs every filter value: name=my-one OR label=x
  assert.deepEqual(q('name=^my-one$', 'label=x'), ['lab', 'my-one']);
  assert.deepEqual(sb.ok(['volume', 'ls', '-q', '--filter', 'name=^tmp$,name=^lab$']).trim().split('\n'), ['lab', 'tmp'], 'commas split ls filters');

  const err = (f: string) => expect(sb, ['volume', 'ls', '--filter', f], 125).err;
  assert.match(err('bogus=1'), /"bogus" is an invalid volume filter/);
  assert.match(err('label!=x'), /"label!" is an invalid volume filter/);
  assert.match(err('name'), /filter input must be in the form of filter=value: name is invalid/);
  assert.match(err('dangling=maybe'), /"maybe" is not a valid value for the "dangling" filter - must be true or false/);
  assert.match(err('until=bogus'), /failed to parse value as time or duration: "bogus"/);
  assert.match(err('name=['), /error parsing regexp/);
});

test('volume rm: names, --all, unknown volumes (exit 1), -f, argument errors', () => {
  const sb = box();
  for (const n of ['v1', 'v2', 'v3', 'w1']) sb.ok(['volume', 'create', n]);
  assert.equal(sb.ok(['volume', 'rm', 'v1', 'v2']), 'v1\nv2\n');
  assert.ok(!fs.existsSync(path.join(sb.root, 'volumes', 'v1')), 'the directory goes with the record');
  const unknown = expect(sb, ['volume', 'rm', 'nope'], 1);
  assert.match(unknown.err, /^Error: no volume with name "nope" found: no such volume$/m);
  // unknown names are reported before the others are removed; the rest still goes
  const mixed = expect(sb, ['volume', 'rm', 'v3', 'nope'], 1);
  assert.equal(mixed.out, 'v3\n');
  assert.equal(expect(sb, ['volume', 'rm', '-f', 'nope'], 0).out, '', '-f: unknown volumes are no error');
  assert.equal(sb.ok(['volume', 'remove', 'w']), 'w1\n', 'a unique prefix');
  assert.match(expect(sb, ['volume', 'rm'], 125).err, /choose either one or more volumes or all/);
  assert.match(expect(sb, ['volume', 'rm', '-a', 'x'], 125).err, /choose either one or more volumes or all/);
  for (const n of ['x1', 'x2']) sb.ok(['volume', 'create', n]);
  assert.equal(sb.ok(['volume', 'rm', '--all']), 'x1\nx2\n');
  assert.equal(sb.ok(['volume', 'ls']), '');
  assert.deepEqual(fs.readdirSync(path.join(sb.root, 'volumes')), []);
  sb.ok(['volume', 'create', 'x1']);
  assert.equal(sb.ok(['volume', 'create', 'x1', '--ignore']), 'x1\n', 'a name can be used again');
  const check = sb.kiln(['system', 'check']);
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

test('volume prune: -f, --filter, the prompt (y, n, end of input)', () => {
  const sb = box();
  const warning = 'WARNING! This will remove all volumes not used by at least one container. The following volumes will be removed:\n';
  assert.equal(expect(sb, ['volume', 'prune'], 0, 'y\n').out, `${warning}No dangling volumes found\n`);
  for (const n of ['p1', 'p2', 'p3']) sb.ok(['volume', 'create', ...(n === 'p2' ? ['-l', 'k=1'] : []), n]);
  const prompt = `${warning}p1\np2\np3\nAre you sure you want to continue? [y/N] `;
  assert.equal(expect(sb, ['volume', 'prune'], 0, 'n\n').out, prompt);
  assert.equal(expect(sb, ['volume', 'prune'], 0, '\n').out, prompt, 'an empty answer is no');
  const eof = expect(sb, ['volume', 'prune'], 125, '');
  assert.match(eof.err, /^Error: EOF$/m);
  assert.equal(sb.ok(['volume', 'ls', '-q']), 'p1\np2\np3\n', 'nothing removed without a yes');
  // filters: ORed, as in ls
  assert.equal(expect(sb, ['volume', 'prune', '--filter', 'label=k', '--filter', 'name=^p3$'], 0, 'Yes\n').out, `${warning}p2\np3\nAre you sure you want to continue? [y/N] p2\np3\n`);
  assert.equal(sb.ok(['volume', 'prune', '-f', '--filter', 'label=zz']), '');
  assert.match(expect(sb, ['volume', 'prune', '-f', '--filter', 'bogus=1'], 125).err, /"bogus" is an invalid volume filter/);
  assert.equal(sb.ok(['volume', 'prune', '--force']), 'p1\n');
  assert.equal(sb.ok(['volume', 'ls']), '');
});

/** An image for `kiln create` (one file is enough: the containers are never started). */
function importImage(sb: Sandbox): string {
  const src = path.join(sb.dir, 'img');
  fs.mkdirSync(path.join(src, 'data'), { recursive: true });
  fs.writeFileSync(path.join(src, 'data', 'f'), 'hi\n');
  run('tar', ['-C', src, '-cf', path.join(sb.dir, 'img.tar'), 'data']);
  sb.ok(['import', path.join(sb.dir, 'img.tar'), 'localhost/voltest:latest']);
  return 'localhost/voltest:latest';
}

test('volumes used by containers (kiln create): in use exit 2, dangling, prune skips them, rm -f', () => {
  const sb = box();
  const image = importImage(sb);
  sb.ok(['volume', 'create', 'used']);
  sb.ok(['volume', 'create', 'free']);
  const id = sb.ok(['create', '--name', 'c1', '-v', 'used:/data', '-v', 'made:/other', image, 'true']).trim();
  assert.equal(sb.kiln(['volume', 'exists', 'made']).status, 0, '-v NAME:/dst makes a missing volume');
  assert.equal(inspect(sb, 'made').Anonymous, undefined);
  assert.deepEqual(sb.ok(['volume', 'ls', '-q', '--filter', 'dangling=false']), 'made\nused\n');
  assert.deepEqual(sb.ok(['volume', 'ls', '-q', '--filter', 'dangling=true']), 'free\n');

  const inUse = expect(sb, ['volume', 'rm', 'used'], 2);
  assert.match(inUse.err, new RegExp(`^Error: volume used is being used by the following container\\(s\\): ${id}: volume is being used$`, 'm'));
  // the last error decides the code (podman): unknown first, then in use → 2
  assert.equal(sb.kiln(['volume', 'rm', 'used', 'nope']).status, 2);
  assert.equal(expect(sb, ['volume', 'prune'], 0, 'y\n').out.split('\n').slice(1, 2)[0], 'free', 'only unused volumes are offered');
  assert.equal(sb.ok(['volume', 'prune', '-f', '--filter', 'name=used']), '', 'a used volume is never pruned');
  assert.equal(sb.kiln(['volume', 'exists', 'used']).status, 0);

  // -f removes the container using the volume, then the volume
  assert.equal(sb.ok(['volume', 'rm', '-f', 'used']), 'used\n');
  assert.doesNotMatch(sb.ok(['ps', '-a', '--format', '{{.Names}}']), /^c1$/m, 'the container went with it');
  assert.equal(sb.kiln(['volume', 'exists', 'made']).status, 0, 'its other volume stays');
  assert.equal(sb.ok(['volume', 'prune', '-f']), 'made\n');

  // a volume that needs a mount is refused when a container would use it
  sb.ok(['volume', 'create', '-o', 'type=tmpfs', '-o', 'device=tmpfs', 'tmpv']);
  const refused = expect(sb, ['create', '-v', 'tmpv:/x', image, 'true'], 125);
  assert.match(refused.err, /volume tmpv was created with mount options \(type=tmpfs device=tmpfs\): kiln does not mount/);
});

// ---------------------------------------------------------------- engine API

interface Entry { type: string; mode: number; uid: number; gid: number; mtimeMs: number; link?: string; data?: string; ino?: number }

/** Every entry under `dir` (relative path → what cp -a must keep). */
function snapshot(dir: string): Map<string, Entry> {
  const out = new Map<string, Entry>();
  const walk = (rel: string) => {
    for (const n of fs.readdirSync(path.join(dir, rel)).sort()) {
      const r = path.join(rel, n);
      const p = path.join(dir, r);
      const st = fs.lstatSync(p);
      const e: Entry = { type: st.isSymbolicLink() ? 'link' : st.isDirectory() ? 'dir' : 'file', mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtimeMs: Math.floor(st.mtimeMs / 1000) };
      if (st.isSymbolicLink()) e.link = fs.readlinkSync(p);
      else if (st.isFile()) e.data = fs.readFileSync(p, 'utf8');
      out.set(r, e);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out;
}

/** A tree with modes, owners, symlinks (relative, absolute, dangling), a hard link, old times. */
function makeTree(root: string): void {
  const old = new Date('2001-02-03T04:05:06Z');
  fs.mkdirSync(path.join(root, 'etc', 'app'), { recursive: true });
  fs.mkdirSync(path.join(root, 'empty'));
  fs.mkdirSync(path.join(root, 'tmp'));
  fs.writeFileSync(path.join(root, 'etc', 'app', 'conf'), 'key=value\n');
  fs.writeFileSync(path.join(root, 'secret'), 'secret\n');
  fs.writeFileSync(path.join(root, 'tool'), '#!/bin/sh\n');
  fs.linkSync(path.join(root, 'etc', 'app', 'conf'), path.join(root, 'conf-hardlink'));
  fs.symlinkSync('etc/app/conf', path.join(root, 'rel-link'));
  fs.symlinkSync('/etc/passwd', path.join(root, 'abs-link'));
  fs.symlinkSync('does/not/exist', path.join(root, 'dangling'));
  fs.chmodSync(path.join(root, 'secret'), 0o600);
  fs.chmodSync(path.join(root, 'tool'), 0o4755);
  fs.chmodSync(path.join(root, 'tmp'), 0o1777);
  fs.chmodSync(path.join(root, 'etc', 'app'), 0o750);
  fs.chownSync(path.join(root, 'secret'), 1234, 5678);
  fs.chownSync(path.join(root, 'etc', 'app'), 100, 101);
  fs.lchownSync(path.join(root, 'rel-link'), 7, 8);
  for (const p of ['secret', 'tool', 'etc/app/conf', 'etc/app', 'etc', 'empty', 'tmp']) fs.utimesSync(path.join(root, p), old, old);
  fs.lutimesSync(path.join(root, 'rel-link'), old, old);
  fs.chmodSync(root, 0o711);
  fs.chownSync(root, 42, 43);
  fs.utimesSync(root, old, old);
}

test('copyUpIfEmpty: copies an image directory once, keeping modes, owners, links and times', async () => {
  const sb = box();
  const ctx = new EngineContext({ root: sb.root, runroot: sb.runroot });
  try {
    const src = path.join(sb.dir, 'image-dir');
    makeTree(src);
    const v = ensureVolume(ctx, 'data');
    assert.equal(v.filled, false);
    assert.equal(ensureVolume(ctx, 'data').created, v.created, 'ensureVolume returns the existing volume');
    const data = volumePath(ctx, 'data');
    assert.equal(data, path.join(sb.root, 'volumes', 'data', '_data'));

    assert.equal(await copyUpIfEmpty(ctx, 'data', src), true);
    const want = snapshot(src);
    const got = snapshot(data);
    assert.deepEqual([...got.keys()], [...want.keys()]);
    for (const [k, e] of want) assert.deepEqual({ ...got.get(k), ino: undefined }, { ...e, ino: undefined }, k);
    assert.equal(fs.statSync(path.join(data, 'conf-hardlink')).ino, fs.statSync(path.join(data, 'etc', 'app', 'conf')).ino, 'hard links stay links');
    const top = fs.statSync(data);
    const srcTop = fs.statSync(src);
    assert.deepEqual([top.mode & 0o7777, top.uid, top.gid, Math.floor(top.mtimeMs / 1000)], [0o711, 42, 43, Math.floor(srcTop.mtimeMs / 1000)], '_data takes the image directory\'s mode, owner and times');
    assert.deepEqual(fs.readdirSync(path.join(sb.root, 'volumes', 'data')), ['_data'], 'no staging left behind');
    assert.equal(inspect(sb, 'data').NeedsCopyUp, undefined, 'inspect: NeedsCopyUp false');

    // once filled, never again: not even after the volume was emptied
    fs.writeFileSync(path.join(src, 'new'), 'new\n');
    assert.equal(await copyUpIfEmpty(ctx, 'data', src), false);
    assert.ok(!fs.existsSync(path.join(data, 'new')));
    for (const n of fs.readdirSync(data)) fs.rmSync(path.join(data, n), { recursive: true });
    assert.equal(await copyUpIfEmpty(ctx, 'data', src), false);
    assert.deepEqual(fs.readdirSync(data), []);
  } finally {
    ctx.close();
  }
});

test('copyUpIfEmpty: a non-empty volume, a missing source, explicit owners, concurrency, errors', async () => {
  const sb = box();
  const ctx = new EngineContext({ root: sb.root, runroot: sb.runroot });
  try {
    const src = path.join(sb.dir, 'image-dir');
    makeTree(src);

    ensureVolume(ctx, 'busy');
    fs.writeFileSync(path.join(volumePath(ctx, 'busy'), 'mine'), 'user data\n');
    assert.equal(await copyUpIfEmpty(ctx, 'busy', src), false, 'a volume with content is not filled');
    assert.deepEqual(fs.readdirSync(volumePath(ctx, 'busy')), ['mine']);
    assert.equal(ctx.store.volumes.get('busy')!.filled, true, 'its copy-up chance is used up (podman)');

    ensureVolume(ctx, 'nosrc');
    assert.equal(await copyUpIfEmpty(ctx, 'nosrc', path.join(src, 'missing')), false);
    assert.equal(await copyUpIfEmpty(ctx, 'nosrc', path.join(src, 'secret')), false, 'a file is no directory to copy');
    fs.symlinkSync(src, path.join(sb.dir, 'link-to-src'));
    ensureVolume(ctx, 'vialink');
    assert.equal(await copyUpIfEmpty(ctx, 'vialink', path.join(sb.dir, 'link-to-src')), false, 'a symlinked source is not followed');
    assert.deepEqual(fs.readdirSync(volumePath(ctx, 'vialink')), []);

    createVolume(ctx, { name: 'owned', options: { o: 'uid=5,gid=6' } });
    assert.equal(await copyUpIfEmpty(ctx, 'owned', src), true);
    const st = fs.statSync(volumePath(ctx, 'owned'));
    assert.deepEqual([st.uid, st.gid], [5, 6], 'an owner given at create stays');
    assert.equal(fs.statSync(path.join(volumePath(ctx, 'owned'), 'secret')).uid, 1234);

    // two starts at once: one copies
    ensureVolume(ctx, 'race');
    const results = await Promise.all([copyUpIfEmpty(ctx, 'race', src), copyUpIfEmpty(ctx, 'race', src), copyUpIfEmpty(ctx, 'race', src)]);
    assert.deepEqual(results.filter(Boolean).length, 1, String(results));
    assert.deepEqual([...snapshot(volumePath(ctx, 'race')).keys()], [...snapshot(src).keys()]);
    assert.deepEqual(fs.readdirSync(path.join(sb.root, 'volumes', 'race')), ['_data']);

    await assert.rejects(copyUpIfEmpty(ctx, 'nope', src), (e) => isKilnError(e, 'E_VOLUME_UNKNOWN'));
    assert.throws(() => ensureVolume(ctx, 'bad/name'), (e) => isKilnError(e, 'E_INVALID_ARGUMENT'));
    createVolume(ctx, { name: 'dev', options: { type: 'none', device: '/srv', o: 'bind' } });
    assert.throws(() => ensureVolume(ctx, 'dev'), (e) => isKilnError(e, 'E_UNSUPPORTED') && /device=\/srv/.test(e.message));
    await assert.rejects(copyUpIfEmpty(ctx, 'dev', src), (e) => isKilnError(e, 'E_UNSUPPORTED'));

    const anon = ensureVolume(ctx, 'a'.repeat(64), { anonymous: true });
    assert.equal(anon.anonymous, true);
    assert.equal(inspect(sb, 'a'.repeat(64)).Anonymous, true);
    assert.deepEqual(inspect(sb, 'a'.repeat(64)).Options, {}, 'the anonymous mark is no option');
    assert.equal(await removeIfUnused(ctx, anon.name), true);
    assert.equal(await removeIfUnused(ctx, anon.name), false, 'already gone');
    assert.ok(!fs.existsSync(path.join(sb.root, 'volumes', anon.name)));
  } finally {
    ctx.close();
  }
});
