/**
 * The pure parts of signature verification: policy.json parsing and scope lookup, signedIdentity
 * rules, the simple-signing payload's strict parsing, cosign key files (including one written by
 * skopeo 1.18) and Sigstore bundles. The registry flows are in registry-sign.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadPolicy, requirementsFor, dockerScopes } from '../src/signature/policy';
import { checkIdentity, type SignedIdentity } from '../src/signature/identity';
import { makePayload, parsePayload } from '../src/signature/payload';
import { generateKeyPair, loadPrivateKey, loadPublicKeys } from '../src/signature/cosign-key';
import { makeBundle, verifyBundle } from '../src/signature/bundle';
import { loadRegistriesD, useSigstoreAttachments } from '../src/signature/registries-d';
import { parseName } from '../src/image/reference';
import { run } from './helpers/env';
import { skopeoSigstore } from './helpers/sigstore';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-sigpolicy-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const pair = generateKeyPair(Buffer.from('pw'));
const pubFile = path.join(dir, 'k.pub');
fs.writeFileSync(pubFile, pair.publicKey);

function policyFile(v: unknown): string {
  const f = path.join(dir, `policy-${crypto.randomUUID()}.json`);
  fs.writeFileSync(f, typeof v === 'string' ? v : JSON.stringify(v));
  return f;
}

test('the most specific docker scope wins, then the transport default, then default', () => {
  const p = loadPolicy(policyFile({
    default: [{ type: 'reject' }],
    transports: {
      docker: {
        'reg.example.com:5000/team/app:1': [{ type: 'insecureAcceptAnything' }],
        'reg.example.com:5000/team': [{ type: 'sigstoreSigned', keyPath: pubFile }],
        '*.example.com': [{ type: 'insecureAcceptAnything' }],
      },
    },
  }));
  const scope = (n: string) => requirementsFor(p, parseName(n, 'docker.io')).scope;
  assert.equal(scope('reg.example.com:5000/team/app:1'), 'transports.docker["reg.example.com:5000/team/app:1"]');
  assert.equal(scope('reg.example.com:5000/team/app:2'), 'transports.docker["reg.example.com:5000/team"]');
  assert.equal(scope('other.example.com/x'), 'transports.docker["*.example.com"]');
  assert.equal(scope('quay.io/x'), 'default');
  assert.deepEqual(dockerScopes(parseName('a.b.c/ns/r@sha256:' + 'a'.repeat(64))), [
    `a.b.c/ns/r@sha256:${'a'.repeat(64)}`, 'a.b.c/ns/r', 'a.b.c/ns', 'a.b.c', '*.b.c', '*.c',
  ]);
});

test('invalid policies are refused naming the file and the field', () => {
  const cases: [unknown, RegExp][] = [
    ['{not json', /not JSON/],
    [{ default: [] }, /default: must be a non-empty array/],
    [{ default: [{ type: 'insecureAcceptAnything', extra: 1 }] }, /default\[0\]: unknown field "extra"/],
    [{ default: [{ type: 'signedByKey' }] }, /unknown requirement type "signedByKey"/],
    [{ default: [{ type: 'sigstoreSigned' }] }, /exactly one of keyPath/],
    [{ default: [{ type: 'sigstoreSigned', keyPath: pubFile, keyData: 'eA==' }] }, /exactly one of keyPath/],
    [{ default: [{ type: 'sigstoreSigned', keyPath: path.join(dir, 'missing.pub') }] }, /cannot read public key .*missing\.pub: ENOENT/],
    [{ default: [{ type: 'sigstoreSigned', keyPath: pubFile, signedIdentity: { type: 'matchSomething' } }] }, /signedIdentity: unknown type "matchSomething"/],
    [{ default: [{ type: 'reject' }], transports: { docker: { x: 'no' } } }, /transports\.docker\["x"\]: must be a non-empty array/],
    [{ default: [{ type: 'sigstoreSigned', keyPath: pubFile, signedIdentity: { type: 'exactReference', dockerReference: 'h/x' } }] }, /dockerReference "h\/x" must be a name with a tag or digest/],
  ];
  for (const [v, re] of cases) {
    const f = policyFile(v);
    assert.throws(() => loadPolicy(f), (e: Error) => e.message.includes(f) && re.test(e.message), `${JSON.stringify(v)}`);
  }
  assert.throws(() => loadPolicy(path.join(dir, 'absent.json')), /cannot read signature policy .*absent\.json: ENOENT/);
  // keyData is base64 of the PEM
  const p = loadPolicy(policyFile({ default: [{ type: 'sigstoreSigned', keyData: Buffer.from(pair.publicKey).toString('base64') }] }));
  assert.equal(p.default[0]!.type, 'sigstoreSigned');
});

test('signedIdentity rules accept and refuse as containers-policy.json(5) says', () => {
  const img = (s: string) => parseName(s, 'docker.io');
  const ok = (rule: SignedIdentity, image: string, claimed: string) => assert.doesNotThrow(() => checkIdentity(rule, img(image), claimed), `${rule.type} ${image} ${claimed}`);
  const no = (rule: SignedIdentity, image: string, claimed: string) => assert.throws(() => checkIdentity(rule, img(image), claimed), /is not accepted for/, `${rule.type} ${image} ${claimed}`);
  const d = `sha256:${'b'.repeat(64)}`;
  const exact: SignedIdentity = { type: 'matchRepoDigestOrExact' };
  ok(exact, 'h:5000/a/b:1', 'h:5000/a/b:1');
  no(exact, 'h:5000/a/b:1', 'h:5000/a/b:2');
  no(exact, 'h:5000/a/b:1', 'h:5000/a/c:1');
  ok(exact, `h:5000/a/b@${d}`, 'h:5000/a/b:whatever');
  no(exact, `h:5000/a/b@${d}`, 'h:5000/a/c:1');
  ok(exact, 'docker.io/library/busybox:latest', 'busybox:latest'); // normalized as docker does
  no(exact, 'busybox:latest', 'docker.io/library/busybox'); // a signature without a tag vouches for no tag
  no(exact, `h:5000/a/b@${d}`, 'h:5000/a/b'); // …nor for a digest
  no({ type: 'remapIdentity', prefix: 'mirror:5000/ns', signedPrefix: 'Bad Prefix' }, 'mirror:5000/ns/app:1', 'mirror:5000/ns/app:1');
  ok({ type: 'matchRepository' }, 'h:5000/a/b:1', 'h:5000/a/b:9');
  no({ type: 'matchRepository' }, 'h:5000/a/b:1', 'h:5000/a/bb:1');
  ok({ type: 'exactReference', dockerReference: 'h:5000/x:2' }, 'h:5000/a/b:1', 'h:5000/x:2');
  no({ type: 'exactReference', dockerReference: 'h:5000/x:2' }, 'h:5000/x:2', 'h:5000/x:3');
  ok({ type: 'exactRepository', dockerRepository: 'h:5000/x' }, 'h:5000/a/b:1', 'h:5000/x:7');
  ok({ type: 'remapIdentity', prefix: 'mirror:5000/ns', signedPrefix: 'origin.io/ns' }, 'mirror:5000/ns/app:1', 'origin.io/ns/app:1');
  no({ type: 'remapIdentity', prefix: 'mirror:5000/ns', signedPrefix: 'origin.io/ns' }, 'mirror:5000/ns/app:1', 'origin.io/ns/app:2');
  assert.throws(() => checkIdentity(exact, img('h/a:1'), 'Not/Valid'), /not a valid docker reference/);
});

test('the payload is written and read back; its critical part is read strictly', () => {
  const d = `sha256:${'c'.repeat(64)}` as const;
  const p = makePayload('h:5000/a:1', d);
  assert.deepEqual(parsePayload(p), { dockerReference: 'h:5000/a:1', manifestDigest: d });
  const v = JSON.parse(p.toString()) as { critical: Record<string, unknown> };
  const bad = (f: (x: typeof v) => void, re: RegExp) => {
    const c = structuredClone(v);
    f(c);
    assert.throws(() => parsePayload(Buffer.from(JSON.stringify(c))), re);
  };
  bad((c) => (c.critical['extra'] = 1), /critical has fields/);
  bad((c) => (c.critical['type'] = 'atomic container signature'), /unrecognized type/);
  bad((c) => ((c.critical['image'] as Record<string, unknown>)['docker-manifest-digest'] = 'md5:x'), /not a sha256 digest/);
  bad((c) => ((c.critical['identity'] as Record<string, unknown>)['docker-reference'] = 7), /not a string/);
});

test('cosign key files: kiln reads a skopeo 1.18 key; wrong passphrases and non-keys are refused', () => {
  const skopeo = skopeoSigstore();
  const prefix = path.join(dir, 'skopeo-key');
  const pass = path.join(dir, 'pass');
  fs.writeFileSync(pass, 'open sesame\n');
  run(skopeo, ['generate-sigstore-key', '--output-prefix', prefix, '--passphrase-file', pass]);
  const priv = loadPrivateKey(fs.readFileSync(`${prefix}.private`, 'utf8'), Buffer.from('open sesame'), 'skopeo-key.private');
  const [pub] = loadPublicKeys(fs.readFileSync(`${prefix}.pub`, 'utf8'), 'skopeo-key.pub');
  const sig = crypto.sign('sha256', Buffer.from('x'), priv);
  assert.ok(crypto.verify('sha256', Buffer.from('x'), pub!, sig));
  assert.throws(() => loadPrivateKey(fs.readFileSync(`${prefix}.private`, 'utf8'), Buffer.from('open says me'), 'skopeo-key.private'), /skopeo-key\.private: cannot decrypt the private key: wrong passphrase/);
  assert.throws(() => loadPrivateKey(pair.publicKey, Buffer.from('pw'), 'k.pub'), /k\.pub: not a sigstore private key/);
});

test('Sigstore bundles: verified offline; another payload, another key or a forged digest are refused', async () => {
  const priv = loadPrivateKey(pair.privateKey, Buffer.from('pw'), 'k');
  const [pub] = loadPublicKeys(pair.publicKey, 'k.pub');
  const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
  const payload = makePayload('h:5000/a:1', `sha256:${'d'.repeat(64)}`);
  const bundle = await makeBundle(payload, priv);
  assert.doesNotThrow(() => verifyBundle(bundle, payload, [other, pub!]));
  const tampered = Buffer.from(payload.toString().replace('h:5000/a:1', 'h:5000/a:2'));
  assert.throws(() => verifyBundle(bundle, tampered, [pub!]), /signs another payload/);
  assert.throws(() => verifyBundle(bundle, payload, [other]), /key the policy does not trust/);
  const j = JSON.parse(bundle.toString()) as { messageSignature: { messageDigest: { digest: string } } };
  j.messageSignature.messageDigest.digest = crypto.createHash('sha256').update(tampered).digest('base64');
  assert.throws(() => verifyBundle(Buffer.from(JSON.stringify(j)), tampered, [pub!]), /signature verification failed/);
  assert.throws(() => verifyBundle(Buffer.from('{}'), payload, [pub!]), /invalid Sigstore bundle/);
});

test('registries.d: the most specific scope that sets use-sigstore-attachments wins', () => {
  const d = fs.mkdtempSync(path.join(dir, 'regd-'));
  fs.writeFileSync(path.join(d, 'a.yaml'), 'default-docker:\n  use-sigstore-attachments: true\ndocker:\n  reg.example.com/quiet:\n    use-sigstore-attachments: false\n');
  fs.writeFileSync(path.join(d, 'b.yaml'), 'docker:\n  other.example.com:\n    lookaside: https://x\n');
  const conf = loadRegistriesD(d);
  assert.equal(useSigstoreAttachments(conf, parseName('reg.example.com/loud/x:1')), true);
  assert.equal(useSigstoreAttachments(conf, parseName('reg.example.com/quiet/x:1')), false);
  assert.equal(useSigstoreAttachments(conf, parseName('other.example.com/x')), true);
  assert.equal(useSigstoreAttachments(loadRegistriesD(path.join(d, 'absent')), parseName('reg.example.com/x')), false);
  fs.writeFileSync(path.join(d, 'c.yaml'), 'docker:\n  other.example.com:\n    use-sigstore-attachments: true\n');
  assert.throws(() => loadRegistriesD(d), /c\.yaml: docker scope "other\.example\.com" is already defined in .*b\.yaml/);
  fs.writeFileSync(path.join(d, 'c.yaml'), 'docker: [1\n');
  assert.throws(() => loadRegistriesD(d), /c\.yaml: invalid YAML/);
});
