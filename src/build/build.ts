/**
 * `kiln build` as a library call: Containerfile → plan (pure front end) → one scheduler vertex
 * per needed stage, run concurrently as their dependencies finish (up to --jobs) → the target
 * stage committed as an image under every -t name. CPU-heavy work (archiving, hashing,
 * compressing layers) runs on the Piscina pool; the event loop only schedules and waits.
 *
 * Everything the build writes is held by one lease until the image is committed; a failed or
 * cancelled build leaves no mounts, containers or half-written images, while the layers of the
 * steps that did finish stay in the build cache for the next attempt.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { KilnError } from '../errors';
import type { EngineContext } from '../engine/context';
import type { ImageRecord } from '../store/images';
import { normalizeName } from '../image/reference';
import { goArch } from '../image/platform';
import { loadPlan } from './frontend';
import { IgnoreMatcher, ignoreFileCandidates, parseIgnoreFile } from './frontend/ignore';
import type { BuildPlan, Stage } from './frontend/types';
import { solve, type Vertex } from './scheduler';
import { BuildCache } from './cache';
import type { BuildEnv, SecretSource, StageResult } from './env';
import { imageState } from './base';
import { runStage, type StageRunOptions } from './stage';
import type { RootRef, StageRoots } from './steps/run';
import type { ProgressEvent } from './progress';
import { commitImage } from './commit';
import { squashState } from './squash';
import { exportOutputs, type OutputSpec } from './output';
import { selfOwner } from '../util/proc';
import { pullBaseImages, type BuildPullOptions, type PullPolicy } from './pull-bases';

export interface BuildOptions {
  contextDir: string;
  /** -f; default: Containerfile, else Dockerfile, in the context dir; '-' reads standard input */
  file?: string;
  tags: string[];
  buildArgs: Record<string, string>;
  target?: string;
  /** most stages at once; default: all that are ready */
  jobs?: number;
  /** --layers=false / --no-cache: do not use the cache */
  noCache: boolean;
  cacheTtlMs?: number;
  pull: PullPolicy;
  /** how base images are pulled (pull-bases.ts); without it nothing is pulled */
  registry?: BuildPullOptions;
  format: 'oci' | 'docker';
  iidfile?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** seconds since the epoch (--timestamp, SOURCE_DATE_EPOCH) */
  timestamp?: number;
  platform?: string;
  secrets: Record<string, SecretSource>;
  network: 'host' | 'none';
  outputs: OutputSpec[];
  /** --ignorefile: used instead of the context's .containerignore/.dockerignore */
  ignoreFile?: string;
  /** --ulimit: rlimits for RUN (clamped to kiln's own hard limits) */
  ulimits?: { type: string; soft: number; hard: number }[];
  /** --squash: the layers this build made become one; --squash-all: all layers become one */
  squash?: 'new' | 'all';
  progress: (e: ProgressEvent) => void;
  signal?: AbortSignal;
}

export interface BuildResult {
  image: ImageRecord;
  plan: BuildPlan;
}

/**
 * The Containerfile to use: -f as a path from the working directory, else from the context
 * dir (as podman looks it up); without -f, Containerfile or Dockerfile in the context.
 */
export function findContainerfile(contextDir: string, file?: string): string {
  if (file !== undefined) {
    for (const p of path.isAbsolute(file) ? [file] : [path.resolve(file), path.join(contextDir, file)]) {
      if (fs.existsSync(p)) return p;
    }
    throw new KilnError('E_INVALID_ARGUMENT', `${file}: no such file or directory`);
  }
  for (const n of ['Containerfile', 'Dockerfile']) {
    const p = path.join(contextDir, n);
    if (fs.existsSync(p)) return p;
  }
  throw new KilnError('E_INVALID_ARGUMENT', `no Containerfile or Dockerfile in ${contextDir}`, { hint: 'name one with -f' });
}

/** How errors name the Containerfile: relative to the working directory when below it, else absolute. */
function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel === '' || rel.startsWith('..') ? file : rel;
}

export function platformArgs(platform?: string): Record<string, string> {
  const host = `linux/${goArch()}`;
  const target = platform ?? host;
  if (target !== host) throw new KilnError('E_UNSUPPORTED', `--platform ${target}: only the host platform ${host} can be built here (no emulation)`);
  // target = host: the TARGET* and BUILD* values are the same
  const [os, arch, variant = ''] = host.split('/');
  return { TARGETPLATFORM: host, TARGETOS: os, TARGETARCH: arch, TARGETVARIANT: variant, BUILDPLATFORM: host, BUILDOS: os, BUILDARCH: arch, BUILDVARIANT: variant };
}

