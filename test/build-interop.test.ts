/**
 * Images built by `kiln build` against the reference tools: podman loads and runs a kiln-built
 * multi-stage image (with its ENV, WORKDIR, USER and CMD), skopeo inspects its oci-archive and
 * umoci unpacks its OCI layout. Then every example in Containerfile.examples/ is built with the
 * command its README gives and run by podman (one podman store for all), printing what the
 * README and the Containerfile's comments say it prints.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { REPO, podmanIn, requireTool, run, type Sandbox } from './helpers/env';
import { baseSandbox, buildOk, kilnAt, teardown, writeTree } from './helpers/build-e2e';

let sb: Sandbox;
let pm: ReturnType<typeof podmanIn>;
before(async () => {
  sb = await baseSandbox('kiln-build-interop-');
  pm = podmanIn(sb.dir);
});
after(() => {
  pm?.cleanup();
  teardown(sb);
});

const APP = 'localhost/kiln-interop-app:1';
const SHOW = '#!/bin/sh\necho "msg=$(cat msg.txt) greeting=$GREETING user=$(id -un):$(id -u) pwd=$(pwd)"\n';
const EXPECTED = 'msg=built in the builder stage greeting=hello from kiln user=kiln:1234 pwd=/app';

let appID: string;
let appLayers: string[];
function buildApp(): void {
  if (appID) return;
  const ctx = writeTree(path.join(sb.dir, 'ctx-app'), {
    'show.sh': SHOW,
    Containerfile: [
      'FROM localhost/busybox AS builder',
      'COPY show.sh /out/show.sh',
      "RUN echo 'built in the builder stage' > /out/msg.txt && chmod 755 /out/show.sh",
      'FROM localhost/busybox',
      'ENV GREETING="hello from kiln" APP_HOME=/app',
      "RUN echo 'kiln:x:1234:1234:kiln:/app:/bin/sh' >> /etc/passwd && echo 'kiln:x:1234:' >> /etc/group",
      'COPY --from=builder /out/ /app/',
      'WORKDIR /app',
      'USER kiln',
      'CMD ["/app/show.sh"]',
      '',
    ].join('\n'),
  });
  appID = buildOk(sb, ['-t', APP, ctx]).id;
  appLayers = (JSON.parse(sb.ok(['inspect', APP])) as { RootFS: { Layers: string[] } }[])[0]!.RootFS.Layers;
  assert.equal(appLayers.length, 3, 'busybox, the RUN and the COPY --from');
}

test('podman loads a kiln-built image from a docker-archive and runs it with its ENV, WORKDIR, USER and CMD', () => {
  buildApp();
  const archive = path.join(sb.dir, 'app-docker.tar');
  sb.ok(['save', '--format', 'docker-archive', '-o', archive, APP]);
  assert.match(pm.run(['load', '-i', archive]), /Loaded image: localhost\/kiln-interop-app:1/);
  const inspect = (JSON.parse(pm.run(['image', 'inspect', APP])) as { Id: string; Config: { Env: string[]; WorkingDir: string; User: string; Cmd: string[] }; RootFS: { Layers: string[] } }[])[0]!;
  assert.equal(inspect.Id.replace(/^sha256:/, ''), appID, 'podman sees the same image ID');
  assert.deepEqual(inspect.RootFS.Layers, appLayers);
  assert.ok(inspect.Config.Env.includes('GREETING=hello from kiln'), inspect.Config.Env.join(' '));
  assert.equal(inspect.Config.WorkingDir, '/app');
  assert.equal(inspect.Config.User, 'kiln');
  assert.deepEqual(inspect.Config.Cmd, ['/app/show.sh']);
  assert.equal(pm.run(['run', '--rm', '--net', 'none', APP]).trim(), EXPECTED);
  assert.equal(pm.run(['run', '--rm', '--net', 'none', APP, 'sh', '-c', 'echo "$APP_HOME $(pwd) $(id -u):$(id -g)"; touch /etc/x 2>/dev/null || echo read-only-for-kiln']).trim(), '/app /app 1234:1234\nread-only-for-kiln');
});

test('skopeo inspects the oci-archive and umoci unpacks the OCI layout of a kiln-built image', () => {
  requireTool('skopeo');
  requireTool('umoci');
  buildApp();
  const archive = path.join(sb.dir, 'app-oci.tar');
  sb.ok(['save', '--format', 'oci-archive', '-o', archive, APP]);
  const info = JSON.parse(run('skopeo', ['inspect', `oci-archive:${archive}`])) as { Env: string[]; Layers: string[]; Os: string; Architecture: string };
  assert.equal(info.Os, 'linux');
  assert.ok(info.Env.includes('GREETING=hello from kiln'));
  assert.equal(info.Layers.length, appLayers.length);
  const cfg = JSON.parse(run('skopeo', ['inspect', '--config', `oci-archive:${archive}`])) as { config: { User: string; WorkingDir: string; Cmd: string[] }; rootfs: { diff_ids: string[] } };
  assert.deepEqual(cfg.rootfs.diff_ids, appLayers);
  assert.equal(cfg.config.User, 'kiln');
  assert.equal(cfg.config.WorkingDir, '/app');
  assert.deepEqual(cfg.config.Cmd, ['/app/show.sh']);
  const raw = JSON.parse(run('skopeo', ['inspect', '--raw', `oci-archive:${archive}`])) as { mediaType?: string; config: { digest: string } };
  assert.equal(raw.config.digest, `sha256:${appID}`, 'the config digest is the image ID');

  const layout = path.join(sb.dir, 'app-oci-dir');
  sb.ok(['save', '--format', 'oci-dir', '-o', layout, APP]);
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8')) as { manifests: { annotations?: Record<string, string> }[] };
  const ref = index.manifests[0]?.annotations?.['org.opencontainers.image.ref.name'];
  assert.ok(ref, 'the layout names the image');
  const bundle = path.join(sb.dir, 'app-bundle');
  run('umoci', ['unpack', '--image', `${layout}:${ref}`, bundle]);
  const rootfs = path.join(bundle, 'rootfs');
  assert.equal(fs.readFileSync(path.join(rootfs, 'app', 'msg.txt'), 'utf8'), 'built in the builder stage\n');
  assert.equal(fs.readFileSync(path.join(rootfs, 'app', 'show.sh'), 'utf8'), SHOW);
  assert.equal(fs.statSync(path.join(rootfs, 'app', 'show.sh')).mode & 0o777, 0o755);
  assert.match(fs.readFileSync(path.join(rootfs, 'etc', 'passwd'), 'utf8'), /^kiln:x:1234:1234:kiln:\/app:\/bin\/sh$/m);
  const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { process: { cwd: string; user: { uid: number; gid: number }; env: string[]; args: string[] } };
  assert.equal(spec.process.cwd, '/app');
  assert.deepEqual([spec.process.user.uid, spec.process.user.gid], [1234, 1234], 'umoci resolved USER kiln from the image\'s /etc/passwd');
  assert.ok(spec.process.env.includes('GREETING=hello from kiln'));
  assert.deepEqual(spec.process.args, ['/app/show.sh']);
});

// ---- Containerfile.examples ------------------------------------------------------------

const EXAMPLES = path.join(REPO, 'Containerfile.examples');

interface Example {
  dir: string;
  /** argv after `kiln`, from the README's build column */
  build: string[];
  /** the -t name */
  image: string;
  /** argv after `kiln run`, from the README's "then" column (default: --rm IMAGE) */
  run: string[];
}

