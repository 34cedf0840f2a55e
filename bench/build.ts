/**
 * Build benchmarks: `kiln build` against `buildah bud --jobs=4`, group "build"
 * (`npm run bench -- build`, or BENCH_ONLY=build).
 *
 * Three workloads (bench/build-fixture.ts makes their contexts), each measured twice:
 *   cold  every timed build starts from a store holding only the base image (hyperfine
 *         --prepare runs the fixture's reset script), so nothing is cached;
 *   warm  the same build again on a store that already holds its cache (one untimed
 *         warm-up build fills it): what an edit-free rebuild costs.
 * Both tools get the same flags (--layers --jobs=4 -t -f) and private stores, one per tool
 * and workload. Builds are slow, so each side gets its own hyperfine run with
 * KILN_BENCH_BUILD_RUNS runs (default 3). A side that fails is reported in the row
 * ("kiln build failed: <first stderr line>") while the other side's time is still shown.
 *
 * The stores live under the bench temp dir, on disk (/var/tmp), like the other benches. That
 * matters for buildah's warm COPY: it copies the whole context again to digest it, about
 * 3.4 s for workload (c) on the reference VM's disk against about 0.7 s on tmpfs.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { BenchContext, BenchEntry, Fixture, Measured } from './run';
import { BIG_MIB, layoutOf, RUN_STEPS, setupBuildFixture, SMALL_FILES, STAGES, storeOf, type Tool, type Workload } from './build-fixture';
import { run, runsFromEnv } from './lib';

const GROUP = 'build';
const FIXTURE = 'builds';

/** Timed runs per side; KILN_BENCH_BUILD_RUNS overrides. */
const buildRuns = (): number => runsFromEnv('KILN_BENCH_BUILD_RUNS');

let stageMiB: number | undefined;

export const BUILD_FIXTURES: Record<string, Fixture> = {
  [FIXTURE]: {
    get describe(): string {
      return `build contexts generated in the run's temp dir: (a) ${STAGES} independent stages, each \`dd if=/dev/zero bs=1M count=${stageMiB ?? 'N'} | sha256sum\` (N calibrated to about 1 s on the machine), joined by COPY --from; (b) ${RUN_STEPS} \`RUN echo n > /fn\` steps; (c) one \`COPY . /data/\` of ${SMALL_FILES} small files (100–2000 bytes) and one ${BIG_MIB} MiB pseudo-random file. Base image: the busybox rootfs of src/base/busybox-rootfs.ts, the same bytes in a kiln and a buildah template store. Each tool and workload has its own store; cold = every timed build starts from a fresh copy of the template (hyperfine --prepare), warm = rebuild on a store holding the cache after one untimed warm-up build. hyperfine --runs ${process.env.KILN_BENCH_BUILD_RUNS ?? 3} per side, each side in its own hyperfine run`;
    },
    async setup(ctx) {
      stageMiB = await setupBuildFixture(ctx.tmp, ctx.kiln, ctx.env, ctx.log);
    },
  },
};

const tag = (wl: Workload): string => `localhost/bench/build-${wl}:latest`;

/** The build command of TOOL for WORKLOAD, as one whitespace-separated string (hyperfine --shell=none). */
export function buildCommand(ctx: BenchContext, tool: Tool, wl: Workload): string {
  const { root, runroot } = storeOf(ctx.tmp, tool, wl);
  const ctxDir = layoutOf(ctx.tmp).context[wl];
  const common = `--layers --jobs=4 -t ${tag(wl)} -f ${path.join(ctxDir, 'Containerfile')} ${ctxDir}`;
  return tool === 'kiln'
    ? `${ctx.kiln} --root ${root} --runroot ${runroot} build ${common}`
    : `buildah --root ${root} --runroot ${runroot} --storage-driver overlay bud ${common}`;
}

function envFor(ctx: BenchContext, tool: Tool): NodeJS.ProcessEnv {
  return tool === 'buildah' ? { ...ctx.env, TMPDIR: layoutOf(ctx.tmp).buildahTmp } : ctx.env;
}

function resetCommand(ctx: BenchContext, tool: Tool, wl: Workload): string {
  return `bash ${layoutOf(ctx.tmp).resetScript} ${tool} ${wl}`;
}

/**
 * Run a whitespace-separated command once; when it fails, its first stderr line that starts
 * with "Error" (progress output may come first), else its first non-empty stderr line.
 */
