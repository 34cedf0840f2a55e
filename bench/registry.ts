/**
 * Registry benchmarks: `kiln push` / `kiln pull` against `skopeo copy`, group "registry"
 * (`node dist/bench/run.js registry`, or BENCH_ONLY=registry).
 *
 * Workload: one image of LAYERS layers, each one LAYER_MIB MiB pseudo-random file (built with
 * `kiln build` FROM scratch into a private source store, so its layer blobs are uncompressed
 * tars), and the same image as an OCI layout (`kiln push IMAGE oci:DIR`: the same blob bytes).
 * A local Debian `docker-registry` (distribution) serves plain http on 127.0.0.1:<free port>
 * with its storage in the bench temp dir; the fixture's teardown stops it.
 *
 *   push  kiln pushes from its store, skopeo copies the OCI layout (no recompression on either
 *         side); every timed run starts on an empty registry (hyperfine --prepare removes the
 *         registry's storage), so every blob is really uploaded.
 *   pull  the image (pushed once by skopeo) is pulled by kiln into a fresh store, and by
 *         skopeo into a fresh OCI layout (hyperfine --prepare removes both). Note that kiln
 *         also extracts the layers into its store, skopeo only writes the blobs.
 *
 * Both commands run in one hyperfine run with the same --prepare; each side is first run once
 * untimed and checked (the registry or store must hold the image afterwards), so a failing
 * side is reported in the row while the other side is still timed.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { chmodSync, closeSync, mkdirSync, openSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { BenchContext, BenchEntry, Fixture, Measured } from './run';
import { run } from './lib';

const GROUP = 'registry';
const FIXTURE = 'registry';
export const LAYERS = 5;
export const LAYER_MIB = 20;
const IMAGE = 'localhost/bench/registry:latest';
/** Repository in the registry that every push and pull uses. */
const REPO_NAME = 'bench/x';

/** Timed runs per side; KILN_BENCH_REGISTRY_RUNS overrides. */
function registryRuns(): number {
  const n = Number(process.env.KILN_BENCH_REGISTRY_RUNS ?? 3);
  if (!Number.isInteger(n) || n < 2) throw new Error(`KILN_BENCH_REGISTRY_RUNS must be an integer >= 2, got ${process.env.KILN_BENCH_REGISTRY_RUNS}`);
  return n;
}

/** Paths of the fixture, all below the bench run's temp dir (no spaces). */
interface RegistryLayout {
  /** distribution's storage root; removing STORAGE/docker empties the registry. */
  storage: string;
  config: string;
  log: string;
  context: string;
  /** The kiln store holding IMAGE, the push source. */
  srcRoot: string;
  srcRunroot: string;
  /** OCI layout holding IMAGE, skopeo's push source. */
  ociSource: string;
  /** Pull destinations, recreated before every timed pull. */
  pullRoot: string;
  pullRunroot: string;
  pullOci: string;
  /** `bash RESET push|pull` (hyperfine --prepare). */
  resetScript: string;
}

function layoutOf(tmp: string): RegistryLayout {
  const p = (n: string): string => path.join(tmp, n);
  return {
    storage: p('reg-data'),
    config: p('reg-config.yml'),
    log: p('reg.log'),
    context: p('reg-ctx'),
    srcRoot: p('reg-src'),
    srcRunroot: p('rg-src'),
    ociSource: p('reg-oci'),
    pullRoot: p('reg-pull-kiln'),
    pullRunroot: p('rg-pull'),
    pullOci: p('reg-pull-oci'),
    resetScript: p('reg-reset.sh'),
  };
}

interface Running { host: string; child: ChildProcess }
let registry: Running | undefined;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Start docker-registry on a free port; resolves once GET /v2/ answers 200. */
async function startRegistry(l: RegistryLayout): Promise<Running> {
  const host = `127.0.0.1:${await freePort()}`;
  writeFileSync(l.config, ['version: 0.1', 'log:', '  level: error', 'storage:', '  filesystem:', `    rootdirectory: ${l.storage}`,
    '  delete:', '    enabled: true', 'http:', `  addr: ${host}`, ''].join('\n'));
  const out = openSync(l.log, 'w');
  const child = spawn('docker-registry', ['serve', l.config], { stdio: ['ignore', out, out] });
  closeSync(out);
  const spawnError = new Promise<Error>((resolve) => child.once('error', resolve));
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const failed = await Promise.race([spawnError, new Promise<undefined>((r) => setTimeout(() => r(undefined), 100))]);
    if (failed) throw new Error(`docker-registry: ${failed.message} (Debian package docker-registry)`);
    if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${readFileSync(l.log, 'utf8').trim()}`);
    if (await fetch(`http://${host}/v2/`).then((r) => r.status === 200, () => false)) return { host, child };
  }
  child.kill('SIGKILL');
  throw new Error(`docker-registry did not answer on ${host}: ${readFileSync(l.log, 'utf8').trim()}`);
}

/** Stop the registry started by the fixture, if any (synchronous: also used on signals). */
function stopRegistry(): void {
  if (registry && registry.child.exitCode === null && registry.child.signalCode === null) registry.child.kill('SIGTERM');
  registry = undefined;
}

