/**
 * Pass 3 of the front end: raw instructions → the immutable stage DAG (BuildPlan), as BuildKit's
 * dockerfile2llb resolves it before dispatching:
 * - global scope: ARGs before the first FROM, each the --build-arg value if given, else its
 *   default expanded with the platform ARGs and the global ARGs before it; ARGs without either
 *   stay unset (unless a platform ARG of that name exists). Nothing else may precede FROM.
 * - FROM (and --platform) is expanded with that scope; a base naming an earlier stage (names
 *   are case-insensitive) is that stage, `scratch` is empty, anything else is an image. A name
 *   defined later is not a stage reference (as in BuildKit: it is an image name then).
 * - COPY --from and RUN --mount from= are expanded with the same global scope (BuildKit refuses
 *   variables there; buildah expands them) and must name an earlier stage (by name or index) or
 *   else are image references.
 * - the target is --target (by stage name) or the last stage; `needed` is what it depends on.
 */
import { KilnError } from '../../errors';
import { expandWord } from './expand';
import { parseFrom, toInstruction, type FromParts } from './instructions';
import type { ParsedFile, RawInstruction } from './parse';
import type { BuildPlan, Instruction, PlanOptions, RunMount, Stage, StageBase } from './types';

/** Build args Docker accepts without an ARG (never reported unused). */
const BUILTIN_BUILD_ARGS = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

function fail(message: string): KilnError {
  return new KilnError('E_CONTAINERFILE', message);
}

/** Sets an own enumerable property, whatever the key (even `__proto__`). */
function setOwn(o: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

const own = (o: Readonly<Record<string, string>>, key: string): string | undefined => (Object.hasOwn(o, key) ? o[key] : undefined);

interface StageSource {
  from: RawInstruction;
  parts: FromParts;
  body: RawInstruction[];
}

export function planBuild(parsed: ParsedFile, file: string, opts: PlanOptions): BuildPlan {
  const escape = parsed.escape;
  const raws = parsed.instructions;
  if (raws.length === 0) throw fail(`${file}: file with no instructions`);

  // the scope FROM lines see: platform ARGs (build args may override them), then global ARGs
  const scope: Record<string, string> = {};
  for (const [k, v] of Object.entries(opts.platformArgs)) setOwn(scope, k, own(opts.buildArgs, k) ?? v);
  const globalArgs: Record<string, string> = {};
  const declared = new Set<string>();
  let i = 0;
  for (; i < raws.length && raws[i]!.keyword !== 'FROM'; i++) {
    const raw = raws[i]!;
    const ins = toInstruction(raw);
    if (ins.kind !== 'ARG') throw fail(`${file}:${raw.loc.line}: ${raw.keyword} before the first FROM: only ARG instructions may precede FROM`);
    for (const a of ins.args) {
      declared.add(a.name);
      let value = own(opts.buildArgs, a.name);
      if (value === undefined && a.default !== undefined) value = expandWord(a.default, scope, escape, `${file}:${raw.loc.line}`);
      if (value === undefined) value = own(scope, a.name);
      if (value === undefined) continue;
      setOwn(scope, a.name, value);
      setOwn(globalArgs, a.name, value);
    }
  }
  if (i === raws.length) throw fail(`${file}: no FROM instruction: the Containerfile has no stage to build`);

  const sources: StageSource[] = [];
  const names = new Map<string, number>();
  for (; i < raws.length; i++) {
    const raw = raws[i]!;
    if (raw.keyword !== 'FROM') {
      sources[sources.length - 1]!.body.push(raw);
      continue;
    }
    const parts = parseFrom(raw);
    if (parts.name !== undefined) {
      const first = names.get(parts.name);
      if (first !== undefined) {
        throw fail(`${file}:${raw.loc.line}: duplicate stage name "${parts.name}" (first used at line ${sources[first]!.from.loc.line})`);
      }
      names.set(parts.name, sources.length);
    }
    sources.push({ from: raw, parts, body: [] });
  }

  const stages = sources.map((src, index) => buildStage(src, index, { file, escape, scope, names, count: sources.length }));
  const target = resolveTarget(opts.target, names, stages.length, file);
  const needed = reachable(stages, target);
  const unusedBuildArgs = Object.keys(opts.buildArgs)
    .filter((k) => !declared.has(k) && !BUILTIN_BUILD_ARGS.has(k) && !Object.hasOwn(opts.platformArgs, k))
    .filter((k) => !needed.some((n) => stageDeclares(stages[n]!, k)))
    .sort();
  const plan: BuildPlan = { escape, globalArgs, stages, target, needed, unusedBuildArgs };
  return parsed.syntax === undefined ? plan : { syntax: parsed.syntax, ...plan };
}

interface Ctx {
  file: string;
  escape: ParsedFile['escape'];
  scope: Readonly<Record<string, string>>;
  names: ReadonlyMap<string, number>;
  count: number;
}

function buildStage(src: StageSource, index: number, ctx: Ctx): Stage {
  const where = `${ctx.file}:${src.from.loc.line}`;
  const image = expandWord(src.parts.image, ctx.scope, ctx.escape, where);
  if (image === '') throw fail(`${where}: base name (${src.parts.image}) should not be blank`);
  const earlier = ctx.names.get(image.toLowerCase());
  const base: StageBase =
    earlier !== undefined && earlier < index ? { kind: 'stage', index: earlier } : image.toLowerCase() === 'scratch' ? { kind: 'scratch' } : { kind: 'image', ref: image };
  const deps = new Set<number>();
  const imageDeps: string[] = [];
  if (base.kind === 'stage') deps.add(base.index);

  const resolve = (value: string, at: string, what: string): StageBase => {
    const r = resolveFrom(value, index, at, what, ctx);
    if (r.kind === 'stage') deps.add(r.index);
    else if (r.kind === 'image' && !imageDeps.includes(r.ref)) imageDeps.push(r.ref);
    return r;
  };
  const instructions = src.body.map((raw): Instruction => {
    if (raw.keyword === 'FROM') throw new KilnError('E_INTERNAL', 'FROM inside a stage body');
    const ins = toInstruction(raw);
    const at = `${ctx.file}:${raw.loc.line}`;
    if ((ins.kind === 'COPY' || ins.kind === 'ADD') && ins.from !== undefined) {
      const fromResolved = resolve(ins.from, at, `${ins.kind} --from=${ins.from}`);
      return insertAfter(ins, 'from', 'fromResolved', fromResolved);
    }
    if (ins.kind === 'RUN' && ins.mounts.some((m) => (m.type === 'bind' || m.type === 'cache') && m.from !== undefined)) {
      const mounts = ins.mounts.map((m): RunMount => {
        if ((m.type !== 'bind' && m.type !== 'cache') || m.from === undefined) return m;
        const fromResolved = resolve(m.from, at, `RUN --mount from=${m.from}`);
        return insertAfter(m, 'from', 'fromResolved', fromResolved);
      });
      return { ...ins, mounts };
    }
    return ins;
  });

  let platform: string | undefined;
  if (src.parts.platform !== undefined) {
    platform = expandWord(src.parts.platform, ctx.scope, ctx.escape, where);
    if (platform === '') throw fail(`${where}: empty platform value from expression ${src.parts.platform}`);
  }
  return {
    index,
    ...(src.parts.name === undefined ? {} : { name: src.parts.name }),
    loc: src.from.loc,
    base,
    ...(platform === undefined ? {} : { platform }),
    instructions,
    deps: [...deps].sort((a, b) => a - b),
    imageDeps,
  };
}

/** A copy of `o` with `key` placed right after `after`, so the JSON form reads in a stable order. */
function insertAfter<T extends object>(o: T, after: string, key: string, value: unknown): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) {
    out[k] = v;
    if (k === after) out[key] = value;
  }
  return out as T;
}

