/**
 * `kiln manifest create/add/inspect/push/rm` against a real registry (Debian's docker-registry),
 * with skopeo as the oracle: the pushed index lists every image with its platform and digest,
 * `kiln pull --arch/--variant` picks the right entry (same image ID as the source), `skopeo copy
 * --all` finds every manifest and blob the index references; lists live in the store across
 * processes; the errors (unknown list, a list name that is an image's, a removed image) are
 * exit 125 naming the thing, and a failed push sends nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireTool, run, sandbox, type Sandbox } from './helpers/env';
import { sandboxes, startRegistry, type TestRegistry } from './helpers/registry';

let reg: TestRegistry;
let sb: Sandbox;
const { fresh, teardownAll } = sandboxes('kiln-mlist-pull-');
/** image IDs and manifest digests of the two source images */
const one = { id: '', digest: '' };
const two = { id: '', digest: '' };

interface IndexJSON {
  schemaVersion: number;
  mediaType: string;
  manifests: { mediaType: string; digest: string; size: number; platform: { architecture: string; os: string; variant?: string } }[];
}

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';

/** Imports a one-file tarball as `name`; returns the image's ID and manifest digest. */
function importImage(s: Sandbox, name: string, content: string): { id: string; digest: string } {
  const tree = fs.mkdtempSync(path.join(s.dir, 'tree-'));
  fs.writeFileSync(path.join(tree, 'which.txt'), content);
  const tar = `${tree}.tar`;
  run('tar', ['-C', tree, '-cf', tar, 'which.txt']);
  s.ok(['import', tar, name]);
  return {
    id: s.ok(['image', 'inspect', '--format', '{{.Id}}', name]).trim(),
    digest: s.ok(['image', 'inspect', '--format', '{{.Digest}}', name]).trim(),
  };
}