function firstErrorLine(cmd: string, env: NodeJS.ProcessEnv): string | undefined {
  const [prog, ...args] = cmd.split(/\s+/).filter(Boolean);
  const r = spawnSync(prog, args, { env, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'], maxBuffer: 64 << 20 });
  if (r.error) return r.error.message;
  if (r.status === 0) return undefined;
  const lines = String(r.stderr ?? '').split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const line = lines.find((l) => /^error\b/i.test(l)) ?? lines[0];
  return line ?? (r.signal ? `killed by ${r.signal}` : `exit ${r.status}, no stderr`);
}

/**
 * Median seconds of `cmd` over `runs` runs, or the reason it failed. cold: `prepare` runs
 * before every timed run. warm: the store is reset once, then one untimed warm-up build.
 */
function timeBuild(ctx: BenchContext, tool: Tool, wl: Workload, mode: 'cold' | 'warm', runs: number): { ms?: number; error?: string } {
  const cmd = buildCommand(ctx, tool, wl);
  const env = envFor(ctx, tool);
  const reset = resetCommand(ctx, tool, wl);
  const json = path.join(ctx.tmp, `build-${wl}-${mode}-${tool}.json`);
  try {
    const args = ['--shell=none', '--output=null', '--style=basic', '--runs', String(runs), '--export-json', json];
    if (mode === 'cold') {
      args.push('--warmup', '0', '--prepare', reset);
    } else {
      run('bash', reset.split(' ').slice(1), { env });
      args.push('--warmup', '1');
    }
    run('hyperfine', [...args, cmd], { env, stdio: ['ignore', 'inherit', 'pipe'] });
  } catch (err) {
    // hyperfine only says "non-zero exit code": build once more, on a fresh store, to learn why.
    spawnSync('bash', reset.split(' ').slice(1), { env, stdio: 'ignore' });
    const why = firstErrorLine(cmd, env) ?? (err instanceof Error ? err.message.split('\n').slice(-1)[0] : String(err));
    return { error: `${tool === 'kiln' ? 'kiln build' : 'buildah bud'} failed: ${why}` };
  }
  const exists = tool === 'kiln'
    ? spawnSync(ctx.kiln, ['--root', storeOf(ctx.tmp, tool, wl).root, '--runroot', storeOf(ctx.tmp, tool, wl).runroot, 'image', 'exists', tag(wl)], { env, stdio: 'ignore' })
    : spawnSync('buildah', ['--root', storeOf(ctx.tmp, tool, wl).root, '--runroot', storeOf(ctx.tmp, tool, wl).runroot, '--storage-driver', 'overlay', 'inspect', '--type', 'image', tag(wl)], { env, stdio: 'ignore' });
  if (exists.status !== 0) return { error: `${tool}: the build exited 0 but left no image ${tag(wl)}` };
  const parsed = JSON.parse(readFileSync(json, 'utf8')) as { results: Array<{ median: number }> };
  return { ms: parsed.results[0].median * 1000 };
}

/** Measure both sides of one (workload, mode) row; buildah first, so its number survives a kiln failure. */
function measure(wl: Workload, mode: 'cold' | 'warm'): (ctx: BenchContext) => Promise<Measured> {
  return async (ctx) => {
    const runs = buildRuns();
    ctx.log(`build ${wl} ${mode}: buildah`);
    const ref = timeBuild(ctx, 'buildah', wl, mode, runs);
    ctx.log(`build ${wl} ${mode}: kiln`);
    const k = timeBuild(ctx, 'kiln', wl, mode, runs);
    return { kilnMs: k.ms, refMs: ref.ms, error: [k.error, ref.error].filter(Boolean).join('; ') || undefined };
  };
}

interface Spec { wl: Workload; label: string; coldGoal: number }

const SPECS: Spec[] = [
  { wl: 'stages', label: `${STAGES} independent ~1 s stages + COPY --from`, coldGoal: 0.6 },
  { wl: 'runs', label: `${RUN_STEPS} small RUN steps`, coldGoal: 0.25 },
  { wl: 'copy', label: `COPY of ${SMALL_FILES} small files + ${BIG_MIB} MiB`, coldGoal: 0.5 },
];

/** Warm rebuilds: at most half of buildah's warm rebuild, for every workload. */
const WARM_GOAL = 0.5;

export const BUILD_BENCHES: BenchEntry[] = SPECS.flatMap((s): BenchEntry[] => (['cold', 'warm'] as const).map((mode) => ({
  id: `build-${s.wl}-${mode}`,
  group: GROUP,
  name: `\`kiln build\` ${mode}: ${s.label}`,
  kiln: (c: BenchContext) => buildCommand(c, 'kiln', s.wl),
  refName: `\`buildah bud --layers --jobs=4\` ${mode}`,
  ref: (c: BenchContext) => buildCommand(c, 'buildah', s.wl),
  goal: mode === 'cold' ? s.coldGoal : WARM_GOAL,
  fixtures: [FIXTURE],
  measure: measure(s.wl, mode),
})));
