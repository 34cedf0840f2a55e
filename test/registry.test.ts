/**
 * The registry client and the docker:// transport against a real registry (Debian's
 * docker-registry) with skopeo and podman as oracles: kiln push is readable by skopeo and
 * podman, kiln pull reads what kiln and podman pushed (same image IDs), and failed pulls
 * (unknown tag, corrupt blob, a registry answering 500) are clear errors that store nothing.
 * Fronts in this file add auth, blob redirects to another origin and token expiry mid-upload.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { KILN, podmanIn, requireTool, run, type Sandbox } from './helpers/env';
import { BASE, baseSandbox, teardown } from './helpers/build-e2e';
import { registryBlobPath, sandboxes, startRegistry, type TestRegistry } from './helpers/registry';
import { hostOptionsFor } from '../src/registry/host-options';
import { RegistryClient } from '../src/registry/client';
import { getManifest } from '../src/registry/manifests';
import { uploadBlob } from '../src/registry/blobs';
import type { Digest } from '../src/util/digest';

let reg: TestRegistry;
let sb: Sandbox;
const { fresh, teardownAll } = sandboxes('kiln-registry-pull-');
let podman: ReturnType<typeof podmanIn> | undefined;

before(async () => {
  requireTool('skopeo');
  reg = await startRegistry();
  sb = await baseSandbox('kiln-registry-');
});

after(async () => {
  podman?.cleanup();
  teardownAll();
  teardown(sb);
  await reg?.stop();
});

/** Runs kiln without blocking the event loop (in-process HTTP servers must keep answering). */
function kilnAsync(s: Sandbox, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [KILN, '--root', s.root, '--runroot', s.runroot, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function imageID(s: Sandbox, name: string): string {
  return s.ok(['image', 'inspect', '--format', '{{.Id}}', name]).trim();
}

/** Layer digests of a stored image, read from its manifest via an OCI-layout save. */
function storedLayers(s: Sandbox, name: string): string[] {
  const out = path.join(s.dir, `layout-${Date.now()}`);
  s.ok(['save', '--format', 'oci-dir', '-o', out, name]);
  const index = JSON.parse(fs.readFileSync(path.join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
  const m = JSON.parse(fs.readFileSync(path.join(out, 'blobs', 'sha256', index.manifests[0]!.digest.slice(7)), 'utf8')) as { layers: { digest: string }[] };
  return m.layers.map((l) => l.digest);
}

test('kiln push → skopeo sees the same layers; kiln pull elsewhere gives the same image ID', async () => {
  const r = sb.kiln(['push', BASE, `docker://${reg.host}/kiln/busybox:1`]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /Getting image source signatures\nCopying blob sha256:[0-9a-f]{64}\n[\s\S]*Copying config sha256:[0-9a-f]{64}\nWriting manifest to image destination\n/);
  const info = JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/kiln/busybox:1`])) as { Layers: string[] };
  assert.deepEqual(info.Layers, storedLayers(sb, BASE));
  const raw = JSON.parse(run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reg.host}/kiln/busybox:1`])) as { config: { digest: string } };
  const id = imageID(sb, BASE);
  assert.equal(raw.config.digest, `sha256:${id}`);

  const other = fresh();
  const p = other.kiln(['pull', `${reg.host}/kiln/busybox:1`]);
  assert.equal(p.status, 0, p.stderr);
  assert.equal(p.stdout.trim(), id);
  assert.match(p.stderr, new RegExp(`^Trying to pull ${reg.host.replace(/\./g, '\\.')}/kiln/busybox:1\\.\\.\\.\\nGetting image source signatures\\n`));
  assert.match(p.stderr, /Writing manifest to image destination\nStoring signatures\n$/);
  assert.equal(imageID(other, `${reg.host}/kiln/busybox:1`), id);
  // by digest, with the transport prefix: nothing to download again
  const digest = JSON.parse(run('skopeo', ['inspect', '--tls-verify=false', `docker://${reg.host}/kiln/busybox:1`])).Digest as string;
  const q = other.kiln(['pull', '-q', `docker://${reg.host}/kiln/busybox@${digest}`]);
  assert.equal(q.status, 0, q.stderr);
  assert.equal(q.stderr, '');
  assert.equal(q.stdout.trim(), id);

  // by digest into a store without the image: as in podman, listed as REPOSITORY <none>, found
  // by repository@digest, no RepoTags, the digest among RepoDigests
  const third = fresh();
  const byDigest = `${reg.host}/kiln/busybox@${digest}`;
  assert.equal(third.ok(['pull', '-q', byDigest]).trim(), id);
  assert.equal(imageID(third, byDigest), id);
  assert.equal(third.ok(['images', '--format', '{{.Repository}} {{.Tag}}']).trim(), `${reg.host}/kiln/busybox <none>`);
  assert.deepEqual(JSON.parse(third.ok(['image', 'inspect', '--format', '{{json .RepoTags}}', byDigest])), []);
  assert.ok((JSON.parse(third.ok(['image', 'inspect', '--format', '{{json .RepoDigests}}', byDigest])) as string[]).includes(byDigest));
  assert.equal(third.kiln(['image', 'inspect', `${reg.host}/kiln/busybox:1`]).status, 125, 'no tag was recorded');
});

test('podman pulls and runs what kiln pushed; kiln pulls and reads what podman pushed', () => {
  const dir = fs.mkdtempSync(path.join(sb.dir, 'podman-'));
  podman = podmanIn(dir);
  const ref = `${reg.host}/kiln/busybox:1`;
  podman.run(['pull', '-q', '--tls-verify=false', ref]);
  assert.equal(podman.run(['run', '--rm', '--net=none', ref, 'echo', 'hello from kiln']).trim(), 'hello from kiln');

  podman.run(['run', '--name', 'maker', '--net=none', ref, 'sh', '-c', 'echo podman-made > /made-by-podman']);
  const pushed = `${reg.host}/podman/made:2`;
  podman.run(['commit', '-q', 'maker', pushed]);
  podman.run(['push', '-q', '--tls-verify=false', pushed]);
  const podmanID = podman.run(['image', 'inspect', '--format', '{{.Id}}', pushed]).trim();

  const other = fresh();
  const id = other.ok(['pull', '-q', pushed]).trim();
  assert.equal(id, podmanID);
  const root = other.ok(['image', 'mount', pushed]).trim();
  try {
    assert.equal(fs.readFileSync(path.join(root, 'made-by-podman'), 'utf8'), 'podman-made\n');
    assert.ok(fs.existsSync(path.join(root, 'bin', 'busybox')));
  } finally {
    other.ok(['image', 'unmount', pushed]);
  }
});

test('pulling an unknown tag fails clearly and stores nothing', () => {
  const other = fresh();
  const r = other.kiln(['pull', `${reg.host}/kiln/busybox:nope`]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /kiln\/busybox:nope: manifest unknown/);
  assert.equal(other.ok(['images', '-q']).trim(), '');
});

test('a blob whose bytes do not match its digest is refused and nothing is stored', () => {
  // an image with a layer of its own, so that corrupting it touches no other test's image
  const tree = fs.mkdtempSync(path.join(sb.dir, 'tiny-'));
  fs.writeFileSync(path.join(tree, 'hello.txt'), `unique ${Date.now()}\n`);
  const tar = path.join(sb.dir, 'tiny.tar');
  run('tar', ['-C', tree, '-cf', tar, 'hello.txt']);
  sb.ok(['import', tar, 'localhost/tiny:1']);
  sb.ok(['push', '-q', 'localhost/tiny:1', `docker://${reg.host}/kiln/tiny:1`]);
  const [layer] = storedLayers(sb, 'localhost/tiny:1');
  const file = registryBlobPath(reg, layer!);
  const bytes = fs.readFileSync(file);
  bytes[bytes.length >> 1] ^= 0xff; // same size, different digest
  fs.writeFileSync(file, bytes);

  const other = fresh();
  const r = other.kiln(['pull', `${reg.host}/kiln/tiny:1`]);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /digest mismatch: expected sha256:[0-9a-f]{64}, got sha256:/);
  assert.equal(other.ok(['images', '-q']).trim(), '');
  const leftovers = fs.existsSync(other.root) ? run('find', [other.root, '-type', 'f', '-size', `${bytes.length}c`]).trim() : '';
  assert.equal(leftovers, '', 'no file of the corrupt layer size remains in the store');

  // a truncated blob (the registry serves fewer bytes than the manifest says)
  fs.writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
  const t = other.kiln(['pull', `${reg.host}/kiln/tiny:1`]);
  assert.equal(t.status, 125);
  assert.match(t.stderr, new RegExp(`expected ${bytes.length} bytes, got ${bytes.length >> 1}`));
  assert.equal(other.ok(['images', '-q']).trim(), '');
});

