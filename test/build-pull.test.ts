/**
 * `kiln build` pulls base images from a registry (docker-registry on 127.0.0.1) as podman build
 * does: --pull=missing (default) fetches what the store lacks, --pull=never refuses, and the
 * signature policy applies to those pulls too.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Sandbox } from './helpers/env';
import { BASE, baseSandbox, teardown, writeTree } from './helpers/build-e2e';
import { sandboxes, startRegistry, type TestRegistry } from './helpers/registry';

let reg: TestRegistry;
let sb: Sandbox;
const { fresh, teardownAll } = sandboxes('kiln-build-pull-fresh-');

before(async () => {
  reg = await startRegistry();
  sb = await baseSandbox('kiln-build-pull-');
  sb.ok(['push', '-q', BASE, `docker://${reg.host}/base/busybox:1`]);
});

after(async () => {
  teardownAll();
  teardown(sb);
  await reg?.stop();
});

test('FROM an image the store lacks is pulled (--pull=missing), then used; --pull=never refuses', () => {
  const s = fresh();
  const ctx = writeTree(path.join(s.dir, 'ctx'), { Containerfile: `FROM ${reg.host}/base/busybox:1\nRUN echo pulled > /marker\n` });
  const never = s.kiln(['build', '-q', '--pull=never', '-t', 'localhost/on-pulled', ctx]);
  assert.equal(never.status, 125);
  assert.match(never.stderr, /base\/busybox:1: image not known/);
  const r = s.kiln(['build', '-t', 'localhost/on-pulled', ctx]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /Trying to pull 127\.0\.0\.1:\d+\/base\/busybox:1\.\.\./);
  assert.equal(s.ok(['image', 'inspect', '--format', '{{.Id}}', `${reg.host}/base/busybox:1`]).trim(), sb.ok(['image', 'inspect', '--format', '{{.Id}}', BASE]).trim());
  const mnt = s.ok(['image', 'mount', 'localhost/on-pulled']).trim();
  try {
    assert.equal(fs.readFileSync(path.join(mnt, 'marker'), 'utf8'), 'pulled\n');
  } finally {
    s.ok(['image', 'unmount', 'localhost/on-pulled']);
  }
  // present now: a second build does not pull again
  const again = s.kiln(['build', '-t', 'localhost/on-pulled', ctx]);
  assert.equal(again.status, 0, again.stderr);
  assert.doesNotMatch(again.stderr, /Trying to pull/);
});

test('base image pulls obey the signature policy', () => {
  const s = fresh();
  const ctx = writeTree(path.join(s.dir, 'ctx'), { Containerfile: `FROM ${reg.host}/base/busybox:1\n` });
  const policy = path.join(s.dir, 'policy.json');
  fs.writeFileSync(policy, JSON.stringify({ default: [{ type: 'reject' }] }));
  const r = s.kiln(['build', '-q', '--signature-policy', policy, '-t', 'localhost/x', ctx]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /Source image rejected: Running image docker:\/\/127\.0\.0\.1:\d+\/base\/busybox:1 is rejected by policy/);
  assert.equal(s.ok(['images', '-q']).trim(), '');
});

test('bad flag values are refused naming the flag, before any work', () => {
  const s = fresh();
  const ctx = writeTree(path.join(s.dir, 'ctx'), { Containerfile: 'FROM scratch\nLABEL a=b\n' });
  const tls = s.kiln(['pull', '--tls-verify=maybe', `${reg.host}/base/busybox:1`]);
  assert.equal(tls.status, 125);
  assert.match(tls.stderr, /--tls-verify "maybe": want true or false/);
  const iid = s.kiln(['build', '-q', '--iidfile', path.join(s.dir, 'no-such-dir', 'iid'), '-t', 'localhost/iid', ctx]);
  assert.equal(iid.status, 125);
  assert.match(iid.stderr, /--iidfile .*no-such-dir\/iid: directory .*no-such-dir does not exist/);
  assert.equal(s.ok(['images', '-q']).trim(), '', 'nothing was built');
});
