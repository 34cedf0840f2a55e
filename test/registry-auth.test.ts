/**
 * Registry credentials and configuration: auth.json location, lookup order and prefix
 * matching, atomic 0600 writes; registries.conf (TOML) prefixes, locations, insecure, blocked,
 * mirrors, wildcards, drop-ins, aliases and short-name resolution; and `kiln login`/`logout`
 * end to end against a real docker-registry over TLS with htpasswd auth.
 */
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { authFilePath, resolveAuth, saveAuth, removeAuth, removeAllAuth } from '../src/registry/auth';
import { registryFor, registryForPull, resolveShortName, unqualifiedSearchRegistries, loadRegistriesConf } from '../src/registry/registries-conf';
import { parseToml } from '../src/registry/toml';
import { parseChallenges } from '../src/registry/client';
import { sandbox, type Sandbox } from './helpers/env';
import { startTlsRegistry, type TlsRegistry } from './helpers/registry-tls';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-regauth-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** Runs fn with some environment variables set (undefined = unset), restoring them after. */
function withEnv<T>(vars: Record<string, string | undefined>, fn: () => T): T {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (v: Record<string, string | undefined>) => {
    for (const [k, x] of Object.entries(v)) if (x === undefined) delete process.env[k]; else process.env[k] = x;
  };
  apply(vars);
  try {
    return fn();
  } finally {
    apply(saved);
  }
}

let n = 0;
function file(name: string, content: string): string {
  const p = path.join(tmp, `${n++}`, name);
  fs.mkdirSync(path.dirname(p), { recursive: true });
  fs.writeFileSync(p, content);
  return p;
}
const b64 = (s: string) => Buffer.from(s).toString('base64');
const authJson = (auths: Record<string, unknown>, extra: Record<string, unknown> = {}) => JSON.stringify({ auths, ...extra });

