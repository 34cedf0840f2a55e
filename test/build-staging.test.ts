/**
 * COPY into a path the image lacks is staged on tmpfs and its layer kept as a blob until
 * something needs the dir (LayerStore.commitDeferred / ensureChain). These tests pin down that
 * the result is the same as copying on the disk overlay, that every consumer gets the dir
 * (a later RUN, image mount, save), and that the store stays consistent.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sandbox } from './helpers/env';
import { baseSandbox, buildOk, teardown, writeTree } from './helpers/build-e2e';

let sb: Sandbox;
before(async () => {
  sb = await baseSandbox('kiln-build-staging-');
});
after(() => teardown(sb));

function extracted(): Map<string, number> {
  const Database = require('better-sqlite3') as typeof import('better-sqlite3');
  const db = new Database(path.join(sb.root, 'kiln.db'), { readonly: true });
  try {
    return new Map((db.prepare('SELECT id, extracted FROM layers').all() as { id: string; extracted: number }[]).map((r) => [r.id, r.extracted]));
  } finally {
    db.close();
  }
}


/** path → "type mode uid:gid size nlink-group target" for every entry below `root`/`sub`. */
function listing(root: string, sub: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
      const r = `${rel}/${name}`;
      const st = fs.lstatSync(path.join(root, r));
      const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : 'f';
      const link = st.isFile() && st.nlink > 1 ? (inodes.get(`${st.ino}`) ?? (inodes.set(`${st.ino}`, r), r)) : '';
      out[r] = `${type} ${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid} ${st.isFile() ? st.size : ''} ${link} ${st.isSymbolicLink() ? fs.readlinkSync(path.join(root, r)) : ''}`;
      if (st.isDirectory()) walk(r);
    }
  };
  walk(sub);
  return out;
}

function withMount<T>(image: string, fn: (root: string) => T): T {
  const root = sb.ok(['image', 'mount', image]).trim();
  try {
    return fn(root);
  } finally {
    sb.ok(['image', 'unmount', image]);
  }
}

const files = {
  Containerfile: [
    'FROM localhost/busybox',
    'RUN echo "app:x:1234:1234::/app:/bin/sh" >> /etc/passwd && echo "app:x:1234:" >> /etc/group',
    'COPY src/one.txt /etc/copied-into-existing-dir.txt',
    'COPY --chown=app:app --chmod=0750 src /app/',
  ].join('\n'),
  'src/one.txt': 'one\n',
  'src/sub/two.txt': 'two\n',
  'src/sub/deeper/three.txt': 'three\n',
};

test('a COPY into a new top-level dir is stored as a blob first, and gives what the disk path gives', () => {
  const ctx = writeTree(path.join(sb.dir, 'ctx'), files);
  fs.symlinkSync('one.txt', path.join(ctx, 'src', 'link'));
  fs.linkSync(path.join(ctx, 'src', 'one.txt'), path.join(ctx, 'src', 'hard'));
  buildOk(sb, ['--no-cache', '-t', 'localhost/staged', ctx]);
  const layers = sb.ok(['inspect', '--format', '{{json .RootFS.Layers}}', 'localhost/staged']);
  assert.equal((JSON.parse(layers) as unknown[]).length, 4, layers);
  const before = extracted();
  const deferred = [...before.values()].filter((x) => x === 0).length;
  assert.equal(deferred, 1, 'exactly the COPY into /app/ was deferred (not the COPY into the existing /etc)');
  const check = sb.kiln(['system', 'check']);
  assert.equal(check.status, 0, check.stdout + check.stderr);

  const viaTmpfs = withMount('localhost/staged', (root) => listing(root, '/app'));
  assert.ok([...extracted().values()].every((x) => x === 1), 'mounting the image extracted the deferred layer');
  const r = sb.kiln(['build', '--no-cache', '-q', '-t', 'localhost/unstaged', ctx], { env: { KILN_NO_TMPFS_STAGING: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const viaDisk = withMount('localhost/unstaged', (root) => listing(root, '/app'));
  assert.deepEqual(viaTmpfs, viaDisk, 'the same files, modes, owners, links');
  assert.match(viaTmpfs['/app/sub/deeper/three.txt'], /^f 750 1234:1234 6 /);
});

test('a RUN after a deferred COPY sees its files (the layer is extracted for the step)', () => {
  const ctx = writeTree(path.join(sb.dir, 'ctx-run'), {
    Containerfile: 'FROM localhost/busybox\nCOPY data /data/\nRUN cat /data/a /data/b/c > /joined\n',
    'data/a': 'A\n',
    'data/b/c': 'C\n',
  });
  buildOk(sb, ['-t', 'localhost/staged-run', ctx]);
  assert.equal(withMount('localhost/staged-run', (root) => fs.readFileSync(path.join(root, 'joined'), 'utf8')), 'A\nC\n');
  assert.equal(sb.kiln(['system', 'check']).status, 0);
});

test('a deferred layer saves and loads (its blob is the layer) and checks clean after rmi', () => {
  const ctx = writeTree(path.join(sb.dir, 'ctx-save'), { Containerfile: 'FROM localhost/busybox\nCOPY f /new/\n', f: 'saved\n' });
  buildOk(sb, ['-t', 'localhost/staged-save', ctx]);
  const archive = path.join(sb.dir, 'staged.tar');
  sb.ok(['save', '--format', 'oci-archive', '-o', archive, 'localhost/staged-save']);
  sb.ok(['rmi', 'localhost/staged-save']);
  sb.ok(['load', '-q', '-i', archive]);
  assert.equal(withMount('localhost/staged-save', (root) => fs.readFileSync(path.join(root, 'new/f'), 'utf8')), 'saved\n');
  const check = sb.kiln(['system', 'check']);
  assert.equal(check.status, 0, check.stdout + check.stderr);
});

test('repair removes the tmpfs staging dirs of a dead kiln', () => {
  const owner = '999999-1';
  fs.mkdirSync(path.join(sb.root, 'tmp', owner), { recursive: true }); // a work dir nobody holds a lock on: a dead owner
  const shm = fs.mkdtempSync(path.join('/dev/shm', `kiln-${owner}-`));
  fs.writeFileSync(path.join(shm, 'x'), 'left by a killed build');
  sb.ok(['system', 'check', '--repair']);
  assert.equal(fs.existsSync(shm), false, 'the staging dir of the dead owner is gone');
});
