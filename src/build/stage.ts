/**
 * Runs one stage: from its base state (scratch, an image, or an earlier stage's result), the
 * base image's ONBUILD triggers first, then each instruction in order. Words are expanded here,
 * with the variables in scope at that instruction (ARGs of this stage, overridden by ENV), for
 * exactly the instructions the Dockerfile reference lists; RUN, CMD and ENTRYPOINT are left to
 * the shell. Metadata instructions change the config and add an empty-layer history entry;
 * RUN, COPY and ADD go through the cache and may add a layer.
 */
import { KilnError } from '../errors';
import type { BuildPlan, Instruction, Stage } from './frontend/types';
import { expandHeredoc, expandWord, expandWords } from './frontend/expand';
import { triggerInstructions } from './frontend/triggers';
import type { BuildEnv, StageResult, StepCtx } from './env';
import { createdTime } from './env';
import { applyMetadata, expansionEnv, where, type Expanded, type StageState } from './state';
import { scratchState } from './base';
import { existsInLayers } from './chain';
import { layerStep } from './steps/layer-step';
import { ensureDir } from './steps/workdir';
import { resolveUser } from '../runtime/spec';
import { runStep, type StageRoots } from './steps/run';
import { copyStep } from './steps/copy';
import type { StepInfo } from './progress';

export interface StageRunOptions {
  plan: BuildPlan;
  buildArgs: Record<string, string>;
  platformArgs: Record<string, string>;
  /** stage numbering for progress: position among the stages that run, and their count */
  position: number;
  stages: number;
  roots: StageRoots;
}

/** The display text of an instruction: its first line, continuation lines joined. */
export function displayText(ins: { original: string }): string {
  const one = ins.original.replace(/\\\s*\n\s*/g, ' ').replace(/\s*\n\s*/g, ' ').trim();
  return one.length > 120 ? `${one.slice(0, 117)}...` : one;
}

export async function runStage(env: BuildEnv, stage: Stage, opts: StageRunOptions): Promise<StageResult> {
  let s = await baseState(env, stage);
  const triggers = triggerInstructions(s.config.OnBuild ?? [], stage.loc, opts.plan, stage.index, { ...opts.platformArgs, ...opts.plan.globalArgs });
  if (triggers.length > 0) s = { ...s, config: { ...s.config, OnBuild: null } };
  const all = [...triggers, ...stage.instructions];
  const steps = all.length + 1;
  const info = (step: number, text: string): StepInfo => ({ stage: opts.position, stages: opts.stages, stageName: stage.name, step, steps, text });
  const fromText = `FROM ${stage.base.kind === 'image' ? stage.base.ref : stage.base.kind === 'scratch' ? 'scratch' : (opts.plan.stages[stage.base.index].name ?? String(stage.base.index))}${stage.name ? ` AS ${stage.name}` : ''}`;
  env.progress({ type: 'step-start', ...info(1, fromText) });
  env.progress({ type: 'step-done', ms: 0, ...info(1, fromText) });
  let cmdSet = false;
  for (let i = 0; i < all.length; i++) {
    env.signal.throwIfAborted();
    const ins = all[i];
    const step: StepCtx = { info: info(i + 2, displayText(ins)) };
    const started = Date.now();
    env.progress({ type: 'step-start', ...step.info });
    try {
      s = await runInstruction(env, s, ins, step, opts, cmdSet);
    } catch (e) {
      env.progress({ type: 'step-error', message: e instanceof Error ? e.message : String(e), ms: Date.now() - started, ...step.info });
      throw atStep(e, step.info.text);
    }
    if (ins.kind === 'CMD') cmdSet = true;
    env.progress({ type: 'step-done', ms: Date.now() - started, ...step.info });
  }
  return { index: stage.index, state: s };
}

/**
 * WORKDIR creates its directory when the filesystem lacks it (as buildah and BuildKit do), in a
 * layer of its own, owned by the current USER; otherwise it only changes the config.
 */