describe('auth.json', () => {
  test('path order: --authfile, then $REGISTRY_AUTH_FILE, then the runtime dir', () => {
    withEnv({ REGISTRY_AUTH_FILE: '/env/auth.json', XDG_RUNTIME_DIR: '/xdg' }, () => {
      assert.equal(authFilePath({ authfile: '/flag/auth.json' }), '/flag/auth.json');
      assert.equal(authFilePath({}), '/env/auth.json');
    });
    withEnv({ REGISTRY_AUTH_FILE: undefined, XDG_RUNTIME_DIR: '/xdg' }, () => {
      const want = process.getuid!() === 0 ? '/run/containers/0/auth.json' : '/xdg/containers/auth.json';
      assert.equal(authFilePath({}), want);
    });
  });

  test('--creds wins; a user without password is an error saying kiln does not prompt', () => {
    const f = file('auth.json', authJson({ 'r.example': { auth: b64('stored:pw') } }));
    assert.deepEqual(resolveAuth('r.example', { authfile: f, creds: 'me:se:cret' }), { username: 'me', password: 'se:cret' });
    assert.throws(() => resolveAuth('r.example', { authfile: f, creds: 'me' }), /does not prompt/);
    assert.throws(() => resolveAuth('r.example', { authfile: f, creds: ':hunter2' }), (e: Error) => /user name is empty/.test(e.message) && !e.message.includes('hunter2'));
  });

  test('entries match by host or repository prefix, the longest winning; legacy keys are normalized', () => {
    const f = file('auth.json', authJson({
      'reg.example.com': { auth: b64('host:1') },
      'reg.example.com/team': { auth: b64('team:2') },
      'reg.example.com/team/app': { auth: b64('app:3') },
      'https://index.docker.io/v1/': { auth: b64('hub:4') },
      'tok.example.com': { auth: '', identitytoken: 'REFRESH' },
    }));
    const o = { authfile: f };
    assert.deepEqual(resolveAuth('reg.example.com/team/app:v1', o), { username: 'app', password: '3' });
    assert.deepEqual(resolveAuth('reg.example.com/team/app@sha256:' + 'a'.repeat(64), o), { username: 'app', password: '3' });
    assert.deepEqual(resolveAuth('reg.example.com/team/other', o), { username: 'team', password: '2' });
    assert.deepEqual(resolveAuth('reg.example.com/teamx/app', o), { username: 'host', password: '1' });
    assert.deepEqual(resolveAuth('reg.example.com', o), { username: 'host', password: '1' });
    assert.deepEqual(resolveAuth('docker.io/library/alpine', o), { username: 'hub', password: '4' });
    assert.deepEqual(resolveAuth('tok.example.com/x', o), { identitytoken: 'REFRESH' });
    assert.equal(resolveAuth('reg.example.com:5000/team/app', o), undefined, 'another port is another registry');
    assert.equal(resolveAuth('other.example.com', o), undefined);
  });

  test('without an explicit file, lookup falls back to ~/.config/containers/auth.json then ~/.docker/config.json', () => {
    const home = path.join(tmp, 'home');
    fs.mkdirSync(path.join(home, '.docker'), { recursive: true });
    fs.writeFileSync(path.join(home, '.docker', 'config.json'), authJson({ 'fallback.kiln.test': { auth: b64('docker:1') }, 'only-docker.kiln.test': { auth: b64('d:2') } }));
    withEnv({ HOME: home, XDG_CONFIG_HOME: undefined, REGISTRY_AUTH_FILE: undefined, XDG_RUNTIME_DIR: path.join(tmp, 'no-runtime') }, () => {
      assert.deepEqual(resolveAuth('fallback.kiln.test', {}), { username: 'docker', password: '1' });
      fs.mkdirSync(path.join(home, '.config', 'containers'), { recursive: true });
      fs.writeFileSync(path.join(home, '.config', 'containers', 'auth.json'), authJson({ 'fallback.kiln.test': { auth: b64('containers:2') } }));
      assert.deepEqual(resolveAuth('fallback.kiln.test', {}), { username: 'containers', password: '2' });
      assert.deepEqual(resolveAuth('only-docker.kiln.test', {}), { username: 'd', password: '2' });
      const explicit = file('auth.json', authJson({}));
      assert.equal(resolveAuth('fallback.kiln.test', { authfile: explicit }), undefined, 'an explicit file is the only one read');
    });
  });

  test('credential helpers are reported as unsupported, naming the helper', () => {
    const f = file('auth.json', authJson({ 'a.example': { auth: b64('a:b') } }, { credHelpers: { 'ecr.example': 'ecr-login' }, credsStore: 'desktop' }));
    assert.throws(() => resolveAuth('ecr.example/x', { authfile: f }), /docker-credential-ecr-login.*not supported/);
    assert.throws(() => resolveAuth('b.example', { authfile: f }), /docker-credential-desktop.*not supported/);
    assert.deepEqual(resolveAuth('a.example', { authfile: f }), { username: 'a', password: 'b' }, 'an auths entry is still used');
  });

  test('errors never show the password', () => {
    const bad = file('auth.json', '{"auths": {"x.example": {"auth": "s3cr3tPW"}}, broken');
    assert.throws(() => resolveAuth('x.example', { authfile: bad }), (e: Error) => /not valid JSON/.test(e.message) && !e.message.includes('s3cr3tPW'));
    const noColon = file('auth.json', authJson({ 'x.example': { auth: b64('s3cr3tPW') } }));
    assert.throws(() => resolveAuth('x.example', { authfile: noColon }), (e: Error) => /user:password/.test(e.message) && !e.message.includes('s3cr3tPW'));
  });

  test('saveAuth writes atomically with mode 0600, parents 0700, keeping other keys', () => {
    const dir = path.join(tmp, 'save', 'nested');
    const f = path.join(dir, 'auth.json');
    saveAuth('new.example:5000', { username: 'u', password: 'p' }, { authfile: f });
    assert.equal(fs.statSync(f).mode & 0o777, 0o600);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.deepEqual(JSON.parse(fs.readFileSync(f, 'utf8')), { auths: { 'new.example:5000': { auth: b64('u:p') } } });

    fs.writeFileSync(f, authJson({ 'keep.example': { auth: b64('k:k'), email: 'x@y' } }, { credHelpers: { 'h.example': 'h' }, custom: [1, 2] }));
    fs.chmodSync(f, 0o644);
    const inoBefore = fs.statSync(f).ino;
    saveAuth('https://new.example:5000/', { username: 'u2', password: 'p2' }, { authfile: f });
    const st = fs.statSync(f);
    assert.notEqual(st.ino, inoBefore, 'replaced by rename, not rewritten in place');
    assert.equal(st.mode & 0o777, 0o600);
    const data = JSON.parse(fs.readFileSync(f, 'utf8'));
    assert.deepEqual(data.auths['keep.example'], { auth: b64('k:k'), email: 'x@y' });
    assert.deepEqual(data.auths['new.example:5000'], { auth: b64('u2:p2') });
    assert.deepEqual(data.credHelpers, { 'h.example': 'h' });
    assert.deepEqual(data.custom, [1, 2]);
    assert.deepEqual(fs.readdirSync(dir), ['auth.json'], 'no temp file left behind');
    assert.throws(() => saveAuth('new.example/repo:tag', { username: 'a', password: 'b' }, { authfile: f }), /tag or digest/);

    assert.equal(removeAuth('new.example:5000', { authfile: f }), true);
    assert.equal(removeAuth('new.example:5000', { authfile: f }), false);
    assert.equal(resolveAuth('new.example:5000', { authfile: f }), undefined);
    assert.ok(resolveAuth('keep.example', { authfile: f }));
    removeAllAuth({ authfile: f });
    const after = JSON.parse(fs.readFileSync(f, 'utf8'));
    assert.deepEqual(after.auths, {});
    assert.deepEqual(after.custom, [1, 2]);
    assert.equal(removeAuth('x.example', { authfile: path.join(tmp, 'missing.json') }), false);
  });
});