/** Deterministic incompressible bytes, a different stream per seed: AES-128-CTR of zeros. */
function pseudoRandom(bytes: number, seed: number): Buffer {
  const iv = Buffer.alloc(16, 0);
  iv.writeUInt32BE(seed, 0);
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, 11), iv);
  return Buffer.concat([c.update(Buffer.alloc(bytes)), c.final()]);
}

const FIXED_TIME = new Date('2020-01-01T00:00:00Z');

function resetScriptText(l: RegistryLayout): string {
  return `#!/bin/bash
# Generated by bench/registry.ts: "push" empties the registry, "pull" removes the pull destinations.
set -euo pipefail
case "$1" in
  push) rm -rf ${l.storage}/docker ;;
  pull)
    for d in ${l.pullRoot} ${l.pullRunroot}; do
      awk -v t="$d" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r m; do umount -l "$m"; done
      rm -rf "$d"
    done
    rm -rf ${l.pullOci} ;;
  *) echo "usage: $0 push|pull" >&2; exit 2 ;;
esac
`;
}

export const REGISTRY_FIXTURES: Record<string, Fixture> = {
  [FIXTURE]: {
    describe: `one image of ${LAYERS} layers, each one ${LAYER_MIB} MiB pseudo-random file (uncompressed layer tars, ${LAYERS * LAYER_MIB} MiB in all), built FROM scratch with \`kiln build\` into a private kiln store and copied from it to an OCI layout (\`kiln push IMAGE oci:DIR\`, same blobs) for skopeo; a local Debian \`docker-registry\` on 127.0.0.1, plain http, storage in the run's temp dir. Push: kiln from its store, skopeo from the OCI layout, registry storage removed before every timed run (hyperfine --prepare). Pull: kiln into a fresh store (layers extracted), skopeo into a fresh OCI layout (blobs only), both removed before every timed run. hyperfine --runs ${process.env.KILN_BENCH_REGISTRY_RUNS ?? 3}, both tools in one hyperfine run`,
    async setup(ctx) {
      const l = layoutOf(ctx.tmp);
      mkdirSync(l.context, { recursive: true });
      const lines = ['FROM scratch'];
      for (let i = 1; i <= LAYERS; i++) {
        const f = path.join(l.context, `layer${i}.bin`);
        writeFileSync(f, pseudoRandom(LAYER_MIB << 20, i));
        utimesSync(f, FIXED_TIME, FIXED_TIME);
        lines.push(`COPY layer${i}.bin /layer${i}.bin`);
      }
      writeFileSync(path.join(l.context, 'Containerfile'), lines.join('\n') + '\n');
      ctx.log(`fixture registry: kiln build of ${LAYERS} x ${LAYER_MIB} MiB layers, OCI layout copy`);
      const src = ['--root', l.srcRoot, '--runroot', l.srcRunroot];
      run(ctx.kiln, [...src, 'build', '-q', '-t', IMAGE, '-f', path.join(l.context, 'Containerfile'), l.context], { env: ctx.env });
      run(ctx.kiln, [...src, 'push', '-q', IMAGE, `oci:${l.ociSource}`], { env: ctx.env });
      writeFileSync(l.resetScript, resetScriptText(l));
      chmodSync(l.resetScript, 0o755);
      mkdirSync(l.storage, { recursive: true });
      registry = await startRegistry(l);
      ctx.log(`fixture registry: docker-registry on ${registry.host}`);
    },
    teardown: stopRegistry,
  },
};

function host(): string {
  if (!registry) throw new Error('the registry fixture is not running');
  return registry.host;
}

type Op = 'push' | 'pull';

/** The timed command of one side, as one whitespace-separated string (hyperfine --shell=none). */
export function registryCommand(ctx: BenchContext, tool: 'kiln' | 'skopeo', op: Op): string {
  const l = layoutOf(ctx.tmp);
  const ref = `${host()}/${REPO_NAME}`;
  if (op === 'push') {
    return tool === 'kiln'
      ? `${ctx.kiln} --root ${l.srcRoot} --runroot ${l.srcRunroot} push --tls-verify=false ${IMAGE} docker://${ref}:kiln`
      : `skopeo copy --dest-tls-verify=false oci:${l.ociSource} docker://${ref}:skopeo`;
  }
  return tool === 'kiln'
    ? `${ctx.kiln} --root ${l.pullRoot} --runroot ${l.pullRunroot} pull --tls-verify=false ${ref}:latest`
    : `skopeo copy --src-tls-verify=false docker://${ref}:latest oci:${l.pullOci}`;
}

function reset(ctx: BenchContext, op: Op): void {
  run('bash', [layoutOf(ctx.tmp).resetScript, op], { env: ctx.env });
}

