/**
 * kiln benchmarks against reference tools (`npm run bench` = node dist/bench/run.js).
 *
 * Every entry of BENCHES times one kiln command against one reference command in the same
 * hyperfine run and has a goal: kiln's median may be at most `goal` times the reference's.
 * Entries name the fixtures they need (e.g. a store with 1000 images, built once per run).
 * Results go to bench/RESULTS.md: the rows of the entries run replace theirs, the other rows
 * (and their fixture notes) are kept from the file as it was. To add a workload (build, pull,
 * ...), add a fixture if it needs one and an entry to BENCHES.
 *
 *   node dist/bench/run.js [--only NAME[,NAME]] [NAME...] [--runs N] [--warmup N] [--keep] [--check]
 *     NAME      an entry id or a group (e.g. `npm run bench -- build`); BENCH_ONLY=NAME[,NAME] too
 *     --check   exit 1 when a goal is missed (failures always exit 1)
 *     --keep    keep the temp stores (under $KILN_BENCH_TMP, default /var/tmp)
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BUILD_BENCHES, BUILD_FIXTURES } from './build';
import { REGISTRY_BENCHES, REGISTRY_FIXTURES } from './registry';
import { RUN_BENCHES, RUN_FIXTURES } from './containers';
import { benchTag, makeBenchArchive } from './make-archive';
import { countLines, hyperfine, KILN, PODMAN_CONF, REPO, removeStale, removeTree, run, versionOf } from './lib';

export interface BenchContext {
  /** This run's temp dir (no spaces: commands are split on whitespace). */
  tmp: string;
  /** Absolute path of the repo's bin/kiln. */
  kiln: string;
  /** `--root … --runroot …` of this run's kiln store, as one string. */
  kilnStore: string;
  /** `--root … --runroot … --tmpdir …` of this run's podman store, as one string. */
  podmanStore: string;
  /** Environment for every command (CONTAINERS_CONF set). */
  env: NodeJS.ProcessEnv;
  log: (msg: string) => void;
}

export interface Fixture {
  describe: string;
  setup: (ctx: BenchContext) => Promise<void>;
  /** Stops what setup started (e.g. a server); run at the end of the run and on SIGINT/SIGTERM. */
  teardown?: () => void;
}

export interface BenchEntry {
  /** Short id for --only. */
  id: string;
  /** Workload label in RESULTS.md. */
  name: string;
  kiln: (ctx: BenchContext) => string;
  /** Reference label in RESULTS.md. */
  refName: string;
  ref: (ctx: BenchContext) => string;
  /** Goal: kiln median <= goal x reference median; undefined = informative row, no goal. */
  goal?: number;
  /** What the two numbers are (default 'ms'), shown next to them. */
  unit?: 'ms' | 'KiB';
  fixtures?: string[];
  /** Selects the entry together with the others of its group (`--only build`). */
  group?: string;
  /**
   * Times the entry itself instead of one hyperfine run of kiln() and ref() (builds need
   * state resets and separate runs). Reports a failing side in `error`, not by throwing,
   * so that the other side's time is still shown.
   */
  measure?: (ctx: BenchContext) => Promise<Measured>;
}

export interface Measured { kilnMs?: number; refMs?: number; error?: string }

const IMAGE_COUNT = 1000;

