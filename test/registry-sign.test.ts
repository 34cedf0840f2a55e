/**
 * Sigstore signing on push and verification on pull against a real docker-registry, with
 * skopeo 1.18 (sigstore enabled; scripts/skopeo-sigstore.sh) as the oracle: kiln-signed images
 * pass skopeo's sigstoreSigned policy, skopeo-signed images pass kiln's, a key made by
 * `kiln generate-sigstore-key` works in skopeo, and every refusal (no signature, wrong key,
 * tampered payload or bundle, identity mismatch, a rejecting policy, a wrong passphrase) is a
 * clear error that stores (or pushes) nothing.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { run, type Sandbox } from './helpers/env';
import { BASE, baseSandbox, teardown } from './helpers/build-e2e';
import { sandboxes, startRegistry, type TestRegistry } from './helpers/registry';
import { skopeoSigstore } from './helpers/sigstore';
import { RegistryClient } from '../src/registry/client';
import { getManifest } from '../src/registry/manifests';
import { readAttachments, writeAttachments } from '../src/registry/attachments';
import { listReferrers, pushReferrer } from '../src/registry/referrers';
import { BUNDLE_MEDIA_TYPE } from '../src/signature/bundle';
import { SIMPLE_SIGNING_MEDIA_TYPE } from '../src/signature/payload';

let reg: TestRegistry;
let sb: Sandbox;
let skopeo: string;
let dir: string;
const { fresh, teardownAll } = sandboxes('kiln-sign-pull-');
/** registries.d with use-sigstore-attachments for every registry, and an empty one */
let attachD: string;
let noneD: string;
const pass = () => path.join(dir, 'pass');
const key = (name: string) => path.join(dir, name);

before(async () => {
  skopeo = skopeoSigstore();
  reg = await startRegistry();
  sb = await baseSandbox('kiln-sign-');
  dir = fs.mkdtempSync(path.join(sb.dir, 'keys-'));
  fs.writeFileSync(pass(), 'correct horse\n');
  attachD = path.join(dir, 'regd');
  noneD = path.join(dir, 'regd-none');
  fs.mkdirSync(attachD);
  fs.mkdirSync(noneD);
  fs.writeFileSync(path.join(attachD, 'default.yaml'), 'default-docker:\n  use-sigstore-attachments: true\n');
  sb.ok(['generate-sigstore-key', '--output-prefix', key('kiln'), '--passphrase-file', pass()]);
  sb.ok(['generate-sigstore-key', '--output-prefix', key('untrusted'), '--passphrase-file', pass()]);
  run(skopeo, ['generate-sigstore-key', '--output-prefix', key('skopeo'), '--passphrase-file', pass()]);
  // an OCI layout of the base image for skopeo to push from
  sb.ok(['push', BASE, `oci:${path.join(dir, 'layout')}:base`]);
});

after(async () => {
  teardownAll();
  teardown(sb);
  await reg?.stop();
});

/** A policy: `reqs` for this test's registry, reject for everything else. */
function policy(reqs: unknown[]): string {
  const f = path.join(dir, `policy-${randomUUID()}.json`);
  fs.writeFileSync(f, JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [reg.host]: reqs } } }));
  return f;
}

const signedBy = (pub: string, signedIdentity?: unknown) => [{ type: 'sigstoreSigned', keyPath: key(pub), ...(signedIdentity ? { signedIdentity } : {}) }];

function kilnPush(repo: string, extra: string[] = []): void {
  sb.ok(['push', '-q', ...extra, BASE, `docker://${reg.host}/${repo}`]);
}

function kilnSignedPush(repo: string, regd = attachD): void {
  kilnPush(repo, ['--sign-by-sigstore-private-key', key('kiln.private'), '--sign-passphrase-file', pass(), '--registries.d', regd]);
}

function skopeoSignedPush(repo: string, priv: string): void {
  run(skopeo, ['copy', '-q', '--dest-tls-verify=false', '--registries.d', attachD, '--sign-by-sigstore-private-key', key(priv), '--sign-passphrase-file', pass(), `oci:${path.join(dir, 'layout')}:base`, `docker://${reg.host}/${repo}`]);
}

function kilnPull(repo: string, pol: string, regd = attachD): { s: Sandbox; status: number | null; stderr: string } {
  const s = fresh();
  const r = s.kiln(['pull', '-q', '--signature-policy', pol, '--registries.d', regd, `${reg.host}/${repo}`]);
  return { s, status: r.status, stderr: r.stderr };
}

function assertNothingStored(s: Sandbox): void {
  assert.equal(s.ok(['images', '-q']).trim(), '');
  const blobs = path.join(s.root, 'blobs');
  const files = fs.existsSync(blobs) ? run('find', [blobs, '-type', 'f']).trim() : '';
  assert.equal(files, '', 'no blob may be left in the store');
}