async function workdirStep(env: BuildEnv, s: StageState, config: StageState['config'], step: StepCtx, text: string, at: string): Promise<StageState> {
  const dir = config.WorkingDir ?? '/';
  const withConfig: StageState = { ...s, config };
  if (await existsInLayers(env.store, s.layers, dir)) {
    return { ...withConfig, history: [...s.history, metadataEntry(env, s, text)] };
  }
  const user = config.User ?? '';
  return layerStep(env, withConfig, step, { op: `WORKDIR ${dir}`, env: JSON.stringify({ user }) }, `/bin/sh -c #(nop) ${text}`, at, async (rootfs) => {
    // as BuildKit does, the directories it creates belong to the current USER
    let owner: { uid: number; gid: number } | undefined;
    if (user !== '') {
      try {
        owner = resolveUser(rootfs.merged, user);
      } catch (e) {
        throw new KilnError('E_BUILD', `${at}: USER ${user}: ${(e as Error).message}`, { cause: e });
      }
    }
    ensureDir(rootfs.merged, dir, at, owner);
  });
}

/** The empty-layer history entry of a metadata instruction: dated when the filesystem last changed (StageState.created). */
function metadataEntry(env: BuildEnv, s: StageState, text: string): StageState['history'][number] {
  return { created: env.timestamp !== undefined ? createdTime(env) : s.created, created_by: `/bin/sh -c #(nop) ${text}`, empty_layer: true };
}

/** podman's form for a failed step: `error building at STEP "RUN …": …`, keeping code, hint and exit status. */
function atStep(e: unknown, text: string): unknown {
  if (!(e instanceof KilnError) || e.code === 'E_BUILD' && e.message === 'build cancelled') return e;
  const w = new KilnError(e.code, `error building at STEP "${text}": ${e.message}`, { hint: e.hint, cause: e });
  const status = (e as { exitStatus?: number }).exitStatus;
  if (status !== undefined) (w as KilnError & { exitStatus?: number }).exitStatus = status;
  return w;
}

async function baseState(env: BuildEnv, stage: Stage): Promise<StageState> {
  const b = stage.base;
  if (b.kind === 'scratch') return scratchState();
  if (b.kind === 'image') return env.image(b.ref);
  const r = await env.stage(b.index);
  return { ...r.state, args: {} };
}

async function runInstruction(env: BuildEnv, s: StageState, ins: Instruction, step: StepCtx, opts: StageRunOptions, cmdSet: boolean): Promise<StageState> {
  const esc = opts.plan.escape;
  const vars = expansionEnv(s);
  const word = (w: string) => expandWord(w, vars, esc);
  switch (ins.kind) {
    case 'RUN':
      return runStep(env, s, ins, step, opts.roots, word);
    case 'COPY':
    case 'ADD':
      return copyStep(env, s, ins, step, opts.roots, word, (c) => expandHeredoc(c, vars));
    case 'ARG': {
      const args = { ...s.args };
      for (const a of ins.args) {
        const v = opts.buildArgs[a.name] ?? (a.default !== undefined ? expandWord(a.default, { ...vars, ...args }, esc) : undefined) ?? opts.plan.globalArgs[a.name] ?? opts.platformArgs[a.name];
        if (v !== undefined) args[a.name] = v;
        else delete args[a.name];
      }
      return { ...s, args };
    }
    default: {
      const x: Expanded = { cmdSetInStage: cmdSet };
      if (ins.kind === 'ENV' || ins.kind === 'LABEL') x.pairs = ins.pairs.map((p) => ({ key: ins.kind === 'LABEL' ? word(p.key) : p.key, value: word(p.value) }));
      else if (ins.kind === 'EXPOSE') x.words = ins.ports.flatMap((p) => expandWords(p, vars, esc));
      else if (ins.kind === 'VOLUME') x.words = ins.paths.map(word);
      else if (ins.kind === 'USER') x.word = word(ins.user);
      else if (ins.kind === 'WORKDIR') x.word = word(ins.path);
      else if (ins.kind === 'STOPSIGNAL') x.word = word(ins.signal);
      if ((ins.kind === 'USER' || ins.kind === 'WORKDIR') && x.word === '') throw new KilnError('E_CONTAINERFILE', `${where(ins)}: ${ins.kind} requires a value (it expanded to nothing)`);
      const config = applyMetadata(s, ins, x);
      if (ins.kind === 'WORKDIR') return workdirStep(env, s, config, step, displayText(ins), where(ins));
      return { ...s, config, history: [...s.history, metadataEntry(env, s, displayText(ins))] };
    }
  }
}
