/**
 * No daemon: several kiln processes share one store. Eight processes import, tag and remove
 * images at once; afterwards every record has its files and every file its record. Then a
 * kill -9 in the middle of a large import leaves no visible half image, the next command works,
 * and the cleanup pass removes the debris.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import * as tarStream from 'tar-stream';
import { sandbox, busyboxTar, spawnKiln, type Sandbox } from './helpers/env';

let sb: Sandbox;
let tar: string;

before(async () => {
  sb = sandbox('kiln-conc-');
  tar = await busyboxTar(sb.dir);
});
after(() => sb.cleanup());

/** A shell loop a worker process runs: kiln commands over a shared store. */
function worker(n: number): string {
  const k = `node ${JSON.stringify(path.resolve(__dirname, '..', '..', 'bin', 'kiln'))} --root ${JSON.stringify(sb.root)} --runroot ${JSON.stringify(sb.runroot)}`;
  return [
    'set -e',
    `for i in 1 2 3; do`,
    `  ${k} import ${JSON.stringify(tar)} w${n}-$i >/dev/null`,
    `  ${k} tag w${n}-$i shared-${n % 2}:$i w${n}-extra-$i`,
    `  ${k} untag w${n}-$i w${n}-extra-$i`,
    `  if [ $i -ne 3 ]; then ${k} rmi -f w${n}-$i >/dev/null; fi`,
    'done',
  ].join('\n');
}

test('8 processes doing import/tag/rmi at once leave records and files in agreement', async () => {
  const { spawn } = await import('node:child_process');
  const procs = Array.from({ length: 8 }, (_, n) => spawn('sh', ['-c', worker(n)], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const results = await Promise.all(
    procs.map(async (p) => {
      let err = '';
      p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      const [code] = (await once(p, 'exit')) as [number];
      return { code, err };
    }),
  );
  for (const r of results) assert.equal(r.code, 0, r.err);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
  const json = JSON.parse(sb.ok(['images', '--format', 'json'])) as Array<{ Names: string[] }>;
  const names = json.flatMap((i) => i.Names).sort();
  for (let n = 0; n < 8; n++) assert.ok(names.includes(`localhost/w${n}-3:latest`), `w${n}-3 survives`);
  // one layer: every import of the same tarball shares it
  assert.equal(fs.readdirSync(path.join(sb.root, 'layers')).length, 1);
});

/** Writes a tar of `mib` MiB of random data in 1 MiB files (random: gzip cannot shrink it). */
async function bigTar(file: string, mib: number): Promise<void> {
  const pack = tarStream.pack();
  const out = fs.createWriteStream(file);
  pack.pipe(out);
  for (let i = 0; i < mib; i++) {
    await new Promise<void>((res, rej) => pack.entry({ name: `data/f${i}`, size: 1 << 20 }, randomBytes(1 << 20), (e) => (e ? rej(e) : res())));
  }
  pack.finalize();
  await once(out, 'close');
}

test('kill -9 during a large import leaves no half image; the cleanup pass removes the debris', async () => {
  const big = path.join(sb.dir, 'big.tar');
  await bigTar(big, 400);
  const before = sb.ok(['images', '-q', '--no-trunc']).trim().split('\n').sort();
  const p = spawnKiln(sb, ['import', big, 'big']);
  // wait until the import is visibly under way (its work dir holds data), then kill it
  const tmp = path.join(sb.root, 'tmp');
  const deadline = Date.now() + 60_000;
  let started = false;
  while (Date.now() < deadline && !started) {
    await new Promise((r) => setTimeout(r, 50));
    for (const d of fs.existsSync(tmp) ? fs.readdirSync(tmp) : []) {
      const layerDirs = fs.readdirSync(path.join(tmp, d)).filter((x) => x.startsWith('layer-'));
      for (const l of layerDirs) {
        const data = path.join(tmp, d, l, 'diff', 'data');
        if (fs.existsSync(data) && fs.readdirSync(data).length > 20) started = true;
      }
    }
  }
  assert.ok(started, 'the import got under way');
  p.kill('SIGKILL');
  await once(p, 'exit');
  assert.equal(sb.kiln(['image', 'exists', 'big']).status, 1, 'no half image is visible');
  // the next command works, and sees the same images as before
  assert.deepEqual(sb.ok(['images', '-q', '--no-trunc']).trim().split('\n').sort(), before);
  // debris is there until a write (or an explicit repair) cleans it
  const chk = sb.kiln(['system', 'check']);
  assert.equal(chk.status, 125);
  assert.match(chk.stdout, /work dir .* of dead process/);
  const rep = sb.ok(['system', 'check', '--repair']);
  assert.match(rep, /Removed debris: 1 work dirs/);
  assert.match(rep, /No problems found/);
  assert.deepEqual(fs.readdirSync(tmp), []);
  // and a write after a crash cleans up by itself
  const p2 = spawnKiln(sb, ['import', big, 'big2']);
  await new Promise((r) => setTimeout(r, 1500));
  p2.kill('SIGKILL');
  await once(p2, 'exit');
  sb.ok(['tag', 'w0-3', 'after-crash']);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
});

test('a kiln in another pid namespace is not mistaken for a dead process', async () => {
  const big = path.join(sb.dir, 'big.tar');
  if (!fs.existsSync(big)) await bigTar(big, 400);
  const { spawn } = await import('node:child_process');
  const kilnBin = path.resolve(__dirname, '..', '..', 'bin', 'kiln');
  // In its own pid namespace the importer is pid 1 or so: a pid-based liveness test on the
  // host would call it dead and delete its work dir.
  const p = spawn('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, kilnBin, '--root', sb.root, '--runroot', sb.runroot, 'import', big, 'from-ns'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const tmp = path.join(sb.root, 'tmp');
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && !(fs.existsSync(tmp) && fs.readdirSync(tmp).some((d) => !d.startsWith('.')))) await new Promise((r) => setTimeout(r, 20));
  sb.ok(['tag', 'w0-3', 'during-ns-import']); // a host write: runs the debris check while the import works
  sb.ok(['system', 'check', '--repair']);
  const [code] = (await once(p, 'exit')) as [number];
  assert.equal(code, 0, err);
  assert.equal(sb.kiln(['image', 'exists', 'from-ns']).status, 0);
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
});

test('Ctrl-C during save removes the partial output and the work dir', async () => {
  assert.equal(sb.kiln(['image', 'exists', 'from-ns']).status, 0, 'needs the image of the previous test');
  const outDir = path.join(sb.dir, 'save-int');
  fs.mkdirSync(outDir);
  const p = spawnKiln(sb, ['save', '-o', path.join(outDir, 'big.tar'), 'from-ns']);
  const deadline = Date.now() + 60_000;
  const staged = () => fs.readdirSync(outDir).some((f) => f.includes('kiln-staging'));
  while (Date.now() < deadline && !staged()) await new Promise((r) => setTimeout(r, 20));
  assert.ok(staged(), 'the save got under way');
  await new Promise((r) => setTimeout(r, 200));
  p.kill('SIGINT');
  const [code, signal] = (await once(p, 'exit')) as [number | null, string | null];
  assert.equal(code ?? signal, 130);
  assert.deepEqual(fs.readdirSync(outDir), [], 'no partial archive or staging dir');
  assert.deepEqual(fs.readdirSync(path.join(sb.root, 'tmp')), [], 'no work dir');
  assert.equal(sb.ok(['system', 'check']).trim(), 'No problems found');
});
