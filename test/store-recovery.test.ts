/**
 * Recovery from interrupted operations (regressions found in review): a removal killed inside
 * its transaction is undone by repair; a layer dir left by a killed peer makes way; a failed
 * load leaves nothing; mounts are judged per image, also through a symlinked runroot.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { sandbox, busyboxTar, REPO, type Sandbox } from './helpers/env';
import { isMountPoint } from '../src/store/mounts';

let sb: Sandbox;
let tar: string;

before(async () => {
  sb = sandbox('kiln-recover-');
  tar = await busyboxTar(sb.dir);
});
after(() => {
  sb.kiln(['image', 'unmount', '--all']);
  sb.cleanup();
});

const clean = () => assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');

test('an rmi killed inside its transaction is rolled back, files included', () => {
  sb.ok(['import', tar, 'victim']);
  // Remove the image inside a write transaction and die (SIGKILL) before it commits.
  const script = `
    const { Store } = require(${JSON.stringify(path.join(REPO, 'dist', 'src', 'store', 'store.js'))});
    const s = Store.open({ root: ${JSON.stringify(sb.root)}, runroot: ${JSON.stringify(sb.runroot)} });
    const img = s.images.resolve('victim');
    s.writeTx(() => { s.images.removeTx(img.id, false); process.kill(process.pid, 'SIGKILL'); });`;
  const r = spawnSync(process.execPath, ['-e', script]);
  assert.equal(r.signal, 'SIGKILL');
  // the records survived; the files sit in the dead process's trash until a write repairs
  const chk = sb.kiln(['system', 'check']);
  assert.equal(chk.status, 125);
  assert.match(chk.stdout, /recorded but its (file|directory) is missing/);
  sb.ok(['tag', 'victim', 'victim2']);
  clean();
  sb.ok(['save', '-o', path.join(sb.dir, 'victim.tar'), 'victim']);
  sb.ok(['rmi', 'victim', 'victim2']);
  clean();
});

test('a layer dir left by a killed peer (no record) makes way for the same layer', () => {
  sb.ok(['import', tar, 'probe']);
  const layerID = fs.readdirSync(path.join(sb.root, 'layers'))[0]!;
  sb.ok(['rmi', 'probe']);
  fs.mkdirSync(path.join(sb.root, 'layers', layerID, 'diff'), { recursive: true });
  fs.writeFileSync(path.join(sb.root, 'layers', layerID, 'diff', 'junk'), 'debris');
  sb.ok(['import', tar, 'again']);
  clean();
  assert.equal(fs.existsSync(path.join(sb.root, 'layers', layerID, 'diff', 'junk')), false);
  sb.ok(['rmi', 'again']);
});

test('a load that fails on a bad name after its first image leaves nothing', () => {
  sb.ok(['import', tar, 'good']);
  sb.ok(['import', '-c', 'LABEL x=y', tar, 'bad']);
  const dir = path.join(sb.dir, 'two-layout');
  sb.ok(['save', '--format', 'oci-dir', '-o', dir, 'good', 'bad']);
  sb.ok(['rmi', 'good', 'bad']);
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
  index.manifests[1]!.annotations = { 'org.opencontainers.image.ref.name': 'BAD//Name' };
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index));
  const r = sb.kiln(['load', '-i', dir]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /BAD\/\/Name/);
  assert.equal(sb.ok(['images', '-q']).trim(), '', 'the first image of the archive was removed again');
  clean();
  assert.deepEqual(fs.readdirSync(path.join(sb.root, 'layers')), []);
});

test('mounts are per image: removing an image that shares a mounted layer is fine; symlinked runroot', () => {
  const link = path.join(sb.dir, 'runroot-link');
  fs.mkdirSync(sb.runroot, { recursive: true });
  fs.symlinkSync(sb.runroot, link);
  const k = (args: string[]) => {
    const r = spawnSync(process.execPath, [path.join(REPO, 'bin', 'kiln'), '--root', sb.root, '--runroot', link, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  k(['import', tar, 'x']);
  k(['import', tar, 'y']);
  const mnt = k(['image', 'mount', 'y']).trim();
  assert.equal(k(['image', 'mount', 'y']).trim(), mnt);
  assert.ok(isMountPoint(mnt));
  k(['rmi', 'x']); // shares y's mounted layer; y keeps it
  assert.ok(isMountPoint(mnt));
  k(['image', 'unmount', 'y']);
  k(['image', 'unmount', 'y']);
  assert.equal(isMountPoint(mnt), false);
  k(['rmi', 'y']);
  clean();
});

test('no command, or a group without its subcommand, is an error (125) as in podman', () => {
  for (const args of [[], ['image'], ['system']]) {
    const r = sb.kiln(args);
    assert.equal(r.status, 125, args.join(' '));
    assert.match(r.stderr, /Error: missing command 'kiln (image |system )?COMMAND'/);
  }
});
