/**
 * `kiln pull` with [[registry.mirror]]s (containers-registries.conf(5) v2, as podman does it),
 * against real docker-registry instances: a "primary" registry that a [[registry]] location
 * points at, a mirror holding what the primary lacks, and a mirror on 127.0.0.2 (a loopback
 * address kiln does not reach over plain http unless told it is insecure). Checked: mirrors are
 * tried first and in order, through the prefix → location rewrite, and the image is stored under
 * the name asked for; a dead or incomplete mirror falls back to the next source; pull-from-mirror
 * digest-only / tag-only; blocked registries; a mirror's own `insecure`; --creds stay off
 * mirrors on other registries. The registries' access logs show which one was asked.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sandbox } from './helpers/env';
import { BASE, baseSandbox, teardown } from './helpers/build-e2e';
import { freePort, sandboxes, startRegistry, type TestRegistry } from './helpers/registry';
import { pullSources } from '../src/registry/registries-conf';
import { hostOptionsFor } from '../src/registry/host-options';
import { RegistryClient } from '../src/registry/client';
import { getManifest } from '../src/registry/manifests';

/** The name pulled: [[registry]] prefix "registry.example.test/ns" rewrites it; nothing resolves it. */
const ASKED = 'registry.example.test/ns/app';

let sb: Sandbox;
let primary: TestRegistry;
let mirror: TestRegistry;
let insecureMirror: TestRegistry;
let id: string;
const { fresh, teardownAll } = sandboxes('kiln-mirrors-pull-');

before(async () => {
  sb = await baseSandbox('kiln-mirrors-');
  [primary, mirror, insecureMirror] = await Promise.all([startRegistry(), startRegistry(), startRegistry({ address: '127.0.0.2' })]);
  id = sb.ok(['image', 'inspect', '--format', '{{.Id}}', BASE]).trim();
  // tag 1 only on the mirrors, tag 2 only on the primary
  sb.ok(['push', '-q', BASE, `docker://${mirror.host}/mirrored/app:1`]);
  sb.ok(['push', '-q', '--tls-verify=false', BASE, `docker://${insecureMirror.host}/mirrored/app:1`]);
  sb.ok(['push', '-q', BASE, `docker://${primary.host}/ns/app:2`]);
});

after(async () => {
  teardownAll();
  teardown(sb);
  await Promise.all([primary?.stop(), mirror?.stop(), insecureMirror?.stop()]);
});

/** A registries.conf in the sandbox; returns the env that makes kiln read it. */
function conf(name: string, text: string): NodeJS.ProcessEnv {
  const file = path.join(sb.dir, `${name}.conf`);
  fs.writeFileSync(file, text);
  return { CONTAINERS_REGISTRIES_CONF: file, REGISTRY_AUTH_FILE: path.join(sb.dir, 'no-auth.json') };
}

/** The [[registry]] for ASKED's prefix, pointing at the primary, with these mirror tables. */
function withMirrors(...mirrors: string[]): string {
  return [`[[registry]]`, `prefix = "registry.example.test/ns"`, `location = "${primary.host}/ns"`, ...mirrors.map((m) => `[[registry.mirror]]\n${m}`)].join('\n') + '\n';
}

/** `kiln pull` into a store of its own (nothing cached from an earlier pull). */
function pull(env: NodeJS.ProcessEnv, args: string[]) {
  const s = fresh();
  return { s, r: s.kiln(['pull', ...args], { env }) };
}

/** How many requests for `path` a registry logged (its access log). */
function requests(reg: TestRegistry, method: string, p: string): number {
  return fs.readFileSync(reg.log, 'utf8').split('\n').filter((l) => l.includes(`"${method} ${p} HTTP/1.1"`)).length;
}