describe('TOML and registries.conf', () => {
  test('the TOML subset: tables, arrays of tables, strings, booleans, arrays, comments', () => {
    const t = parseToml([
      '# comment',
      'top = "a\\tb\\u00e9" # trailing',
      "lit = 'C:\\\\x'",
      'list = [',
      '  "one", # c',
      "  'two',",
      ']',
      'n = 1_000',
      '[[registry]]',
      'prefix = "p"',
      '[[registry.mirror]]',
      'location = "m1"',
      '[[registry.mirror]]',
      'location = "m2"',
      '[[registry]]',
      'blocked = true',
      '[aliases]',
      '"x/y" = "q.io/x/y"',
    ].join('\n'), 'f.toml');
    assert.deepEqual(t, {
      top: 'a\tbé', lit: 'C:\\\\x', list: ['one', 'two'], n: 1000,
      registry: [{ prefix: 'p', mirror: [{ location: 'm1' }, { location: 'm2' }] }, { blocked: true }],
      aliases: { 'x/y': 'q.io/x/y' },
    });
    assert.throws(() => parseToml('a = 1\n\nb = "open', 'f.toml'), /f\.toml:3: invalid TOML: unterminated string/);
    assert.throws(() => parseToml('a = 1\na = 2', 'f.toml'), /f\.toml:2: .*defined twice/);
    assert.throws(() => parseToml('a = {b = 1}', 'f.toml'), /inline tables/);
  });

  const conf = file('registries.conf', `
unqualified-search-registries = ["registry.example.com", "docker.io"]

[[registry]]
prefix = "example.com/foo"
location = "internal.example.com/bar"
insecure = true
[[registry.mirror]]
location = "mirror-1.example.com/bar"
[[registry.mirror]]
location = "mirror-2.example.com/bar"
insecure = true
pull-from-mirror = "digest-only"

[[registry]]
location = "example.com"

[[registry]]
prefix = "*.evil.example"
blocked = true

[[registry]]
location = "digests.example"
mirror-by-digest-only = true
[[registry.mirror]]
location = "dmirror.example"

[aliases]
"myapp" = "quay.example/team/myapp"
`);

  test('registryFor: longest prefix, location rewriting, insecure, mirrors', () => {
    const o = { confPath: conf };
    assert.deepEqual(registryFor('example.com/foo/app:1', o), {
      location: 'internal.example.com/bar/app:1', insecure: true, blocked: false,
      mirrors: [{ location: 'mirror-1.example.com/bar/app:1', insecure: false }],
    });
    assert.deepEqual(registryFor('example.com/foo/app@sha256:abc', o).mirrors, [
      { location: 'mirror-1.example.com/bar/app@sha256:abc', insecure: false },
      { location: 'mirror-2.example.com/bar/app@sha256:abc', insecure: true },
    ]);
    assert.deepEqual(registryFor('example.com/other:1', o), { location: 'example.com/other:1', insecure: false, blocked: false, mirrors: [] });
    assert.equal(registryFor('example.com/foobar/x', o).location, 'example.com/foobar/x', 'a prefix matches whole path components');
    assert.equal(registryFor('example.com:5000/foo/x', o).insecure, false, 'another port is another registry');
    assert.deepEqual(registryFor('unknown.example/x', o), { location: 'unknown.example/x', insecure: false, blocked: false, mirrors: [] });
    assert.deepEqual(registryFor('digests.example/x:tag', o).mirrors, [], 'mirror-by-digest-only');
    assert.deepEqual(registryFor('digests.example/x@sha256:1', o).mirrors, [{ location: 'dmirror.example/x@sha256:1', insecure: false }]);
  });

  test('wildcard prefixes and blocked registries', () => {
    const o = { confPath: conf };
    assert.equal(registryFor('a.evil.example/x', o).blocked, true);
    assert.equal(registryFor('a.b.evil.example:443/x', o).blocked, true);
    assert.equal(registryFor('evil.example/x', o).blocked, false, '*.host does not match host itself');
    assert.throws(() => registryForPull('a.evil.example/x', o), /registry a\.evil\.example is blocked/);
    assert.doesNotThrow(() => registryForPull('example.com/x', o));
  });

  test('$CONTAINERS_REGISTRIES_CONF and drop-ins in order', () => {
    const main = file('registries.conf', 'unqualified-search-registries = ["one.example"]\n[[registry]]\nlocation = "r.example"\ninsecure = true\n');
    fs.mkdirSync(`${main}.d`);
    fs.writeFileSync(`${main}.d/20-b.conf`, '[[registry]]\nlocation = "r.example"\nblocked = true\n');
    fs.writeFileSync(`${main}.d/10-a.conf`, 'unqualified-search-registries = ["two.example"]\nshort-name-mode = "permissive"\n');
    fs.writeFileSync(`${main}.d/ignored.txt`, 'not toml [');
    withEnv({ CONTAINERS_REGISTRIES_CONF: main }, () => {
      assert.deepEqual(unqualifiedSearchRegistries(), ['two.example']);
      const r = registryFor('r.example/x');
      assert.equal(r.blocked, true, 'the later drop-in replaces the entry with the same prefix');
      assert.equal(r.insecure, false);
      assert.equal(loadRegistriesConf().shortNameMode, 'permissive');
    });
    withEnv({ CONTAINERS_REGISTRIES_CONF: path.join(tmp, 'nope.conf') }, () => {
      assert.throws(() => unqualifiedSearchRegistries(), /nope\.conf does not exist/);
    });
  });

  test('invalid configurations are errors naming the file', () => {
    const bad = file('registries.conf', '[[registry]]\nprefix = "*.x.example"\nlocation = "y.example"\n');
    assert.throws(() => registryFor('a.x.example/z', { confPath: bad }), (e: Error) => e.message.includes(bad) && /wildcard prefix/.test(e.message));
    const v1 = file('registries.conf', '[registries.search]\nregistries = ["a.example"]\n');
    assert.throws(() => unqualifiedSearchRegistries({ confPath: v1 }), /version 1 format/);
    const scheme = file('registries.conf', '[[registry]]\nlocation = "https://a.example"\n');
    assert.throws(() => registryFor('a.example/x', { confPath: scheme }), /must not contain a scheme/);
  });

  test('short names: aliases, a single search registry, ambiguity, localhost', () => {
    const o = { confPath: conf };
    assert.deepEqual(resolveShortName('myapp:2', o), ['quay.example/team/myapp:2']);
    assert.deepEqual(resolveShortName('localhost/app', o), ['localhost/app'], 'localhost/ is never searched');
    assert.deepEqual(resolveShortName('example.com/app:1', o), ['example.com/app:1']);
    assert.throws(() => resolveShortName('alpine', o), /short-name "alpine" is ambiguous: it could be registry\.example\.com\/alpine, docker\.io\/library\/alpine; short-name resolution is enforced but cannot prompt without a TTY/);

    const single = file('registries.conf', 'unqualified-search-registries = ["docker.io"]\n');
    assert.deepEqual(resolveShortName('alpine:3', { confPath: single }), ['docker.io/library/alpine:3']);
    assert.deepEqual(resolveShortName('org/app@sha256:ab', { confPath: single }), ['docker.io/org/app@sha256:ab']);

    const permissive = file('registries.conf', 'short-name-mode = "permissive"\nunqualified-search-registries = ["a.example", "b.example"]\n');
    assert.deepEqual(resolveShortName('app', { confPath: permissive }), ['a.example/app', 'b.example/app']);

    const none = file('registries.conf', '# nothing\n');
    assert.throws(() => resolveShortName('app', { confPath: none }), new RegExp(`short-name "app" did not resolve to an alias and no unqualified-search registries are defined in "${none}"`));
  });
});