function readIgnore(contextDir: string, containerfile: string, explicit?: string): IgnoreMatcher | undefined {
  if (explicit !== undefined) {
    try {
      return new IgnoreMatcher(parseIgnoreFile(fs.readFileSync(explicit, 'utf8')));
    } catch (e) {
      throw new KilnError('E_INVALID_ARGUMENT', `--ignorefile ${explicit}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file or directory' : (e as Error).message}`);
    }
  }
  for (const c of ignoreFileCandidates(containerfile, contextDir)) {
    let text: string;
    try {
      text = fs.readFileSync(c, 'utf8');
    } catch {
      continue;
    }
    return new IgnoreMatcher(parseIgnoreFile(text));
  }
  return undefined;
}

export async function build(ctx: EngineContext, opts: BuildOptions): Promise<BuildResult> {
  const contextDir = path.resolve(opts.contextDir);
  if (!fs.existsSync(contextDir) || !fs.statSync(contextDir).isDirectory()) throw new KilnError('E_INVALID_ARGUMENT', `build context ${opts.contextDir} is not a directory`);
  // -f -: the Containerfile comes from standard input (ignore files are the context's own)
  const fromStdin = opts.file === '-';
  const file = fromStdin ? path.join(contextDir, 'Containerfile') : findContainerfile(contextDir, opts.file);
  const text = fromStdin ? fs.readFileSync(0, 'utf8') : fs.readFileSync(file, 'utf8');
  const pargs = platformArgs(opts.platform);
  const plan = loadPlan(text, fromStdin ? '<stdin>' : displayPath(file), { buildArgs: opts.buildArgs, target: opts.target, platformArgs: pargs });
  const names = opts.tags.map((t) => normalizeName(t));
  // checked before the build, not after it: the image would be built for nothing
  if (opts.iidfile !== undefined && !fs.existsSync(path.dirname(path.resolve(opts.iidfile)))) {
    throw new KilnError('E_INVALID_ARGUMENT', `--iidfile ${opts.iidfile}: directory ${path.dirname(path.resolve(opts.iidfile))} does not exist`);
  }
  // the images the needed stages start from or copy/mount from
  const baseRefs = plan.needed.flatMap((i) => {
    const st = plan.stages[i];
    return [...(st.base.kind === 'image' ? [st.base.ref] : []), ...st.imageDeps];
  });
  if (opts.registry) await pullBaseImages(ctx, baseRefs, opts.pull, opts.registry);
  const store = ctx.store;
  const abort = new AbortController();
  const onAbort = () => abort.abort(opts.signal?.reason ?? new KilnError('E_BUILD', 'build cancelled'));
  opts.signal?.addEventListener('abort', onAbort, { once: true });
  const holder = selfOwner();
  const heldMounts: string[] = [];
  try {
    return await store.withLease(async (lease) => {
      const results = new Map<number, StageResult>();
      const imageCache = new Map<string, ReturnType<typeof imageState>>();
      let runtime: ReturnType<BuildEnv['runtime']> | undefined;
      const env: BuildEnv = {
        store,
        lease,
        cache: new BuildCache(store, { disabled: opts.noCache, ttlMs: opts.cacheTtlMs }),
        runtime: () => {
          if (!runtime) {
            const { openRuntime } = require('../runtime/detect') as typeof import('../runtime/detect');
            runtime = openRuntime(path.join(store.paths.runroot, 'runtime'));
          }
          return runtime;
        },
        contextDir,
        ignored: readIgnore(contextDir, file, opts.ignoreFile),
        ulimits: opts.ulimits,
        secrets: opts.secrets,
        network: opts.network,
        timestamp: opts.timestamp,
        progress: opts.progress,
        signal: abort.signal,
        stage: async (i) => {
          const r = results.get(i);
          // only an ONBUILD trigger's --from can name a stage outside this stage's dependencies
          if (!r) throw new KilnError('E_CONTAINERFILE', `stage ${plan.stages[i]?.name ?? i} is not built yet: an ONBUILD --from of a base image may name only a stage the stage using it depends on`);
          return r;
        },
        image: (ref) => {
          let st = imageCache.get(ref);
          if (!st) {
            const img = store.images.find(ref);
            if (!img) throw new KilnError('E_IMAGE_UNKNOWN', `error creating build container: ${ref}: image not known`, opts.pull === 'never' ? { hint: 'it was not pulled: --pull=never' } : {});
            st = imageState(store, img, lease);
            imageCache.set(ref, st);
          }
          return structuredClone(st);
        },
      };
      // Base images are resolved up front, so a missing one fails before any step runs.
      for (const r of baseRefs) env.image(r);
      const roots = stageRoots(env, heldMounts, holder);
      const vertices = new Map<number, Vertex<StageResult>>();
      const position = new Map(plan.needed.map((i, n) => [i, n + 1]));
      const vertexOf = (i: number): Vertex<StageResult> => {
        const have = vertices.get(i);
        if (have) return have;
        const st = plan.stages[i];
        const inputs = st.deps.map(vertexOf);
        const runOpts: StageRunOptions = { plan, buildArgs: opts.buildArgs, platformArgs: pargs, position: position.get(i) ?? i + 1, stages: plan.needed.length, roots };
        const v: Vertex<StageResult> = {
          digest: stageDigest(st, inputs.map((x) => x.digest), opts.buildArgs),
          inputs,
          name: st.name ?? `stage ${i}`,
          op: async (deps, { signal }) => {
            // the solve aborts its ops' signal when another stage fails: stop this one's steps too
            signal.addEventListener('abort', () => abort.abort(new KilnError('E_BUILD', 'build cancelled', { cause: signal.reason })), { once: true });
            deps.forEach((d, k) => results.set(st.deps[k], d));
            const r = await runStage(env, st, runOpts);
            results.set(i, r);
            return r;
          },
        };
        vertices.set(i, v);
        return v;
      };
      const [final] = await solve([vertexOf(plan.target)], { jobs: opts.jobs, signal: abort.signal });
      const created = opts.timestamp !== undefined ? new Date(opts.timestamp * 1000).toISOString() : final.state.created;
      opts.progress({ type: 'message', text: `COMMIT${opts.tags.length ? ` ${opts.tags[0]}` : ''}` });
      let state = final.state;
      if (opts.squash) state = await squashState(store, lease, state, opts.squash === 'all' ? 0 : state.imageLayers, { clampMtime: opts.timestamp, created });
      const image = await commitImage(store, state, lease, { format: opts.format, names, labels: opts.labels, annotations: opts.annotations, created });
      opts.progress({ type: 'message', text: `--> ${image.id.slice(0, 11)}` }); // 11, as buildah prints it
      for (const n of names) opts.progress({ type: 'message', text: `Successfully tagged ${n}` });
      if (opts.iidfile) writeIidfile(opts.iidfile, image.id);
      if (opts.outputs.length) await exportOutputs(store, image, opts.outputs);
      return { image, plan };
    });
  } finally {
    opts.signal?.removeEventListener('abort', onAbort);
    for (const l of heldMounts.splice(0)) {
      try {
        store.mounts.unmount(l, holder);
      } catch {
        /* already released */
      }
    }
  }
}