/** Waits (up to 5 s) until the registry has logged at least `n` such requests: it logs after answering. */
async function logged(reg: TestRegistry, method: string, p: string, n: number): Promise<void> {
  for (const deadline = Date.now() + 5000; requests(reg, method, p) < n; ) {
    if (Date.now() > deadline) assert.fail(`${reg.host} did not log ${n} × ${method} ${p}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

test('a tag pull comes from the mirror, through the prefix rewrite, and is stored under the name asked for', async () => {
  const env = conf('mirror', withMirrors(`location = "${mirror.host}/mirrored"`));
  const before = requests(primary, 'GET', '/v2/ns/app/manifests/1');
  const { s, r } = pull(env, [`${ASKED}:1`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), id);
  assert.match(r.stderr, new RegExp(`^Trying to pull ${esc(ASKED)}:1\\.\\.\\.\\nTrying to access "${esc(mirror.host)}/mirrored/app:1"\\nGetting image source signatures\\n`));
  assert.doesNotMatch(r.stderr, /failed/);
  assert.equal(requests(primary, 'GET', '/v2/ns/app/manifests/1'), before, 'the primary location was not asked');
  await logged(mirror, 'GET', '/v2/mirrored/app/manifests/1', 1);
  assert.deepEqual(JSON.parse(s.ok(['image', 'inspect', '--format', '{{json .RepoTags}}', id])), [`${ASKED}:1`]);
});

test('a dead mirror, then one without the tag, are logged and skipped: the pull falls back to the primary location', async () => {
  const dead = `127.0.0.1:${await freePort()}`;
  const env = conf('fallback', withMirrors(`location = "${dead}/mirrored"`, `location = "${mirror.host}/mirrored"`));
  const { s, r } = pull(env, [`${ASKED}:2`]);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), id);
  assert.match(r.stderr, new RegExp(`Trying to access "${esc(dead)}/mirrored/app:2"\\nAccessing "${esc(dead)}/mirrored/app:2" failed: .*ECONNREFUSED`));
  assert.match(r.stderr, new RegExp(`Trying to access "${esc(mirror.host)}/mirrored/app:2"\\nAccessing "${esc(mirror.host)}/mirrored/app:2" failed: .*manifest unknown`));
  assert.match(r.stderr, new RegExp(`Trying to access "${esc(primary.host)}/ns/app:2"\\nGetting image source signatures\\n`));
  assert.equal(s.ok(['image', 'inspect', '--format', '{{.Id}}', `${ASKED}:2`]).trim(), id);

  // no source has tag 3: the primary's error, with each mirror's
  const miss = pull(env, [`${ASKED}:3`]);
  assert.equal(miss.r.status, 125);
  assert.match(miss.r.stderr, new RegExp(`^Error: \\(Mirrors also failed: \\[${esc(dead)}/mirrored/app:3: .*ECONNREFUSED.*\\]\\n\\[${esc(mirror.host)}/mirrored/app:3: .*manifest unknown\\)\\]\\): ${esc(primary.host)}/ns/app:3: manifest unknown`, 'm'));
  assert.equal(miss.s.ok(['images', '-q']).trim(), '');
});

test('pull-from-mirror: a digest-only mirror serves digests, not tags; a tag-only mirror the other way round', async () => {
  const c = new RegistryClient(mirror.host, { tlsVerify: true, insecureHttp: false });
  const digest = (await getManifest(c, 'mirrored/app', '1')).digest;
  await c.close();

  const digestOnly = conf('digest-only', withMirrors(`location = "${mirror.host}/mirrored"\npull-from-mirror = "digest-only"`));
  const tag = pull(digestOnly, [`${ASKED}:1`]);
  assert.equal(tag.r.status, 125, 'the primary has no tag 1 and the mirror is not asked');
  assert.doesNotMatch(tag.r.stderr, /Trying to access|Mirrors also failed/);
  assert.match(tag.r.stderr, new RegExp(`^Error: .*${esc(primary.host)}/ns/app:1: manifest unknown`, 'm'));
  const byDigest = pull(digestOnly, [`${ASKED}@${digest}`]);
  assert.equal(byDigest.r.status, 0, byDigest.r.stderr);
  assert.equal(byDigest.r.stdout.trim(), id);
  assert.match(byDigest.r.stderr, new RegExp(`Trying to access "${esc(mirror.host)}/mirrored/app@${digest}"\\nGetting image source signatures`));
  assert.deepEqual(JSON.parse(byDigest.s.ok(['image', 'inspect', '--format', '{{json .RepoTags}}', id])), [], 'a digest pull records no tag');
  assert.equal(byDigest.s.ok(['image', 'inspect', '--format', '{{.Id}}', `${ASKED}@${digest}`]).trim(), id, 'stored under the name asked for, not the mirror\'s');

  const tagOnly = conf('tag-only', withMirrors(`location = "${mirror.host}/mirrored"\npull-from-mirror = "tag-only"`));
  assert.equal(pull(tagOnly, [`${ASKED}:1`]).r.status, 0);
  const before = requests(primary, 'GET', `/v2/ns/app/manifests/${digest}`);
  const d = pull(tagOnly, [`${ASKED}@${digest}`]);
  assert.equal(d.r.status, 0, d.r.stderr);
  assert.doesNotMatch(d.r.stderr, /Trying to access/);
  await logged(primary, 'GET', `/v2/ns/app/manifests/${digest}`, before + 1); // by digest only the primary (which has the manifest under tag 2) is asked
});

test('a blocked registry is refused without contacting it, unless one of its mirrors has the image', () => {
  const env = conf('blocked', `[[registry]]\nlocation = "${primary.host}"\nblocked = true\n`);
  const before = requests(primary, 'GET', '/v2/ns/app/manifests/2');
  const { s, r } = pull(env, [`${primary.host}/ns/app:2`]);
  assert.equal(r.status, 125);
  assert.equal(r.stderr, `Trying to pull ${primary.host}/ns/app:2...\nError: registry ${primary.host} is blocked in ${env.CONTAINERS_REGISTRIES_CONF}\nHint: see containers-registries.conf(5)\n`);
  assert.equal(requests(primary, 'GET', '/v2/ns/app/manifests/2'), before);
  assert.equal(s.ok(['images', '-q']).trim(), '');

  const viaMirror = conf('blocked-mirror', withMirrors(`location = "${mirror.host}/mirrored"`).replace('[[registry.mirror]]', 'blocked = true\n[[registry.mirror]]'));
  const ok = pull(viaMirror, [`${ASKED}:1`]);
  assert.equal(ok.r.status, 0, ok.r.stderr);
  assert.equal(ok.r.stdout.trim(), id);
  const refused = pull(viaMirror, [`${ASKED}:2`]);
  assert.equal(refused.r.status, 125);
  assert.match(refused.r.stderr, new RegExp(`\\): ${esc(primary.host)}/ns/app:2: registry registry\\.example\\.test is blocked in `));
});

test("a mirror's own insecure = true lets kiln reach it without TLS; without it the mirror fails and the pull falls back", async () => {
  const secure = conf('secure-mirror', withMirrors(`location = "${insecureMirror.host}/mirrored"`));
  const refused = pull(secure, [`${ASKED}:1`]);
  assert.equal(refused.r.status, 125, 'an https-only mirror on 127.0.0.2 speaks plain http: refused');
  assert.match(refused.r.stderr, new RegExp(`Accessing "${esc(insecureMirror.host)}/mirrored/app:1" failed: `));

  const insecure = conf('insecure-mirror', withMirrors(`location = "${insecureMirror.host}/mirrored"\ninsecure = true`));
  const ok = pull(insecure, [`${ASKED}:1`]);
  assert.equal(ok.r.status, 0, ok.r.stderr);
  assert.equal(ok.r.stdout.trim(), id);
  assert.doesNotMatch(ok.r.stderr, /failed/);
  await logged(insecureMirror, 'GET', '/v2/mirrored/app/manifests/1', 1);
});

describe('pull sources and their connection settings (no network)', () => {
  test('pullSources: mirrors in order with their insecure, then the primary; blocked sources', () => {
    const env = conf('sources', [
      '[[registry]]', 'prefix = "a.example/ns"', 'location = "primary.example/x"', 'insecure = true', 'blocked = true',
      '[[registry.mirror]]', 'location = "m1.example/y"', 'insecure = true',
      '[[registry.mirror]]', 'location = "bad.example/z"',
      '[[registry.mirror]]', 'location = "m3.example"', 'pull-from-mirror = "digest-only"',
      '[[registry]]', 'location = "bad.example"', 'blocked = true',
    ].join('\n'));
    const o = { confPath: env.CONTAINERS_REGISTRIES_CONF! };
    const file = env.CONTAINERS_REGISTRIES_CONF!;
    assert.deepEqual(pullSources('a.example/ns/app:1', o), [
      { location: 'm1.example/y/app:1', insecure: true, mirror: true },
      { location: 'bad.example/z/app:1', insecure: false, mirror: true, blocked: `registry bad.example is blocked in ${file}` },
      { location: 'primary.example/x/app:1', insecure: true, mirror: false, blocked: `registry a.example is blocked in ${file}` },
    ]);
    assert.deepEqual(pullSources('a.example/ns/app@sha256:abc', o).map((s) => s.location), [
      'm1.example/y/app@sha256:abc', 'bad.example/z/app@sha256:abc', 'm3.example/app@sha256:abc', 'primary.example/x/app@sha256:abc',
    ]);
    assert.deepEqual(pullSources('other.example/app:1', o), [{ location: 'other.example/app:1', insecure: false, mirror: false }]);
  });

  test('hostOptionsFor: a source brings its own insecure; --creds go only to the registry asked for', () => {
    const saved = process.env.REGISTRY_AUTH_FILE;
    process.env.REGISTRY_AUTH_FILE = path.join(sb.dir, 'no-auth.json');
    try {
      const h = hostOptionsFor({ creds: 'u:p' });
      const onMirror = h('mirror.example', 'mirror.example/x', { insecure: true, primaryDomain: 'docker.io' });
      assert.equal(onMirror.tlsVerify, false);
      assert.equal(onMirror.insecureHttp, true);
      assert.equal(onMirror.credentials, undefined, 'no --creds for a mirror on another registry');
      const onPrimary = h('registry-1.docker.io', 'docker.io/library/x', { insecure: false, primaryDomain: 'docker.io' });
      assert.deepEqual(onPrimary.credentials, { username: 'u', password: 'p' });
      assert.equal(onPrimary.tlsVerify, true);
      assert.deepEqual(h('mirror.example', 'mirror.example/x').credentials, { username: 'u', password: 'p' }, 'not a pull source: as before');
    } finally {
      if (saved === undefined) delete process.env.REGISTRY_AUTH_FILE;
      else process.env.REGISTRY_AUTH_FILE = saved;
    }
  });
});