/** The README's table: one row per example, its build command and (when given) its run command. */
function readmeExamples(): Example[] {
  const out: Example[] = [];
  for (const line of fs.readFileSync(path.join(EXAMPLES, 'README.md'), 'utf8').split('\n')) {
    if (!line.startsWith('| `')) continue;
    const spans = [...line.matchAll(/`([^`]*)`/g)].map((m) => m[1]!);
    const dir = spans[0]!.replace(/\/$/, '');
    const build = spans.find((s) => s.startsWith('kiln build '));
    assert.ok(build, `README row for ${dir} has a kiln build command`);
    const argv = build.split(/\s+/).slice(1);
    const t = argv.indexOf('-t');
    assert.ok(t >= 0, `README build command for ${dir} names its image with -t`);
    const image = argv[t + 1]!;
    const runCmd = spans.find((s) => s.startsWith('kiln run '));
    out.push({ dir, build: argv, image, run: runCmd ? runCmd.split(/\s+/).slice(2) : ['--rm', image] });
  }
  return out;
}

/** Example directories: every directory under Containerfile.examples/ holding a Containerfile. */
function exampleDirs(): string[] {
  const found: string[] = [];
  const walk = (rel: string) => {
    for (const e of fs.readdirSync(path.join(EXAMPLES, rel), { withFileTypes: true })) {
      if (!e.isDirectory()) continue;
      const sub = rel ? `${rel}/${e.name}` : e.name;
      if (fs.existsSync(path.join(EXAMPLES, sub, 'Containerfile'))) found.push(sub);
      walk(sub);
    }
  };
  walk('');
  return found.sort();
}

/** parallel-stages' SUMMARY, computed here with the same rules as its RUN steps. */
function parallelSummary(): RegExp {
  const words = new Map<string, number>();
  for (const w of fs.readFileSync(path.join(EXAMPLES, 'parallel-stages', 'words.txt'), 'latin1').split(/[^A-Za-z]+/)) {
    if (w !== '') words.set(w.toLowerCase(), (words.get(w.toLowerCase()) ?? 0) + 1);
  }
  const top = [...words].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))[0]![0];
  const h = createHash('sha256');
  const mib = Buffer.alloc(1 << 20);
  for (let i = 0; i < 256; i++) h.update(mib);
  const zeros = h.digest('hex').slice(0, 16);
  let files = 0;
  const count = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) e.isDirectory() ? count(path.join(d, e.name)) : files++;
  };
  count(path.join(EXAMPLES, 'parallel-stages', 'src'));
  return new RegExp(
    `^numbers: 200000 lines, first 200000\nwords: ${words.size} distinct, most frequent '${top}'\n` +
      `digest: sha256 of 256 MiB of zeros is ${zeros}\\.\\.\\.\narchive: ${files} files, \\d+ bytes of tar$`,
  );
}

function secretStatus(): string {
  const token = fs.readFileSync(path.join(EXAMPLES, 'secret', 'token.txt'), 'utf8').replace(/\n+$/, '');
  return `authenticated with a ${token.length}-character token\ncredentials file present during the step\nsecret not in the image`;
}

/** What each example's run prints (README, the Containerfiles' comments, buildah's checked output). */
const OUTPUT: Record<string, () => string | RegExp> = {
  hello: () => `hello from kiln\nbuilt by kiln on ${os.machine()}`,
  'parallel-stages': parallelSummary,
  'cache-mount': () => {
    const objects = fs.readdirSync(path.join(EXAMPLES, 'cache-mount', 'src')).filter((f) => f.endsWith('.c')).length;
    return new RegExp(`^libdemo 1\\.2\\.3, 20000 records\nprogram: ${objects} objects, \\d+ bytes$`);
  },
  heredocs: () => 'at run time: HOME=/root APP_HOME=/opt/app\n# written by COPY <<EOF\nhome=/opt/app\ngreeting=hi\nhi from a RUN heredoc\nindented: 3 lines',
  secret: secretStatus,
  metadata: () => 'version=1.2.3\nuser=app uid=1000\nworkdir=/srv/app\ndata=/srv/data writable=yes',
  'metadata/onbuild-child': () => 'about.html\nindex.html',
  'scratch-static': () => 'hello from scratch',
  dockerignore: () => './app/lib.sh\n./app/main.sh\n./docs/README.md\n./keep.tmp\nhello from the dockerignore example',
};

test('every example in Containerfile.examples/ builds with its README command and its image runs in podman as documented', async (t) => {
  const examples = readmeExamples();
  assert.deepEqual(examples.map((e) => e.dir).sort(), exampleDirs(), 'the README lists every example directory');
  assert.deepEqual(examples.map((e) => e.dir).sort(), Object.keys(OUTPUT).sort(), 'this test knows every example\'s output');

  for (const ex of examples) {
    await t.test(`build ${ex.dir}`, () => {
      const r = kilnAt(sb, ex.build, REPO);
      assert.equal(r.status, 0, `kiln ${ex.build.join(' ')}:\n${r.stdout}${r.stderr}`);
    });
  }

  await t.test('cache-mount: a --no-cache rebuild finds the download and every object in the cache mounts', () => {
    const ex = examples.find((e) => e.dir === 'cache-mount')!;
    const r = kilnAt(sb, [...ex.build, '--no-cache', '--progress=plain'], REPO);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /^download cache hit: /m);
    for (const f of fs.readdirSync(path.join(EXAMPLES, 'cache-mount', 'src')).filter((n) => n.endsWith('.c'))) assert.match(r.stdout, new RegExp(`^object cache hit: ${f}$`, 'm'));
    assert.doesNotMatch(r.stdout, /download cache miss|^compiling /m);
  });

  await t.test('secret: without --secret the build fails (required=true)', () => {
    const ex = examples.find((e) => e.dir === 'secret')!;
    const argv = ex.build.filter((a, i) => a !== '--secret' && ex.build[i - 1] !== '--secret');
    const r = kilnAt(sb, [...argv, '--no-cache'], REPO);
    assert.notEqual(r.status, 0, r.stdout);
    assert.match(r.stderr, /secret "?token"? is required/);
  });

  const archive = path.join(sb.dir, 'examples.tar');
  sb.ok(['save', '--format', 'docker-archive', '-o', archive, ...examples.map((e) => e.image)]);
  const loaded = pm.run(['load', '-i', archive]);
  for (const ex of examples) {
    await t.test(`run ${ex.dir}`, () => {
      assert.match(loaded, new RegExp(`Loaded image: ${ex.image}(:latest)?$`, 'm'));
      const out = pm.run(['run', '--net', 'none', ...ex.run]).replace(/\n$/, '');
      const want = OUTPUT[ex.dir]!();
      if (typeof want === 'string') assert.equal(out, want);
      else assert.match(out, want);
    });
  }
});