function rawIndex(ref: string): { json: IndexJSON; digest: string } {
  const raw = run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`]);
  return { json: JSON.parse(raw) as IndexJSON, digest: `sha256:${createHash('sha256').update(raw).digest('hex')}` };
}

/** Where docker-registry keeps a repository (it exists once anything was pushed to it). */
function repoDir(repo: string): string {
  return path.join(reg.storage, 'docker', 'registry', 'v2', 'repositories', ...repo.split('/'));
}

before(async () => {
  requireTool('skopeo');
  reg = await startRegistry();
  sb = sandbox('kiln-mlist-');
  Object.assign(one, importImage(sb, 'localhost/one:1', 'one\n'));
  Object.assign(two, importImage(sb, 'localhost/two:1', 'two\n'));
  assert.notEqual(one.id, two.id);
});

after(async () => {
  teardownAll();
  sb?.cleanup();
  await reg?.stop();
});

test('create + add --arch/--variant: inspect shows both entries with their platforms', () => {
  const id = sb.ok(['manifest', 'create', 'localhost/multi:1', 'localhost/one:1']).trim();
  assert.match(id, /^[0-9a-f]{64}$/);
  // a separate process: the list is in the store, and add prints the same list ID
  assert.equal(sb.ok(['manifest', 'add', '--arch', 'arm64', '--variant', 'v8', 'multi:1', 'localhost/two:1']).trim(), id);
  const index = JSON.parse(sb.ok(['manifest', 'inspect', 'localhost/multi:1'])) as IndexJSON;
  assert.equal(index.schemaVersion, 2);
  assert.equal(index.mediaType, OCI_INDEX);
  assert.deepEqual(
    index.manifests.map((m) => [m.mediaType, m.digest, m.platform]),
    [
      [OCI_MANIFEST, one.digest, { architecture: 'amd64', os: 'linux' }],
      [OCI_MANIFEST, two.digest, { architecture: 'arm64', os: 'linux', variant: 'v8' }],
    ],
  );
  // sizes are those of the stored manifests
  const layout = path.join(sb.dir, 'layout-one');
  sb.ok(['save', '--format', 'oci-dir', '-o', layout, 'localhost/one:1']);
  assert.equal(index.manifests[0]!.size, fs.statSync(path.join(layout, 'blobs', 'sha256', one.digest.slice(7))).size);
  // lists are not images
  assert.doesNotMatch(sb.ok(['images']), /multi/);
  assert.equal(sb.kiln(['manifest', 'exists', 'localhost/multi:1']).status, 0);
});

test('push: skopeo sees the index; pull --arch/--variant picks the arm64 entry, a default pull the amd64 one; skopeo copy --all gets every blob', () => {
  const ref = `${reg.host}/kiln/multi:1`;
  const digestFile = path.join(sb.dir, 'digest');
  // `--all` before the list name must not swallow it
  const r = sb.kiln(['manifest', 'push', '--all', '--tls-verify=false', '--digestfile', digestFile, 'localhost/multi:1', `docker://${ref}`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /^Getting image list signatures\nCopying 2 of 2 images in list\nCopying image sha256:[0-9a-f]{64} \(1\/2\)\nGetting image source signatures\n/);
  assert.match(r.stderr, /Writing manifest list to image destination\nStoring list signatures\n$/);

  const { json, digest } = rawIndex(ref);
  assert.ok(fs.existsSync(repoDir('kiln/multi')), 'the registry stores the repository where the failure tests look');
  assert.equal(fs.readFileSync(digestFile, 'utf8'), digest);
  assert.equal(json.mediaType, OCI_INDEX);
  assert.deepEqual(
    json.manifests.map((m) => [m.digest, m.platform]),
    [
      [one.digest, { architecture: 'amd64', os: 'linux' }],
      [two.digest, { architecture: 'arm64', os: 'linux', variant: 'v8' }],
    ],
  );
  // each entry is in the repository by digest, with the bytes the index references
  for (const m of json.manifests) assert.equal(rawIndex(`${reg.host}/kiln/multi@${m.digest}`).digest, m.digest);

  const arm = fresh();
  assert.equal(arm.ok(['pull', '-q', '--arch', 'arm64', '--variant', 'v8', ref]).trim(), two.id);
  assert.equal(arm.ok(['image', 'inspect', '--format', '{{.Id}}', ref]).trim(), two.id);
  const amd = fresh();
  assert.equal(amd.ok(['pull', '-q', ref]).trim(), one.id);
  const miss = fresh().kiln(['pull', '--arch', 's390x', ref]);
  assert.equal(miss.status, 125);
  assert.match(miss.stderr, /no image for platform linux\/s390x in the manifest list \(have: linux\/amd64, linux\/arm64\/v8\)/);

  // skopeo copies the whole list: every manifest, config and layer it references is there
  const dir = path.join(sb.dir, 'oci-all');
  run('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${ref}`, `oci:${dir}:multi`]);
  const blob = (d: string) => fs.readFileSync(path.join(dir, 'blobs', 'sha256', d.slice(7)));
  const top = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as IndexJSON;
  assert.equal(top.manifests[0]!.digest, digest);
  const copied = JSON.parse(blob(digest).toString()) as IndexJSON;
  assert.equal(copied.manifests.length, 2);
  for (const m of copied.manifests) {
    const bytes = blob(m.digest);
    assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, m.digest);
    const man = JSON.parse(bytes.toString()) as { config: { digest: string; size: number }; layers: { digest: string; size: number }[] };
    for (const d of [man.config, ...man.layers]) {
      const b = blob(d.digest);
      assert.equal(b.length, d.size);
      assert.equal(`sha256:${createHash('sha256').update(b).digest('hex')}`, d.digest);
    }
  }
});

test('Docker schema2 images make a Docker manifest list; --format v2s2 with an OCI entry is refused before anything is sent', () => {
  const ctx = fs.mkdtempSync(path.join(sb.dir, 'ctx-'));
  fs.writeFileSync(path.join(ctx, 'Containerfile'), 'FROM localhost/two:1\nLABEL built=docker\n');
  sb.ok(['build', '-q', '--format', 'docker', '-t', 'localhost/dock:1', ctx]);
  const dockDigest = sb.ok(['image', 'inspect', '--format', '{{.Digest}}', 'localhost/dock:1']).trim();
  sb.ok(['manifest', 'create', 'localhost/dlist:1', 'localhost/dock:1']);
  sb.ok(['manifest', 'push', '-q', 'localhost/dlist:1', `${reg.host}/kiln/dlist:1`]);
  const { json } = rawIndex(`${reg.host}/kiln/dlist:1`);
  assert.equal(json.mediaType, DOCKER_LIST);
  assert.deepEqual(json.manifests.map((m) => [m.mediaType, m.digest]), [[DOCKER_MANIFEST, dockDigest]]);

  sb.ok(['manifest', 'create', 'localhost/mixed:1', 'localhost/dock:1', 'localhost/one:1']);
  const mixed = JSON.parse(sb.ok(['manifest', 'inspect', 'localhost/mixed:1'])) as IndexJSON;
  assert.equal(mixed.mediaType, OCI_INDEX);
  assert.deepEqual(mixed.manifests.map((m) => m.mediaType), [DOCKER_MANIFEST, OCI_MANIFEST]);
  const r = sb.kiln(['manifest', 'push', '--format', 'v2s2', 'localhost/mixed:1', `docker://${reg.host}/kiln/mixed:1`]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, new RegExp(`Error: manifest list localhost/mixed:1: --format v2s2: entry ${one.digest} has media type ${OCI_MANIFEST.replace(/\./g, '\\.').replace(/\+/g, '\\+')}`));
  assert.ok(!fs.existsSync(repoDir('kiln/mixed')), 'nothing was pushed');
});

