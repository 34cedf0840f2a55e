/**
 * The image commands end to end through the real CLI: import, images, inspect, tag, untag,
 * rmi, history, image exists, and podman's exit codes and error wording.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sandbox, busyboxTar, type Sandbox } from './helpers/env';

let sb: Sandbox;
let tar: string;

before(async () => {
  sb = sandbox();
  tar = await busyboxTar(sb.dir);
});
after(() => sb.cleanup());

test('an empty store still prints the heading, as podman does', () => {
  assert.match(sb.ok(['images']), /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE\n$/);
  assert.equal(sb.ok(['images', '--noheading']), '');
});

test('import prints the image ID and images lists it with podman columns', () => {
  const printed = sb.ok(['import', '--change', 'CMD ["/bin/sh"]', '-c', 'LABEL a=b', tar, 'busybox']);
  assert.match(printed, /^sha256:[a-f0-9]{64}\n$/, 'podman prints the new ID with its algorithm');
  const id = printed.trim().slice(7);
  const out = sb.ok(['images']);
  const lines = out.trimEnd().split('\n');
  assert.match(lines[0]!, /^REPOSITORY\s+TAG\s+IMAGE ID\s+CREATED\s+SIZE$/);
  assert.match(lines[1]!, new RegExp(`^localhost/busybox\\s+latest\\s+${id.slice(0, 12)}\\s+(Less than a second|\\d+ seconds) ago\\s+\\d+(\\.\\d+)? [kM]B$`));
  assert.equal(sb.ok(['images', '-q']).trim(), id.slice(0, 12));
  assert.equal(sb.ok(['images', '--no-trunc', '-q']).trim(), `sha256:${id}`);
  const digests = sb.ok(['images', '--digests']).split('\n');
  assert.match(digests[0]!, /^REPOSITORY\s+TAG\s+DIGEST\s+IMAGE ID/);
  assert.match(digests[1]!, /sha256:[a-f0-9]{64}/);
  const json = JSON.parse(sb.ok(['images', '--format', 'json'])) as Array<Record<string, unknown>>;
  assert.equal(json.length, 1);
  assert.equal(json[0]!.Id, id);
  assert.deepEqual(json[0]!.RepoTags, ['localhost/busybox:latest']);
  assert.deepEqual(json[0]!.Labels, { a: 'b' });
  assert.equal(typeof json[0]!.Created, 'number');
  assert.equal(sb.ok(['images', '--format', '{{.ID}} {{.Repository}}:{{.Tag}}']).trim(), `${id.slice(0, 12)} localhost/busybox:latest`);
});

test('inspect shows podman ImageData and --format templates', () => {
  const data = JSON.parse(sb.ok(['inspect', 'busybox'])) as Array<Record<string, any>>;
  assert.equal(data.length, 1);
  const d = data[0]!;
  assert.deepEqual(d.Config.Cmd, ['/bin/sh']);
  assert.equal(d.Os, 'linux');
  assert.equal(d.RootFS.Type, 'layers');
  assert.equal(d.RootFS.Layers.length, 1);
  assert.match(d.Digest, /^sha256:/);
  assert.equal(sb.ok(['inspect', '--format', '{{.Id}}', 'localhost/busybox:latest']).trim(), d.Id);
  assert.equal(sb.ok(['inspect', '--format', '{{index .Config.Labels "a"}}', d.Id.slice(0, 8)]).trim(), 'b');
});

test('unknown image: "image not known", exit 125; rmi exits 1; image exists exits 1', () => {
  const r = sb.kiln(['inspect', 'nosuch']);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /Error: nosuch: image not known/);
  assert.equal(r.stdout.trim(), '[]', 'podman prints the (empty) list, then the error');
  const rm = sb.kiln(['rmi', 'nosuch']);
  assert.equal(rm.status, 1);
  assert.match(rm.stderr, /nosuch: image not known/);
  assert.equal(sb.kiln(['image', 'exists', 'nosuch']).status, 1);
  assert.equal(sb.kiln(['image', 'exists', 'busybox']).status, 0);
  const bad = sb.kiln(['images', '--bogus']);
  assert.equal(bad.status, 125);
  assert.match(bad.stderr, /unknown flag: --bogus/);
});

test('image SUBCOMMAND is the top-level command, flags and help included', () => {
  assert.equal(sb.ok(['image', 'ls', '-q']), sb.ok(['images', '-q']));
  assert.match(sb.ok(['image', 'list', '--help']), /--sort <key>/);
  assert.match(sb.ok(['image', 'help', 'rm']), /-f, --force/);
  assert.match(sb.ok(['image', 'help', 'umount']), /-a, --all/);
  const unknown = sb.kiln(['image', 'help', 'nosuch']);
  assert.equal(unknown.status, 125);
  assert.match(unknown.stderr, /unknown command 'nosuch'/);
  const level = sb.kiln(['--log-level', 'loud', 'images']);
  assert.equal(level.status, 125);
  assert.match(level.stderr, /--log-level .*'loud' is invalid/);
});

test('tag, untag and rmi follow podman: names move, rmi by name untags, by ID needs -f', () => {
  sb.ok(['tag', 'busybox', 'one', 'quay.io/x/two:v1']);
  const names = JSON.parse(sb.ok(['inspect', 'busybox'])) as Array<{ RepoTags: string[] }>;
  assert.deepEqual(names[0]!.RepoTags.sort(), ['localhost/busybox:latest', 'localhost/one:latest', 'quay.io/x/two:v1']);
  sb.ok(['untag', 'busybox', 'one']);
  assert.equal(sb.kiln(['image', 'exists', 'one']).status, 1);
  const id = sb.ok(['images', '-q', '--no-trunc']).trim().slice(7);
  const byId = sb.kiln(['rmi', id]);
  assert.equal(byId.status, 125);
  assert.match(byId.stderr, /more than one tag/);
  assert.equal(sb.ok(['rmi', 'quay.io/x/two:v1']).trim(), 'Untagged: quay.io/x/two:v1');
  const bad = sb.kiln(['tag', 'busybox', 'UPPER']);
  assert.equal(bad.status, 125);
  assert.match(bad.stderr, /invalid image name "UPPER"/);
});

test('filters (before/after/label/reference), --sort and template functions', async () => {
  const older = sb.ok(['images', '-q', '--no-trunc', 'busybox']).trim().slice(7);
  await new Promise((r) => setTimeout(r, 1100)); // created times are compared, keep them apart
  const newer = sb.ok(['import', '-c', 'LABEL tier=new', tar, 'zzz/newer:1']).trim().replace(/^sha256:/, '');
  const ids = (args: string[]) => sb.ok(['images', '--noheading', '--no-trunc', '--format', '{{.ID}}', ...args]).trim().split('\n').filter(Boolean);
  assert.deepEqual(ids(['--filter', `after=${older.slice(0, 12)}`]), [`sha256:${newer}`]);
  assert.deepEqual(ids(['--filter', 'since=busybox']), [`sha256:${newer}`]);
  assert.ok(ids(['--filter', 'before=zzz/newer:1']).includes(`sha256:${older}`));
  assert.ok(!ids(['--filter', 'before=zzz/newer:1']).includes(`sha256:${newer}`));
  assert.deepEqual(ids(['--filter', 'label=tier=new']), [`sha256:${newer}`]);
  assert.deepEqual(ids(['--filter', 'reference=zzz/*']), [`sha256:${newer}`]);
  const repos = sb.ok(['images', '--sort', 'repository', '--format', '{{.Repository}}']).trim().split('\n');
  assert.deepEqual(repos, [...repos].sort());
  assert.match(sb.ok(['images', '--format', '{{.ID | upper}}', 'zzz/newer:1']).trim(), /^[0-9A-F]{12}$/);
  const bad = sb.kiln(['images', '--sort', 'colour']);
  assert.equal(bad.status, 125);
  assert.match(bad.stderr, /--sort "colour": invalid option/);
  sb.ok(['rmi', 'zzz/newer:1']);
});

test("images {{.History}} keeps every name the image had, as podman's NamesHistory", () => {
  sb.ok(['import', tar, 'my-test-image']);
  const hist = () => sb.ok(['images', 'my-test-image', '--format', '{{ .History }}']).trim();
  assert.equal(hist(), 'localhost/my-test-image:latest');
  sb.ok(['tag', 'my-test-image', 'rand1']);
  sb.ok(['rmi', 'rand1']);
  assert.equal(hist(), 'localhost/my-test-image:latest, localhost/rand1:latest');
  sb.ok(['tag', 'my-test-image', 'rand2']);
  sb.ok(['rmi', 'rand2']);
  assert.equal(hist(), 'localhost/my-test-image:latest, localhost/rand2:latest, localhost/rand1:latest');
  const inspected = JSON.parse(sb.ok(['inspect', 'my-test-image'])) as Array<{ NamesHistory: string[] }>;
  assert.deepEqual(inspected[0]!.NamesHistory, ['localhost/my-test-image:latest', 'localhost/rand2:latest', 'localhost/rand1:latest']);
  sb.ok(['rmi', 'my-test-image']);
});

test('history lists the import step with its size', () => {
  const out = sb.ok(['history', 'busybox']).trimEnd().split('\n');
  assert.match(out[0]!, /^ID\s+CREATED\s+CREATED BY\s+SIZE\s+COMMENT$/);
  assert.equal(out.length, 2);
  assert.match(out[1]!, /#\(nop\) ADD file:.*imported from tarball$/);
  assert.equal(sb.ok(['history', '-q', 'busybox']).trim().length, 12);
});

test('rmi removes layers and blobs nothing else uses; the store stays consistent', () => {
  const tag2 = sb.ok(['import', tar, 'other']).trim().replace(/^sha256:/, '');
  // same rootfs tar → the same layer, shared by two images
  const layersDir = path.join(sb.root, 'layers');
  assert.equal(fs.readdirSync(layersDir).length, 1);
  const out = sb.ok(['rmi', 'other']);
  assert.match(out, new RegExp(`Untagged: localhost/other:latest\nDeleted: ${tag2}`));
  assert.equal(fs.readdirSync(layersDir).length, 1, 'the shared layer stays');
  sb.ok(['rmi', 'busybox']);
  assert.equal(fs.readdirSync(layersDir).length, 0);
  assert.deepEqual(fs.readdirSync(path.join(sb.root, 'blobs', 'sha256')), []);
  assert.deepEqual(fs.readdirSync(path.join(sb.root, 'l')), []);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
});

test('import reads a gzip tarball from standard input', () => {
  const { gzipSync } = require('node:zlib') as typeof import('node:zlib');
  const r = sb.kiln(['import', '-', 'from-stdin'], { input: gzipSync(fs.readFileSync(tar)) });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '');
  const data = JSON.parse(sb.ok(['inspect', 'from-stdin'])) as Array<{ RootFS: { Layers: string[] } }>;
  const diffID = `sha256:${require('node:crypto').createHash('sha256').update(fs.readFileSync(tar)).digest('hex')}`;
  assert.deepEqual(data[0]!.RootFS.Layers, [diffID], 'the diffID is the uncompressed tar');
  sb.ok(['rmi', 'from-stdin']);
  assert.deepEqual(fs.readdirSync(path.join(sb.root, 'tmp')).filter((d) => fs.readdirSync(path.join(sb.root, 'tmp', d)).length > 0), [], 'no spool file left');
});

test('import refuses a missing tarball and a bad --change, leaving nothing', () => {
  const r = sb.kiln(['import', path.join(sb.dir, 'nope.tar')]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /nope\.tar: ENOENT/);
  const c = sb.kiln(['import', '--change', 'FROB x', tar]);
  assert.equal(c.status, 125);
  assert.match(c.stderr, /--change "FROB x": unsupported instruction FROB/);
  assert.equal(sb.ok(['images', '-q']).trim(), '');
});