/**
 * What a COPY --from / mount from= value refers to, seen from stage `current`. Exported for the
 * executor, which resolves ONBUILD triggers of base images the same way.
 */
export function resolveFrom(value: string, current: number, at: string, what: string, ctx: Pick<Ctx, 'scope' | 'escape' | 'names' | 'count'>): StageBase {
  const v = expandWord(value, ctx.scope, ctx.escape, at);
  if (v === '') throw fail(`${at}: ${what}: the value is empty after expansion`);
  if (/^[+-]?\d+$/.test(v)) {
    const n = Number(v);
    if (n < 0 || n >= ctx.count) throw fail(`${at}: ${what}: invalid stage index ${n}`);
    if (n >= current) throw fail(`${at}: ${what}: stage ${n} is not defined before the current stage`);
    return { kind: 'stage', index: n };
  }
  const named = ctx.names.get(v.toLowerCase());
  if (named !== undefined) {
    if (named >= current) throw fail(`${at}: ${what}: stage "${v.toLowerCase()}" needs to be defined before the current stage`);
    return { kind: 'stage', index: named };
  }
  if (v.toLowerCase() === 'scratch') return { kind: 'scratch' };
  return { kind: 'image', ref: v };
}

/**
 * resolveFrom for an existing plan (COPY --from in ONBUILD triggers of a base image): `vars`
 * are the variables to expand the value with (the platform ARGs and plan.globalArgs).
 */
export function resolveFromInPlan(plan: BuildPlan, value: string, current: number, vars: Readonly<Record<string, string>>, at: string): StageBase {
  const names = new Map<string, number>();
  for (const s of plan.stages) if (s.name !== undefined) names.set(s.name, s.index);
  return resolveFrom(value, current, at, `--from=${value}`, { scope: vars, escape: plan.escape, names, count: plan.stages.length });
}

function resolveTarget(target: string | undefined, names: ReadonlyMap<string, number>, count: number, file: string): number {
  if (target === undefined) return count - 1;
  const index = names.get(target.toLowerCase());
  if (index !== undefined) return index;
  const known = [...names.keys()];
  const list = known.length === 0 ? 'the Containerfile has no named stages' : `stages: ${known.join(', ')}`;
  throw new KilnError('E_CONTAINERFILE', `${file}: target stage "${target}" could not be found (${list})`, { hint: 'name a stage with FROM <image> AS <name>' });
}

/** Stages the target needs, itself included, deps before dependents. */
function reachable(stages: Stage[], target: number): number[] {
  const seen = new Set<number>();
  const visit = (i: number) => {
    if (seen.has(i)) return;
    seen.add(i);
    for (const d of stages[i]!.deps) visit(d);
  };
  visit(target);
  // deps always have lower indexes than their dependents
  return [...seen].sort((a, b) => a - b);
}

function stageDeclares(stage: Stage, name: string): boolean {
  return stage.instructions.some((ins) => ins.kind === 'ARG' && ins.args.some((a) => a.name === name));
}