test('errors: unknown list, a list name that is an image name (either way), a list pushed after its image was removed', () => {
  const s = fresh();
  const a = importImage(s, 'localhost/a:1', 'a\n');
  const bImg = importImage(s, 'localhost/b:1', 'b\n');

  const unknown = s.kiln(['manifest', 'add', 'localhost/nolist:1', 'localhost/a:1']);
  assert.equal(unknown.status, 125);
  assert.match(unknown.stderr, /^Error: localhost\/nolist:1: manifest list not known\n/);

  const clash = s.kiln(['manifest', 'create', 'a:1']);
  assert.equal(clash.status, 125);
  assert.match(clash.stderr, new RegExp(`^Error: cannot create manifest list localhost/a:1: the name is already used by image ${a.id.slice(0, 12)}\\n`));

  s.ok(['manifest', 'create', 'localhost/l:1', 'localhost/a:1', 'localhost/b:1']);
  const tag = s.kiln(['tag', 'localhost/a:1', 'localhost/l:1']);
  assert.equal(tag.status, 125);
  assert.match(tag.stderr, /the name localhost\/l:1 is already used by a manifest list/);
  const twice = s.kiln(['manifest', 'create', 'localhost/l:1']);
  assert.equal(twice.status, 125);
  assert.match(twice.stderr, /a manifest list with that name already exists/);
  const notList = s.kiln(['manifest', 'inspect', 'localhost/a:1']);
  assert.equal(notList.status, 125);
  assert.match(notList.stderr, /^Error: localhost\/a:1: image is not a manifest list\n/);
  const remote = s.kiln(['manifest', 'add', 'localhost/l:1', `docker://${reg.host}/kiln/multi:1`]);
  assert.equal(remote.status, 125);
  assert.match(remote.stderr, /only images in the local store can be added to a manifest list/);

  // podman lets an image in a list be removed; pushing the list then names it and sends nothing
  s.ok(['rmi', 'localhost/b:1']);
  const b = s.kiln(['manifest', 'push', 'localhost/l:1', `docker://${reg.host}/kiln/gone:1`]);
  assert.equal(b.status, 125);
  assert.match(b.stderr, /^Error: manifest list localhost\/l:1: entry 2 \(linux\/amd64, sha256:[0-9a-f]{64}\): image [0-9a-f]{12} is no longer in the store\n/);
  assert.ok(!fs.existsSync(repoDir('kiln/gone')), 'nothing was pushed');
  // dropping the entry (as the hint says) makes the list pushable again
  const listID = s.ok(['manifest', 'remove', 'localhost/l:1', bImg.digest]).trim();
  assert.match(listID, /^[0-9a-f]{64}$/);
  s.ok(['manifest', 'push', '-q', 'localhost/l:1', `docker://${reg.host}/kiln/gone:1`]);
  assert.deepEqual(rawIndex(`${reg.host}/kiln/gone:1`).json.manifests.map((m) => m.digest), [a.digest]);

  // manifest rm removes the list, not its images; an unknown list exits 1 as podman's does
  const rm = s.kiln(['manifest', 'rm', 'localhost/l:1']);
  assert.equal(rm.status, 0, rm.stderr);
  assert.match(rm.stdout, /^Untagged: localhost\/l:1\nDeleted: [0-9a-f]{64}\n$/);
  assert.equal(s.kiln(['manifest', 'exists', 'localhost/l:1']).status, 1);
  assert.equal(s.ok(['images', '-q', '--no-trunc']).trim(), `sha256:${a.id}`);
  const again = s.kiln(['manifest', 'rm', 'localhost/l:1']);
  assert.equal(again.status, 1);
  assert.match(again.stderr, /^Error: localhost\/l:1: manifest list not known\n/);
  // the name is free for an image again
  s.ok(['tag', 'localhost/a:1', 'localhost/l:1']);
});