test('WWW-Authenticate challenges are parsed', () => {
  assert.deepEqual(parseChallenges(['Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"']), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'registry.example', scope: 'repository:a/b:pull,push' } },
  ]);
  assert.deepEqual(parseChallenges(['Basic realm="kiln test"']), [{ scheme: 'basic', params: { realm: 'kiln test' } }]);
  // two challenges in one header: each keeps its own parameters
  assert.deepEqual(parseChallenges(['Bearer realm="https://auth.example/token",service="r", Basic realm="kiln test"']), [
    { scheme: 'bearer', params: { realm: 'https://auth.example/token', service: 'r' } },
    { scheme: 'basic', params: { realm: 'kiln test' } },
  ]);
});

describe('kiln login / logout against a TLS registry with htpasswd', () => {
  let reg: TlsRegistry;
  let sb: Sandbox;
  let authfile: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    sb = sandbox('kiln-login-');
    reg = await startTlsRegistry(path.join(sb.dir, 'registry'), { u: 'p', other: 'secret2' });
    authfile = path.join(sb.dir, 'auth', 'auth.json');
    const regConf = path.join(sb.dir, 'registries.conf');
    fs.writeFileSync(regConf, '# empty\n');
    env = { CONTAINERS_REGISTRIES_CONF: regConf, REGISTRY_AUTH_FILE: path.join(sb.dir, 'unused-auth.json') };
  });
  after(async () => {
    await reg?.stop();
    sb?.cleanup();
  });

  test('a wrong password fails with exit 125 and podman\'s message, and stores nothing', () => {
    const r = sb.kiln(['login', '--authfile', authfile, '--cert-dir', reg.certDir, '-u', 'u', '-p', 'wrongpass', reg.host], { env });
    assert.equal(r.status, 125, r.stderr);
    assert.equal(r.stderr, `Error: logging into "${reg.host}": invalid username/password\n`);
    assert.ok(!r.stderr.includes('wrongpass'));
    assert.equal(fs.existsSync(authfile), false);
  });

  test('without the test CA the certificate is rejected', () => {
    const r = sb.kiln(['login', '--authfile', authfile, '-u', 'u', '-p', 'p', reg.host], { env });
    assert.equal(r.status, 125, r.stderr);
    assert.match(r.stderr, /^Error: authenticating creds for "127\.0\.0\.1:\d+": pinging https:\/\/127\.0\.0\.1:\d+\/v2\/: .*certificate/);
    assert.match(r.stderr, /Hint: .*--cert-dir/);
    assert.equal(fs.existsSync(authfile), false);
  });

  test('login verifies and stores the credentials (0600); --get-login; logout removes them', () => {
    const r = sb.kiln(['login', '--authfile', authfile, '--cert-dir', reg.certDir, '-u', 'u', '-p', 'p', reg.host], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'Login Succeeded!\n');
    assert.equal(fs.statSync(authfile).mode & 0o777, 0o600);
    assert.deepEqual(JSON.parse(fs.readFileSync(authfile, 'utf8')), { auths: { [reg.host]: { auth: b64('u:p') } } });
    assert.deepEqual(resolveAuth(`${reg.host}/some/repo:tag`, { authfile }), { username: 'u', password: 'p' });
    assert.equal(sb.ok(['login', '--authfile', authfile, '--get-login', reg.host]), 'u\n');

    const again = sb.kiln(['login', '--authfile', authfile, '--cert-dir', reg.certDir, reg.host], { env });
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stdout, /Existing credentials are valid\. Already logged in to 127\.0\.0\.1:\d+\n$/);

    const viaStdin = sb.kiln(['login', '--authfile', authfile, '--cert-dir', reg.certDir, '-u', 'other', '--password-stdin', reg.host], { env, input: 'secret2\n' });
    assert.equal(viaStdin.status, 0, viaStdin.stderr);
    assert.deepEqual(resolveAuth(reg.host, { authfile }), { username: 'other', password: 'secret2' });

    const out = sb.kiln(['logout', '--authfile', authfile, reg.host], { env });
    assert.equal(out.status, 0, out.stderr);
    assert.equal(out.stdout, `Removed login credentials for ${reg.host}\n`);
    assert.equal(resolveAuth(reg.host, { authfile }), undefined);
    const twice = sb.kiln(['logout', '--authfile', authfile, reg.host], { env });
    assert.equal(twice.status, 125);
    assert.equal(twice.stderr, `Error: not logged into ${reg.host}\n`);
    const getLogin = sb.kiln(['login', '--authfile', authfile, '--get-login', reg.host], { env });
    assert.equal(getLogin.status, 125);
  });

  test('logout --all empties auths; --tls-verify=false skips the CA check; a missing password is an error, not a prompt', () => {
    saveAuth('a.example', { username: 'a', password: 'b' }, { authfile });
    const r = sb.kiln(['logout', '--authfile', authfile, '--all'], { env });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'Removed login credentials for all registries\n');
    assert.deepEqual(JSON.parse(fs.readFileSync(authfile, 'utf8')).auths, {});
    const noVerify = sb.kiln(['login', '--authfile', authfile, '--tls-verify=false', '-u', 'u', '-p', 'p', reg.host], { env });
    assert.equal(noVerify.status, 0, noVerify.stderr);
    assert.equal(noVerify.stdout, 'Login Succeeded!\n');
    const noPass = sb.kiln(['login', '--authfile', authfile, '--cert-dir', reg.certDir, '-u', 'u', reg.host], { env });
    assert.equal(noPass.status, 125);
    assert.match(noPass.stderr, /no password given for u, and kiln does not prompt/);
  });
});