function assertRefused(repo: string, pol: string, re: RegExp, regd = attachD): void {
  const { s, status, stderr } = kilnPull(repo, pol, regd);
  assert.equal(status, 125, stderr);
  assert.match(stderr, /Error: Source image rejected: /);
  assert.match(stderr, re);
  assertNothingStored(s);
}

function skopeoVerify(repo: string, pol: string): { status: number; stderr: string } {
  try {
    run(skopeo, ['--policy', pol, '--registries.d', attachD, 'copy', '-q', '--remove-signatures', '--src-tls-verify=false', `docker://${reg.host}/${repo}`, `oci:${path.join(dir, `out-${Math.random().toString(36).slice(2)}`)}:x`]);
    return { status: 0, stderr: '' };
  } catch (e) {
    return { status: 1, stderr: (e as Error).message };
  }
}

const client = () => new RegistryClient(reg.host, { tlsVerify: false, insecureHttp: true });

test('kiln push --sign-by-sigstore-private-key: skopeo 1.18 accepts the signature, refuses it under another key', () => {
  kilnSignedPush('sig/kiln:1');
  assert.equal(skopeoVerify('sig/kiln:1', policy(signedBy('kiln.pub'))).status, 0);
  const bad = skopeoVerify('sig/kiln:1', policy(signedBy('untrusted.pub')));
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /Source image rejected: cryptographic signature verification failed/);
  // kiln accepts its own signature too, and the image is the one pushed
  const { s, status, stderr } = kilnPull('sig/kiln:1', policy(signedBy('kiln.pub')));
  assert.equal(status, 0, stderr);
  assert.equal(s.ok(['image', 'inspect', '--format', '{{.Id}}', `${reg.host}/sig/kiln:1`]).trim(), sb.ok(['image', 'inspect', '--format', '{{.Id}}', BASE]).trim());
});

test('skopeo-signed images pass kiln\'s policy; a key from kiln generate-sigstore-key signs in skopeo', () => {
  skopeoSignedPush('sig/skopeo:1', 'skopeo.private');
  const ok = kilnPull('sig/skopeo:1', policy(signedBy('skopeo.pub')));
  assert.equal(ok.status, 0, ok.stderr);
  assertRefused('sig/skopeo:1', policy(signedBy('kiln.pub')), /cryptographic signature verification failed/);
  // skopeo decrypts and signs with kiln's key file; both tools then verify against kiln.pub
  skopeoSignedPush('sig/kiln-key:1', 'kiln.private');
  assert.equal(skopeoVerify('sig/kiln-key:1', policy(signedBy('kiln.pub'))).status, 0);
  assert.equal(kilnPull('sig/kiln-key:1', policy(signedBy('kiln.pub'))).status, 0);
});

test('an unsigned image under a requiring policy is refused; the hint names registries.d when attachments are off', () => {
  kilnPush('sig/plain:1');
  assertRefused('sig/plain:1', policy(signedBy('kiln.pub')), /A signature was required, but no signature exists/);
  // skopeo's signature is an attachment only: without use-sigstore-attachments kiln does not read it
  const { s, status, stderr } = kilnPull('sig/skopeo:1', policy(signedBy('skopeo.pub')), noneD);
  assert.equal(status, 125);
  assert.match(stderr, /no signature exists\nHint: sigstore attachments are not read for 127\.0\.0\.1:\d+: enable use-sigstore-attachments/);
  assertNothingStored(s);
});

test('a tampered payload is refused: the signature no longer verifies', async () => {
  kilnPush('sig/tamper:1');
  const c = client();
  try {
    const signed = await getManifest(c, 'sig/kiln', '1');
    const [genuine] = await readAttachments(c, 'sig/kiln', signed.digest);
    assert.ok(genuine);
    // the same manifest, with the genuine signature over a payload that names this repository
    const payload = Buffer.from(genuine.payload.toString().replace(`${reg.host}/sig/kiln:1`, `${reg.host}/sig/tamper:1`));
    assert.notDeepEqual(payload, genuine.payload);
    await writeAttachments(c, 'sig/tamper', signed.digest, [{ payload, annotations: genuine.annotations }]);
  } finally {
    await c.close();
  }
  assertRefused('sig/tamper:1', policy(signedBy('kiln.pub')), /cryptographic signature verification failed/);
});