test('a registry that keeps answering 500 gives a clear error after 3 attempts, without credentials in it', async () => {
  let hits = 0;
  const server = http.createServer((req, res) => {
    hits++;
    req.resume();
    res.writeHead(500, { 'content-type': 'application/json' });
    res.end('{"errors":[{"code":"UNKNOWN","message":"boom"}]}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const other = fresh();
    const t0 = Date.now();
    const r = await kilnAsync(other, ['pull', '--creds', 'someone:s3cret-pw', `127.0.0.1:${port}/x/y:1`]);
    assert.equal(r.status, 125, r.stderr);
    assert.match(r.stderr, /HTTP 500.*UNKNOWN: boom.*after 3 attempts/);
    assert.equal(hits, 3);
    assert.ok(Date.now() - t0 >= 500, 'backs off between attempts');
    assert.doesNotMatch(r.stderr, /s3cret/);
    assert.equal(other.ok(['images', '-q']).trim(), '');
  } finally {
    server.close();
  }
});

test('Bearer token auth: the token comes from the realm with Basic credentials and scope', async () => {
  const [rhost, rport] = reg.host.split(':') as [string, string];
  const scopes: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/token') {
      scopes.push(...url.searchParams.getAll('scope'));
      const ok = req.headers.authorization === `Basic ${Buffer.from('alice:open-sesame').toString('base64')}`;
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(ok ? '{"token":"tok-123"}' : '{}');
      return;
    }
    if (req.headers.authorization !== 'Bearer tok-123') {
      const port = (server.address() as { port: number }).port;
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="test"`, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    const up = http.request({ host: rhost, port: Number(rport), method: req.method, path: req.url, headers: { ...req.headers, host: reg.host } }, (ur) => {
      res.writeHead(ur.statusCode!, ur.headers);
      ur.pipe(res);
    });
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  try {
    const other = fresh();
    const denied = await kilnAsync(other, ['pull', '--creds', 'alice:wrong-pw', `127.0.0.1:${port}/kiln/busybox:1`]);
    assert.equal(denied.status, 125);
    assert.match(denied.stderr, /auth token .* failed: HTTP 401/);
    assert.doesNotMatch(denied.stderr, /wrong-pw/);
    const r = await kilnAsync(other, ['pull', '--creds', 'alice:open-sesame', `127.0.0.1:${port}/kiln/busybox:1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), imageID(sb, BASE));
    assert.ok(scopes.includes('repository:kiln/busybox:pull'), scopes.join(' '));
  } finally {
    server.close();
  }
});