export const FIXTURES: Record<string, Fixture> = {
  images1000: {
    describe: `${IMAGE_COUNT} tagged images (localhost/bench/img-N:latest) loaded from one docker-archive into a fresh kiln store and a fresh podman store; the images share one tiny base layer and each has a one-file top layer and its own config`,
    async setup(ctx) {
      const archive = path.join(ctx.tmp, 'images.tar');
      ctx.log(`fixture images1000: writing docker-archive with ${IMAGE_COUNT} images`);
      await makeBenchArchive(archive, IMAGE_COUNT);
      const split = (s: string): string[] => s.split(/\s+/).filter(Boolean);
      ctx.log('fixture images1000: kiln load');
      run(ctx.kiln, [...split(ctx.kilnStore), 'load', '-i', archive], { env: ctx.env });
      ctx.log('fixture images1000: podman load (about 1.5 min)');
      run('podman', [...split(ctx.podmanStore), 'load', '-q', '-i', archive], { env: ctx.env });
      const k = countLines(run(ctx.kiln, [...split(ctx.kilnStore), 'images', '-q'], { env: ctx.env }).stdout);
      const p = countLines(run('podman', [...split(ctx.podmanStore), 'images', '-q'], { env: ctx.env }).stdout);
      if (k !== IMAGE_COUNT || p !== IMAGE_COUNT) {
        throw new Error(`fixture images1000: expected ${IMAGE_COUNT} images in each store, kiln lists ${k}, podman lists ${p}`);
      }
      // Spot check that the tags made it, not just the image count.
      const last = benchTag(IMAGE_COUNT - 1);
      run(ctx.kiln, [...split(ctx.kilnStore), 'image', 'exists', last], { env: ctx.env });
      run('podman', [...split(ctx.podmanStore), 'image', 'exists', last], { env: ctx.env });
    },
  },
  tags1000: {
    describe: `one image with ${IMAGE_COUNT} names (localhost/bench/img-0 plus ${IMAGE_COUNT - 1} tags), in a second kiln store and a second podman store: the listing without podman's per-image cost`,
    async setup(ctx) {
      const archive = path.join(ctx.tmp, 'one-image.tar');
      await makeBenchArchive(archive, 1);
      const split = (s: string): string[] => s.split(/\s+/).filter(Boolean);
      const tags = Array.from({ length: IMAGE_COUNT - 1 }, (_, i) => `localhost/bench/tag-${i}:latest`);
      ctx.log('fixture tags1000: kiln load + tag');
      run(ctx.kiln, [...split(tagStore(ctx, 'kiln')), 'load', '-q', '-i', archive], { env: ctx.env });
      run(ctx.kiln, [...split(tagStore(ctx, 'kiln')), 'tag', benchTag(0), ...tags], { env: ctx.env });
      ctx.log('fixture tags1000: podman load + tag');
      run('podman', [...split(tagStore(ctx, 'podman')), 'load', '-q', '-i', archive], { env: ctx.env });
      run('podman', [...split(tagStore(ctx, 'podman')), 'tag', benchTag(0), ...tags], { env: ctx.env });
      const k = countLines(run(ctx.kiln, [...split(tagStore(ctx, 'kiln')), 'images'], { env: ctx.env }).stdout);
      const p = countLines(run('podman', [...split(tagStore(ctx, 'podman')), 'images'], { env: ctx.env }).stdout);
      if (k !== IMAGE_COUNT + 1 || p !== IMAGE_COUNT + 1) throw new Error(`fixture tags1000: expected ${IMAGE_COUNT} rows, kiln printed ${k - 1}, podman ${p - 1}`);
    },
  },
  ...BUILD_FIXTURES,
  ...REGISTRY_FIXTURES,
  ...RUN_FIXTURES,
};

/** The second pair of stores (tags1000), beside the first ones. */
function tagStore(ctx: BenchContext, tool: 'kiln' | 'podman'): string {
  return tool === 'kiln'
    ? `--root ${ctx.tmp}/kiln-tags --runroot ${ctx.tmp}/kiln-tags-run`
    : `--root ${ctx.tmp}/podman-tags --runroot ${ctx.tmp}/podman-tags-run --tmpdir ${ctx.tmp}/podman-tags-tmp`;
}

export const BENCHES: BenchEntry[] = [
  {
    id: 'version',
    name: 'CLI start-up: `kiln --version`',
    kiln: (c) => `${c.kiln} --version`,
    refName: '`node -e 0`',
    ref: () => 'node -e 0',
    goal: 2,
  },
  {
    id: 'images',
    name: `\`kiln images\`, ${IMAGE_COUNT} images`,
    kiln: (c) => `${c.kiln} ${c.kilnStore} images`,
    refName: `\`podman images\`, same ${IMAGE_COUNT} images`,
    ref: (c) => `podman ${c.podmanStore} images`,
    goal: 1.5,
    fixtures: ['images1000'],
  },
  {
    id: 'tags',
    name: `\`kiln images\`, one image with ${IMAGE_COUNT} names`,
    kiln: (c) => `${c.kiln} ${tagStore(c, 'kiln')} images`,
    refName: `\`podman images\`, same ${IMAGE_COUNT} names`,
    ref: (c) => `podman ${tagStore(c, 'podman')} images`,
    goal: 1.5,
    fixtures: ['tags1000'],
  },
  ...BUILD_BENCHES,
  ...REGISTRY_BENCHES,
  ...RUN_BENCHES,
];

interface Row { entry: BenchEntry; kilnMs?: number; refMs?: number; error?: string }