/** Run a whitespace-separated command once; undefined when it exits 0, else its last stderr line. */
function runOnce(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  const [prog, ...args] = cmd.split(/\s+/).filter(Boolean);
  const r = spawnSync(prog, args, { env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  if (r.error) return r.error.message;
  if (r.status === 0) return undefined;
  const lines = String(r.stderr ?? '').split('\n').map((s) => s.trim()).filter(Boolean);
  return lines[lines.length - 1] ?? (r.signal ? `killed by ${r.signal}` : `exit ${r.status}, no stderr`);
}

/** The registry's manifest of REPO_NAME:TAG must list LAYERS layers. */
async function checkManifest(tag: string): Promise<string | undefined> {
  const accept = 'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json';
  const r = await fetch(`http://${host()}/v2/${REPO_NAME}/manifests/${tag}`, { headers: { Accept: accept } });
  if (r.status !== 200) return `the registry has no ${REPO_NAME}:${tag} afterwards (HTTP ${r.status})`;
  const m = (await r.json()) as { layers?: unknown[] };
  return m.layers?.length === LAYERS ? undefined : `${REPO_NAME}:${tag} has ${m.layers?.length ?? 0} layers, expected ${LAYERS}`;
}

/** One untimed run of one side on a reset state, and a check of its result. */
async function tryOnce(ctx: BenchContext, tool: 'kiln' | 'skopeo', op: Op): Promise<string | undefined> {
  reset(ctx, op);
  const failed = runOnce(registryCommand(ctx, tool, op), ctx.env);
  if (failed) return `${tool} ${op} failed: ${failed}`;
  if (op === 'push') return checkManifest(tool);
  if (tool === 'kiln') {
    const l = layoutOf(ctx.tmp);
    const exists = spawnSync(ctx.kiln, ['--root', l.pullRoot, '--runroot', l.pullRunroot, 'image', 'exists', `${host()}/${REPO_NAME}:latest`], { env: ctx.env, stdio: 'ignore' });
    if (exists.status !== 0) return `kiln pull exited 0 but the store has no ${host()}/${REPO_NAME}:latest`;
  }
  return undefined;
}

function measure(op: Op): (ctx: BenchContext) => Promise<Measured> {
  return async (ctx) => {
    if (op === 'pull') {
      // The pull source: pushed by the reference tool, so kiln's push is not under test here.
      reset(ctx, 'push');
      const failed = runOnce(registryCommand(ctx, 'skopeo', 'push').replace(/:skopeo$/, ':latest'), ctx.env);
      if (failed) return { error: `preparing the pull source: skopeo push failed: ${failed}` };
      const bad = await checkManifest('latest');
      if (bad) return { error: `preparing the pull source: ${bad}` };
    }
    ctx.log(`registry ${op}: untimed check run of each side`);
    const errors = { kiln: await tryOnce(ctx, 'kiln', op), skopeo: await tryOnce(ctx, 'skopeo', op) };
    const sides = (['kiln', 'skopeo'] as const).filter((t) => !errors[t]);
    const out: Measured = { error: [errors.kiln, errors.skopeo].filter(Boolean).join('; ') || undefined };
    if (sides.length === 0) return out;
    ctx.log(`registry ${op}: hyperfine (${sides.join(', ')})`);
    const json = path.join(ctx.tmp, `registry-${op}.json`);
    const runs = registryRuns();
    try {
      run('hyperfine', ['--shell=none', '--output=null', '--style=basic', '--runs', String(runs), '--warmup', '0',
        '--prepare', `bash ${layoutOf(ctx.tmp).resetScript} ${op}`, '--export-json', json,
        ...sides.map((t) => registryCommand(ctx, t, op))], { env: ctx.env, stdio: ['ignore', 'inherit', 'pipe'] });
    } catch (err) {
      const msg = err instanceof Error ? err.message.split('\n').slice(-1)[0] : String(err);
      return { error: [out.error, `hyperfine: ${msg}`].filter(Boolean).join('; ') };
    }
    const results = (JSON.parse(readFileSync(json, 'utf8')) as { results: Array<{ median: number }> }).results;
    sides.forEach((t, i) => {
      if (t === 'kiln') out.kilnMs = results[i].median * 1000;
      else out.refMs = results[i].median * 1000;
    });
    return out;
  };
}

const SIZE = `${LAYERS} x ${LAYER_MIB} MiB layers`;

export const REGISTRY_BENCHES: BenchEntry[] = [
  {
    id: 'registry-push',
    group: GROUP,
    name: `\`kiln push\` to a local registry, cold: ${SIZE}`,
    kiln: (c) => registryCommand(c, 'kiln', 'push'),
    refName: '`skopeo copy oci:DIR docker://…`',
    ref: (c) => registryCommand(c, 'skopeo', 'push'),
    goal: 1,
    fixtures: [FIXTURE],
    measure: measure('push'),
  },
  {
    id: 'registry-pull',
    group: GROUP,
    name: `\`kiln pull\` from a local registry into a fresh store: ${SIZE}`,
    kiln: (c) => registryCommand(c, 'kiln', 'pull'),
    refName: '`skopeo copy docker://… oci:DIR`',
    ref: (c) => registryCommand(c, 'skopeo', 'pull'),
    goal: 1,
    fixtures: [FIXTURE],
    measure: measure('pull'),
  },
];