/** Identical stages (same base, instructions and inputs) get the same digest and run once. */
function stageDigest(st: Stage, depDigests: string[], buildArgs: Record<string, string>): string {
  const strip = st.instructions.map((i) => ({ ...i, loc: undefined }));
  return createHash('sha256').update(JSON.stringify({ base: st.base, platform: st.platform, strip, depDigests, buildArgs })).digest('hex');
}

function writeIidfile(file: string, id: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, `sha256:${id}`);
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw new KilnError('E_IO', `--iidfile ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
}

/**
 * Read-only roots for --from and --mount from= (resolved by the plan to a stage or an image), and
 * for a layer chain by its top layer. Layer mounts are held by this process and released when
 * the step is done.
 */
function stageRoots(env: BuildEnv, held: string[], holder: string): StageRoots {
  const topOf = async (from: RootRef): Promise<string | null> => {
    if (from.kind === 'layer') return from.id;
    if (from.kind === 'scratch') return null;
    const st = from.kind === 'stage' ? (await env.stage(from.index)).state : env.image(from.ref);
    return st.layers.length ? st.layers[st.layers.length - 1].id : null;
  };
  return {
    key: async (from) => (await topOf(from)) ?? 'empty',
    root: async (from) => {
      const top = await topOf(from);
      if (top === null) {
        const empty = env.store.tempDir('empty-root');
        return { root: empty, release: () => fs.rmSync(empty, { recursive: true, force: true }) };
      }
      await env.store.layers.ensureChain(top);
      const root = env.store.mounts.mount(top, holder);
      held.push(top);
      let released = false;
      return {
        root,
        release: () => {
          if (released) return;
          released = true;
          const k = held.indexOf(top);
          if (k >= 0) held.splice(k, 1);
          env.store.mounts.unmount(top, holder);
        },
      };
    },
  };
}