function parseArgs(argv: string[]): { only?: Set<string>; runs: number; warmup: number; keep: boolean; check: boolean } {
  const o = { only: undefined as Set<string> | undefined, runs: 20, warmup: 3, keep: false, check: false };
  const select = (names: string): void => {
    o.only ??= new Set();
    for (const n of names.split(',')) if (n) o.only.add(n);
  };
  if (process.env.BENCH_ONLY) select(process.env.BENCH_ONLY);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--only') select(val());
    else if (a === '--runs') o.runs = Number(val());
    else if (a === '--warmup') o.warmup = Number(val());
    else if (a === '--keep') o.keep = true;
    else if (a === '--check') o.check = true;
    else if (!a.startsWith('-')) select(a);
    else throw new Error(`unknown argument ${a} (see bench/run.ts)`);
  }
  if (!(o.runs >= 2) || !(o.warmup >= 0)) throw new Error('--runs must be >= 2 and --warmup >= 0');
  return o;
}

/** The most telling line of an error (a tool's own last stderr line), fit for a table cell. */
function shortError(e: string): string {
  const lines = e.split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines.length > 1 ? lines[lines.length - 1] : (lines[0] ?? 'unknown error');
  return (line.length > 160 ? `${line.slice(0, 157)}...` : line).replace(/\|/g, '\\|');
}

const fmtMs = (ms: number | undefined): string => (ms === undefined ? '–' : ms.toFixed(1));

/**
 * What an earlier RESULTS.md says: its table rows by workload name and its fixture lines by
 * fixture name, so that a run of some entries keeps the rows of the others.
 */
function previousResults(file: string): { rows: Map<string, string>; fixtures: Map<string, string> } {
  const rows = new Map<string, string>();
  const fixtures = new Map<string, string>();
  if (!existsSync(file)) return { rows, fixtures };
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const row = /^\| (.+?) \| /.exec(line);
    if (row && !line.startsWith('| workload |') && !line.startsWith('|---')) rows.set(row[1]!, line);
    const fx = /^- ([\w-]+): /.exec(line);
    if (fx && FIXTURES[fx[1]!]) fixtures.set(fx[1]!, line);
  }
  return { rows, fixtures };
}

function renderResults(rows: Row[], meta: { date: string; runs: number; warmup: number; fixtures: string[] }, previous: ReturnType<typeof previousResults>): string {
  const cpus = os.cpus();
  // Every entry in BENCHES order: this run's result, else the row an earlier run wrote.
  const ran = new Map(rows.map((r) => [r.entry, r]));
  const table: string[] = [];
  const fixtureLines = new Map<string, string>();
  let kept = 0;
  for (const entry of BENCHES) {
    const r = ran.get(entry);
    if (r) {
      const ratio = r.kilnMs !== undefined && r.refMs !== undefined ? r.kilnMs / r.refMs : undefined;
      const goal = r.entry.goal;
      const verdict = r.error ? `FAILED: ${shortError(r.error)}` : goal === undefined ? '' : ratio! <= goal ? 'met' : 'MISSED';
      const unit = r.entry.unit === 'KiB' ? ' KiB' : '';
      const goalCell = goal === undefined ? (r.error ? verdict : 'none (informative)') : `≤ ${goal}x: ${verdict}`;
      table.push(`| ${r.entry.name} | ${fmtMs(r.kilnMs)}${unit} | ${r.entry.refName} | ${fmtMs(r.refMs)}${unit} | ${ratio === undefined ? '–' : `${ratio.toFixed(2)}x`} | ${goalCell} |`);
      for (const f of entry.fixtures ?? []) if (meta.fixtures.includes(f)) fixtureLines.set(f, `- ${f}: ${FIXTURES[f]!.describe}.`);
      continue;
    }
    const old = previous.rows.get(entry.name);
    if (old === undefined) continue;
    table.push(old);
    kept++;
    for (const f of entry.fixtures ?? []) {
      const line = previous.fixtures.get(f);
      if (line !== undefined && !fixtureLines.has(f)) fixtureLines.set(f, line);
    }
  }
  const lines = [
    '# kiln benchmarks',
    '',
    `Generated by \`npm run bench\` (bench/run.ts) on ${meta.date}${kept ? `; ${kept} rows of entries not run then are kept from earlier runs` : ''}. Do not edit by hand.`,
    '',
    `- machine: ${os.availableParallelism()} CPUs (${cpus[0]?.model.trim() ?? 'unknown'}), ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${os.release()}`,
    `- node ${process.version}; ${versionOf('podman')}; ${versionOf('hyperfine')}; ${versionOf(KILN)}`,
    `- hyperfine --warmup ${meta.warmup} --runs ${meta.runs}, no shell, output of both tools to /dev/null; median wall-clock time`,
    '',
    '| workload | kiln median (ms unless noted) | reference | reference median | ratio | goal |',
    '|---|---:|---|---:|---:|---|',
    ...table,
  ];
  const order = Object.keys(FIXTURES).filter((f) => fixtureLines.has(f));
  if (order.length > 0) lines.push('', 'Fixtures:', '', ...order.map((f) => fixtureLines.get(f)!));
  return lines.join('\n') + '\n';
}