test('a genuine signature for another identity is refused unless signedIdentity allows it', async () => {
  kilnPush('sig/copy:1');
  const c = client();
  try {
    const signed = await getManifest(c, 'sig/kiln', '1');
    const sigs = await readAttachments(c, 'sig/kiln', signed.digest);
    await writeAttachments(c, 'sig/copy', signed.digest, sigs);
  } finally {
    await c.close();
  }
  assertRefused('sig/copy:1', policy(signedBy('kiln.pub')), /signature for identity "127\.0\.0\.1:\d+\/sig\/kiln:1" is not accepted for 127\.0\.0\.1:\d+\/sig\/copy:1/);
  assertRefused('sig/copy:1', policy(signedBy('kiln.pub', { type: 'matchRepository' })), /is not accepted for/);
  const ok = kilnPull('sig/copy:1', policy(signedBy('kiln.pub', { type: 'exactRepository', dockerRepository: `${reg.host}/sig/kiln` })));
  assert.equal(ok.status, 0, ok.stderr);
  // skopeo agrees on the default rule
  assert.equal(skopeoVerify('sig/copy:1', policy(signedBy('kiln.pub'))).status, 1);
});

test('Sigstore bundles: kiln attaches one as a referrer (fallback tag here) and verifies it offline; a tampered one is refused', async () => {
  kilnSignedPush('sig/bundle:1', noneD);
  const c = client();
  let subject;
  try {
    subject = await getManifest(c, 'sig/bundle', '1');
    assert.deepEqual(await readAttachments(c, 'sig/bundle', subject.digest), [], 'attachments are off for this push');
    const refs = await listReferrers(c, 'sig/bundle', subject.digest, BUNDLE_MEDIA_TYPE);
    assert.equal(refs.length, 1);
  } finally {
    await c.close();
  }
  const ok = kilnPull('sig/bundle:1', policy(signedBy('kiln.pub')), noneD);
  assert.equal(ok.status, 0, ok.stderr);
  assertRefused('sig/bundle:1', policy(signedBy('untrusted.pub')), /key the policy does not trust/, noneD);

  // the genuine bundle next to a payload it does not sign
  kilnPush('sig/bundle-tamper:1');
  const c2 = client();
  try {
    const refs = await listReferrers(c2, 'sig/bundle', subject.digest, BUNDLE_MEDIA_TYPE);
    const art = JSON.parse((await getManifest(c2, 'sig/bundle', refs[0]!.digest)).bytes.toString()) as { layers: { mediaType: string; digest: string }[] };
    const blob = async (mt: string) => {
      const d = art.layers.find((l) => l.mediaType === mt)!.digest;
      const res = await fetch(`http://${reg.host}/v2/sig/bundle/blobs/${d}`);
      return Buffer.from(await res.arrayBuffer());
    };
    const bundle = await blob(BUNDLE_MEDIA_TYPE);
    const payload = Buffer.from((await blob(SIMPLE_SIGNING_MEDIA_TYPE)).toString().replace('sig/bundle:1', 'sig/bundle-tamper:1'));
    await pushReferrer(c2, 'sig/bundle-tamper', { mediaType: subject.mediaType, digest: subject.digest, size: subject.bytes.length }, BUNDLE_MEDIA_TYPE,
      [{ bytes: bundle, mediaType: BUNDLE_MEDIA_TYPE }, { bytes: payload, mediaType: SIMPLE_SIGNING_MEDIA_TYPE }], {});
  } finally {
    await c2.close();
  }
  assertRefused('sig/bundle-tamper:1', policy(signedBy('kiln.pub')), /Sigstore bundle signs another payload/, noneD);
});

test('policy scopes: reject and insecureAcceptAnything; every requirement must hold', () => {
  assertRefused('sig/kiln:1', policy([{ type: 'reject' }]), /Running image docker:\/\/127\.0\.0\.1:\d+\/sig\/kiln:1 is rejected by policy/);
  assert.equal(kilnPull('sig/plain:1', policy([{ type: 'insecureAcceptAnything' }])).status, 0);
  assertRefused('sig/kiln:1', policy([...signedBy('kiln.pub'), ...signedBy('skopeo.pub')]), /cryptographic signature verification failed/);
});

test('signing failures push nothing: a wrong passphrase, a non-registry destination', async () => {
  fs.writeFileSync(path.join(dir, 'wrong'), 'battery staple\n');
  const r = sb.kiln(['push', '-q', '--sign-by-sigstore-private-key', key('kiln.private'), '--sign-passphrase-file', path.join(dir, 'wrong'), BASE, `docker://${reg.host}/sig/never:1`]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /kiln\.private: cannot decrypt the private key: wrong passphrase/);
  const c = client();
  try {
    // the manifest is unknown (not merely unreadable): nothing was pushed
    await assert.rejects(getManifest(c, 'sig/never', '1'), (e: Error & { code?: string }) => e.code === 'E_IMAGE_UNKNOWN');
  } finally {
    await c.close();
  }
  const o = sb.kiln(['push', '--sign-by-sigstore-private-key', key('kiln.private'), '--sign-passphrase-file', pass(), BASE, `oci:${path.join(dir, 'nope')}`]);
  assert.equal(o.status, 125);
  assert.match(o.stderr, /needs a docker:\/\/ destination/);
  assert.equal(fs.existsSync(path.join(dir, 'nope')), false);
});