/**
 * Forwards a request to the test registry, answering `res` with what it says. The Host header
 * is kept, so that the registry's absolute upload Locations point back at the front.
 */
function forward(req: http.IncomingMessage, res: http.ServerResponse, pathname = req.url!): void {
  const [rhost, rport] = reg.host.split(':') as [string, string];
  const headers = { ...req.headers };
  delete headers.authorization;
  const up = http.request({ host: rhost, port: Number(rport), method: req.method, path: pathname, headers }, (ur) => {
    res.writeHead(ur.statusCode!, ur.headers);
    ur.pipe(res);
  });
  req.pipe(up);
}

/**
 * A registry front that wants Basic alice:open-sesame and answers blob GETs with 307 to
 * /redirected/… on itself, which answers 307 to a "storage" server on 127.0.0.2 (another origin)
 * that serves the blob; `storageAuth` records the Authorization each storage request carried.
 */
async function redirectingRegistry(): Promise<{ port: number; storageAuth: (string | undefined)[]; storagePaths: string[]; close(): void }> {
  const storageAuth: (string | undefined)[] = [];
  const storagePaths: string[] = [];
  const storage = http.createServer((req, res) => {
    storageAuth.push(req.headers.authorization);
    storagePaths.push(req.url!);
    forward(req, res, req.url!.replace(/^\/store/, ''));
  });
  await new Promise<void>((r) => storage.listen(0, '127.0.0.2', () => r()));
  const sport = (storage.address() as { port: number }).port;
  const front = http.createServer((req, res) => {
    if (req.headers.authorization !== `Basic ${Buffer.from('alice:open-sesame').toString('base64')}`) {
      req.resume();
      res.writeHead(401, { 'www-authenticate': 'Basic realm="kiln-test"', 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    if (req.method === 'GET' && /\/blobs\/sha256:/.test(req.url!)) {
      req.resume();
      // relative first (resolved against this URL), then absolute to another origin
      res.writeHead(307, { location: req.url!.startsWith('/redirected/') ? `http://127.0.0.2:${sport}/store${req.url!.slice('/redirected'.length)}` : `/redirected${req.url}` });
      res.end();
      return;
    }
    forward(req, res);
  });
  await new Promise<void>((r) => front.listen(0, '127.0.0.1', () => r()));
  return {
    port: (front.address() as { port: number }).port,
    storageAuth,
    storagePaths,
    close() {
      front.close();
      storage.close();
    },
  };
}

test('blob GETs follow 307 redirects to another host, which gets no Authorization', async () => {
  const fake = await redirectingRegistry();
  try {
    const other = fresh();
    const r = await kilnAsync(other, ['pull', '--creds', 'alice:open-sesame', `127.0.0.1:${fake.port}/kiln/busybox:1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), imageID(sb, BASE));
    const blobs = new Set(fake.storagePaths.map((p) => /\/blobs\/(sha256:[0-9a-f]{64})/.exec(p)?.[1]).filter((d) => d !== undefined));
    assert.ok(blobs.has(`sha256:${imageID(sb, BASE)}`), `the config blob came from the storage host (${[...blobs].join(', ')})`);
    assert.ok(blobs.size >= 2, `the layer blob came from the storage host too (${[...blobs].join(', ')})`);
    assert.deepEqual(fake.storageAuth.filter((a) => a !== undefined), [], 'no Authorization sent to the storage host');
  } finally {
    fake.close();
  }
});

test('pull finds credentials stored under a repository key of auth.json', async () => {
  const fake = await redirectingRegistry();
  try {
    const other = fresh();
    const authfile = path.join(other.dir, 'auth.json');
    const auth = Buffer.from('alice:open-sesame').toString('base64');
    fs.writeFileSync(authfile, JSON.stringify({ auths: { [`127.0.0.1:${fake.port}/kiln/busybox`]: { auth }, [`127.0.0.1:${fake.port}`]: { auth: Buffer.from('alice:wrong').toString('base64') } } }));
    const r = await kilnAsync(other, ['pull', '--authfile', authfile, `127.0.0.1:${fake.port}/kiln/busybox:1`]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), imageID(sb, BASE));
  } finally {
    fake.close();
  }
});

test('hostOptionsFor looks Docker Hub credentials up as docker.io, per repository', () => {
  const dir = fs.mkdtempSync(path.join(sb.dir, 'auth-'));
  const authfile = path.join(dir, 'auth.json');
  const enc = (s: string) => Buffer.from(s).toString('base64');
  fs.writeFileSync(authfile, JSON.stringify({ auths: { 'docker.io': { auth: enc('hub:1') }, 'docker.io/team/app': { auth: enc('team:2') } } }));
  const opts = hostOptionsFor({ authfile });
  assert.deepEqual(opts('registry-1.docker.io', 'docker.io/library/alpine').credentials, { username: 'hub', password: '1' });
  assert.deepEqual(opts('registry-1.docker.io', 'docker.io/team/app').credentials, { username: 'team', password: '2' });
  assert.deepEqual(opts('registry-1.docker.io').credentials, { username: 'hub', password: '1' });
});

test('a manifest by a digest other than sha256 is refused as unverifiable', async () => {
  const client = new RegistryClient(reg.host, { tlsVerify: true, insecureHttp: false });
  try {
    await assert.rejects(getManifest(client, 'kiln/busybox', `sha512:${'a'.repeat(128)}`), (e: Error & { code?: string }) => e.code === 'E_INVALID_REFERENCE' && /sha512.*not supported/.test(e.message));
  } finally {
    await client.close();
  }
});

test('a token that expires during a streamed blob PUT restarts the upload, or fails clearly without a fresh stream', async () => {
  let issued = 0;
  let valid = '';
  let expireNextPut = true;
  const server = http.createServer((req, res) => {
    const port = (server.address() as { port: number }).port;
    const url = new URL(req.url!, 'http://x');
    if (url.pathname === '/token') {
      valid = `tok-${++issued}`;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token: valid }));
      return;
    }
    const challenge = () => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="test"`, 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"token expired"}]}');
    };
    if (req.headers.authorization !== `Bearer ${valid}`) {
      req.resume();
      req.on('end', challenge);
      return;
    }
    if (req.method === 'PUT' && expireNextPut && Number(req.headers['content-length'] ?? 0) > 0) {
      expireNextPut = false;
      valid = 'expired';
      req.resume();
      req.on('end', challenge);
      return;
    }
    forward(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const port = (server.address() as { port: number }).port;
  const client = new RegistryClient(`127.0.0.1:${port}`, { tlsVerify: true, insecureHttp: false });
  try {
    const bytes = Buffer.from(`blob ${Date.now()} ${'x'.repeat(100_000)}`);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}` as Digest;
    let reopened = 0;
    await uploadBlob(client, 'kiln/expiry', Readable.from([bytes]), digest, bytes.length, 'test blob', () => {
      reopened++;
      return Readable.from([bytes]);
    });
    assert.equal(reopened, 1);
    assert.equal((await fetch(`http://${reg.host}/v2/kiln/expiry/blobs/${digest}`, { method: 'HEAD' })).status, 200);

    expireNextPut = true;
    const more = Buffer.concat([bytes, Buffer.from('more')]);
    const d2 = `sha256:${createHash('sha256').update(more).digest('hex')}` as Digest;
    await assert.rejects(uploadBlob(client, 'kiln/expiry', Readable.from([more]), d2, more.length, 'test blob 2'), /test blob 2: the registry token expired during the upload; retry/);
  } finally {
    await client.close();
    server.close();
  }
});