async function main(): Promise<number> {
  const opts = parseArgs(process.argv.slice(2));
  const entries = BENCHES.filter((b) => !opts.only || opts.only.has(b.id) || (b.group !== undefined && opts.only.has(b.group)));
  if (entries.length === 0) {
    const names = [...new Set(BENCHES.flatMap((b) => (b.group ? [b.group, b.id] : [b.id])))];
    throw new Error(`--only matches none of: ${names.join(', ')}`);
  }

  // On disk (not tmpfs), and outside the repo so that nothing else working in the tree
  // removes it under a running bench. KILN_BENCH_TMP overrides the parent directory.
  const tmpParent = process.env.KILN_BENCH_TMP || '/var/tmp';
  mkdirSync(tmpParent, { recursive: true });
  removeStale(tmpParent, 'kiln-bench');
  const tmp = mkdtempSync(path.join(tmpParent, `kiln-bench-${process.pid}-`));
  const usedFixtures: string[] = [];
  const cleanup = (): void => {
    for (const f of usedFixtures) FIXTURES[f].teardown?.();
    if (!opts.keep) removeTree(tmp);
  };
  const onSignal = (sig: NodeJS.Signals): void => {
    cleanup();
    process.kill(process.pid, sig);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const ctx: BenchContext = {
    tmp,
    kiln: KILN,
    kilnStore: `--root ${tmp}/kiln --runroot ${tmp}/kiln-run`,
    podmanStore: `--root ${tmp}/podman --runroot ${tmp}/podman-run --tmpdir ${tmp}/podman-tmp`,
    env: { ...process.env, CONTAINERS_CONF: process.env.CONTAINERS_CONF ?? PODMAN_CONF },
    log: (m) => process.stderr.write(`bench: ${m}\n`),
  };
  const rows: Row[] = [];
  const fixtureState = new Map<string, Promise<void>>();
  try {
    for (const entry of entries) {
      const row: Row = { entry };
      rows.push(row);
      try {
        for (const f of entry.fixtures ?? []) {
          if (!FIXTURES[f]) throw new Error(`unknown fixture ${f}`);
          if (!fixtureState.has(f)) {
            usedFixtures.push(f);
            fixtureState.set(f, FIXTURES[f].setup(ctx));
          }
          await fixtureState.get(f);
        }
        if (entry.measure) {
          Object.assign(row, await entry.measure(ctx));
          if (row.error) ctx.log(`${entry.id}: FAILED: ${row.error}`);
          continue;
        }
        ctx.log(`${entry.id}: hyperfine`);
        const [k, r] = hyperfine([entry.kiln(ctx), entry.ref(ctx)], {
          warmup: opts.warmup, runs: opts.runs, env: ctx.env, jsonOut: path.join(tmp, `${entry.id}.json`),
        });
        row.kilnMs = k.median * 1000;
        row.refMs = r.median * 1000;
      } catch (err) {
        row.error = err instanceof Error ? err.message : String(err);
        ctx.log(`${entry.id}: FAILED: ${row.error}`);
      }
    }
  } finally {
    cleanup();
  }

  // A run of some entries (a group, --only) replaces their rows and keeps the others'.
  const resultsFile = path.join(REPO, 'bench', 'RESULTS.md');
  const md = renderResults(rows, { date: new Date().toISOString(), runs: opts.runs, warmup: opts.warmup, fixtures: usedFixtures }, previousResults(resultsFile));
  writeFileSync(resultsFile, md);
  process.stdout.write(md);
  const failed = rows.some((r) => r.error);
  const missed = rows.some((r) => !r.error && r.entry.goal !== undefined && r.kilnMs! > r.entry.goal * r.refMs!);
  return failed || (opts.check && missed) ? 1 : 0;
}

if (require.main === module) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(2);
    },
  );
}
