/**
 * kiln's archives against the reference tools: skopeo and umoci read what kiln saves and
 * pushes; podman loads and runs a kiln docker-archive; an archive saved by podman loads into
 * kiln with the same layer digests and image ID.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sandbox, busyboxTar, requireTool, run, podmanIn, type Sandbox } from './helpers/env';

let sb: Sandbox;
let id: string;
let diffIDs: string[];

before(async () => {
  sb = sandbox('kiln-interop-');
  const tar = await busyboxTar(sb.dir);
  id = sb.ok(['import', '-c', 'CMD ["/bin/sh"]', tar, 'localhost/bb:1']).trim().replace(/^sha256:/, '');
  diffIDs = (JSON.parse(sb.ok(['inspect', 'bb:1'])) as Array<{ RootFS: { Layers: string[] } }>)[0]!.RootFS.Layers;
});
after(() => sb.cleanup());

test('skopeo and umoci read `kiln push oci:` and `kiln save --format oci-archive`', () => {
  requireTool('skopeo');
  requireTool('umoci');
  const layout = path.join(sb.dir, 'layout');
  sb.ok(['push', 'bb:1', `oci:${layout}:v1`]);
  const info = JSON.parse(run('skopeo', ['inspect', `oci:${layout}:v1`])) as { Layers: string[]; Os: string };
  assert.equal(info.Os, 'linux');
  assert.equal(info.Layers.length, 1);
  const cfg = JSON.parse(run('skopeo', ['inspect', '--config', `oci:${layout}:v1`])) as { rootfs: { diff_ids: string[] } };
  assert.deepEqual(cfg.rootfs.diff_ids, diffIDs);
  const bundle = path.join(sb.dir, 'bundle');
  run('umoci', ['unpack', '--image', `${layout}:v1`, bundle]);
  assert.ok(fs.lstatSync(path.join(bundle, 'rootfs', 'bin', 'sh')).isSymbolicLink());
  assert.match(fs.readFileSync(path.join(bundle, 'rootfs', 'etc', 'passwd'), 'utf8'), /^root:x:0:0:/);

  const archive = path.join(sb.dir, 'bb-oci.tar');
  sb.ok(['save', '--format', 'oci-archive', '-o', archive, 'bb:1']);
  const a = JSON.parse(run('skopeo', ['inspect', `oci-archive:${archive}`])) as { Layers: string[] };
  assert.deepEqual(a.Layers, info.Layers);
  const d = path.join(sb.dir, 'bb-dir');
  sb.ok(['save', '--format', 'docker-dir', '-o', d, 'bb:1']);
  const dd = JSON.parse(run('skopeo', ['inspect', '--config', `dir:${d}`])) as { rootfs: { diff_ids: string[] } };
  assert.deepEqual(dd.rootfs.diff_ids, diffIDs);
});

test('podman loads and runs a kiln docker-archive', (t) => {
  const pm = podmanIn(sb.dir);
  t.after(pm.cleanup);
  const archive = path.join(sb.dir, 'bb-docker.tar');
  sb.ok(['save', '-o', archive, 'bb:1']);
  const out = pm.run(['load', '-i', archive]);
  assert.match(out, /localhost\/bb:1/);
  const pid = pm.run(['images', '--format', '{{.ID}}', '--no-trunc', 'localhost/bb:1']).trim();
  assert.equal(pid.replace(/^sha256:/, ''), id, 'podman sees the same image ID (config digest)');
  assert.equal(pm.run(['run', '--rm', '--net', 'none', 'localhost/bb:1', 'sh', '-c', 'echo hello from kiln; id -un']).trim(), 'hello from kiln\nroot');
});

test('an archive saved by podman loads into kiln with identical layer digests and image ID', (t) => {
  const pm = podmanIn(path.join(sb.dir));
  t.after(pm.cleanup);
  const tar = path.join(sb.dir, 'busybox-rootfs.tar');
  const pid = pm.run(['import', '--change', 'CMD ["/bin/true"]', tar, 'localhost/from-podman:latest']).trim();
  for (const [fmt, file] of [['docker-archive', 'p-docker.tar'], ['oci-archive', 'p-oci.tar']] as const) {
    const archive = path.join(sb.dir, file);
    pm.run(['save', '--format', fmt, '-o', archive, 'localhost/from-podman:latest']);
    const inspectP = JSON.parse(pm.run(['inspect', 'localhost/from-podman:latest'])) as Array<{ Id: string; RootFS: { Layers: string[] } }>;
    const loaded = sb.ok(['load', '-i', archive]);
    assert.match(loaded, /Loaded image: localhost\/from-podman:latest/);
    const inspectK = JSON.parse(sb.ok(['inspect', 'localhost/from-podman:latest'])) as Array<{ Id: string; RootFS: { Layers: string[] } }>;
    assert.equal(inspectK[0]!.Id, inspectP[0]!.Id.replace(/^sha256:/, ''), `${fmt}: same image ID`);
    assert.equal(inspectK[0]!.Id, pid.replace(/^sha256:/, ''));
    assert.deepEqual(inspectK[0]!.RootFS.Layers, inspectP[0]!.RootFS.Layers, `${fmt}: same layer digests`);
    // whatever manifest kind it came with, an OCI layout gets an OCI manifest (as podman writes)
    const layout = path.join(sb.dir, `relayout-${fmt}`);
    sb.ok(['push', 'localhost/from-podman:latest', `oci:${layout}:t`]);
    const raw = JSON.parse(run('skopeo', ['inspect', '--raw', `oci:${layout}:t`])) as { mediaType?: string; config: { mediaType: string } };
    assert.equal(raw.mediaType ?? 'application/vnd.oci.image.manifest.v1+json', 'application/vnd.oci.image.manifest.v1+json', fmt);
    assert.equal(raw.config.mediaType, 'application/vnd.oci.image.config.v1+json', fmt);
    run('umoci', ['stat', '--image', `${layout}:t`]);
    const dirOut = path.join(sb.dir, `redir-${fmt}`);
    sb.ok(['save', '--format', 'docker-dir', '-o', dirOut, 'localhost/from-podman:latest']);
    const rawDir = JSON.parse(run('skopeo', ['inspect', '--raw', `dir:${dirOut}`])) as { mediaType: string };
    assert.equal(rawDir.mediaType, 'application/vnd.docker.distribution.manifest.v2+json', `${fmt}: docker-dir holds Docker schema2, as podman's`);
  }
  // loaded twice with two different manifests: both digests are RepoDigests, and the second
  // manifest's blobs belong to the image (nothing is left unreferenced)
  const again = JSON.parse(sb.ok(['inspect', 'localhost/from-podman:latest'])) as Array<{ RepoDigests: string[] }>;
  assert.equal(again[0]!.RepoDigests.length, 2, again[0]!.RepoDigests.join(' '));
  assert.equal(sb.kiln(['image', 'exists', again[0]!.RepoDigests[1]!]).status, 0, 'found by its second digest');
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
  sb.ok(['rmi', 'localhost/from-podman:latest']);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
});

test('load refuses a corrupted archive and stores nothing', () => {
  const archive = path.join(sb.dir, 'bb-docker.tar');
  if (!fs.existsSync(archive)) sb.ok(['save', '-o', archive, 'bb:1']);
  const bad = path.join(sb.dir, 'corrupt.tar');
  const buf = fs.readFileSync(archive);
  // flip one byte inside the layer data (well past the first headers)
  const at = buf.indexOf(Buffer.from('busybox')) + 4096;
  buf[at] = buf[at]! ^ 0xff;
  fs.writeFileSync(bad, buf);
  const other = sandbox('kiln-corrupt-');
  try {
    const r = other.kiln(['load', '-i', bad]);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /corrupt\.tar: .*layer 0 has diffID sha256:[a-f0-9]{64}, but .* says sha256:/);
    assert.equal(other.ok(['images', '-q']).trim(), '');
    assert.equal(other.ok(['system', 'check']).trim(), 'No problems found');
  } finally {
    other.cleanup();
  }
});
