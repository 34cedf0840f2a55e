/**
 * `kiln info` reports the store paths it was given, the cgroup mode it measured and the OCI
 * runtime it chose (runc on hybrid cgroups, where Debian's crun refuses to run); `version`
 * agrees with package.json; `--version` prints podman's one-line form.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sandbox, REPO } from './helpers/env';
import { MIGRATIONS } from '../src/store/schema';

const sb = sandbox('kiln-info-');
after(() => sb.cleanup());

test('info: store paths, cgroup mode and runtime choice', () => {
  const info = JSON.parse(sb.ok(['info', '--format', 'json'])) as {
    host: { cgroupMode: string; ociRuntime: { name: string; path: string; reason: string }; conmon: { path: string } };
    store: { graphRoot: string; runRoot: string; imageStore: { number: number } };
  };
  assert.equal(info.store.graphRoot, sb.root);
  assert.equal(info.store.runRoot, sb.runroot);
  assert.equal(info.store.imageStore.number, 0);
  const unified = fs.existsSync('/sys/fs/cgroup/cgroup.controllers');
  const hybrid = !unified && fs.existsSync('/sys/fs/cgroup/unified/cgroup.controllers');
  assert.equal(info.host.cgroupMode, unified ? 'v2' : hybrid ? 'hybrid' : 'v1');
  if (hybrid) assert.equal(info.host.ociRuntime.name, 'runc', info.host.ociRuntime.reason);
  assert.ok(fs.existsSync(info.host.ociRuntime.path), `runtime ${info.host.ociRuntime.path} exists`);
  assert.equal(sb.ok(['info', '--format', '{{.store.graphRoot}}']).trim(), sb.root);
  const env = sb.kiln(['info', '--format', '{{.store.graphRoot}}'], { env: { KILN_ROOT: '/nonexistent-ignored' } });
  assert.equal(env.stdout.trim(), sb.root, '--root beats KILN_ROOT');
});

test('version and --version agree with package.json', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string };
  assert.equal(sb.ok(['--version']).trim(), `kiln version ${pkg.version}`);
  assert.equal(sb.ok(['version', '--format', '{{.Client.Version}}']).trim(), pkg.version);
  const r = sb.kiln(['version']);
  assert.equal(r.stderr, '');
  assert.match(r.stdout, new RegExp(`^Version: +${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
});

test('a store from an older kiln is migrated in place on first use', () => {
  const old = sandbox('kiln-migrate-');
  try {
    old.ok(['images']); // creates the store at the current schema
    const Database = require('better-sqlite3') as typeof import('better-sqlite3');
    const file = path.join(old.root, 'kiln.db');
    const db = new Database(file);
    db.exec('ALTER TABLE images DROP COLUMN names_history; DROP TABLE image_digests; DROP TABLE build_cache; ALTER TABLE layers DROP COLUMN extracted; DROP TABLE container_volumes; DROP TABLE volumes; ALTER TABLE containers DROP COLUMN config');
    db.pragma('user_version = 1'); // as kiln wrote it before migration 2
    db.close();
    assert.match(old.ok(['images']), /^REPOSITORY/);
    const again = new Database(file);
    assert.equal(again.pragma('user_version', { simple: true }), MIGRATIONS.length);
    const columns = (table: string) => (again.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
    // what each migration after the first adds is back
    assert.ok(columns('images').includes('names_history'), 'migration 2');
    assert.ok(columns('image_digests').includes('digest'), 'migration 3');
    assert.ok(columns('build_cache').includes('key'), 'migration 4');
    assert.ok(columns('layers').includes('extracted'), 'migration 5');
    assert.ok(columns('containers').includes('config') && columns('volumes').includes('filled') && columns('container_volumes').includes('volume'), 'migration 9');
    again.close();
  } finally {
    old.cleanup();
  }
});
