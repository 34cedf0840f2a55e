/**
 * RUN: the command runs in a temporary container through the OCI runtime, on a writable
 * overlay of the stage's layers; the overlay's upper dir becomes the step's layer. The cache
 * key covers the command, the environment it sees (ENV, ARGs, USER, WORKDIR, SHELL), its mount
 * sources and network — never secret contents.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { KilnError } from '../../errors';
import { buildSpec, resolveUser, writeSpec, type MountRequest } from '../../runtime/spec';
import type { Instruction, RunMount, StageBase } from '../frontend/types';
import type { BuildEnv, StepCtx } from '../env';
import { runEnv, shellOf, where, type StageState } from '../state';
import type { StepRoot } from './layer-step';
import { prepareMounts, mountsKey, type ContextSelections } from './mounts';
import { missingMountPoints, removeStubs } from './stubs';
import { layerStep } from './layer-step';
import { ensureDir } from './workdir';

type RunIns = Extract<Instruction, { kind: 'RUN' }>;

const TAIL_LINES = 20;

/** Keeps the last lines a step wrote, for the error message of a failed RUN. */
class Tail {
  private buf = '';
  add(chunk: Buffer): void {
    this.buf = (this.buf + chunk.toString('utf8')).slice(-8192);
  }
  lines(): string[] {
    return this.buf.replace(/\n$/, '').split('\n').slice(-TAIL_LINES);
  }
}

/** A --from (a stage of this build or an image), or a layer chain by its top layer (null: empty). */
export type RootRef = StageBase | { kind: 'layer'; id: string | null };

export interface StageRoots {
  /** a read-only root of `from`; release when done */
  root(from: RootRef): Promise<{ root: string; release(): void }>;
  /**
   * What that filesystem is, for cache keys: its top layer's chain ID (content-addressed, so
   * a stage that was run again with another result gives another key), or 'empty'.
   */
  key(from: StageBase): Promise<string>;
}

export async function runStep(env: BuildEnv, s: StageState, raw: RunIns, step: StepCtx, roots: StageRoots, word: (w: string) => string): Promise<StageState> {
  // --mount's string fields take variables, as BuildKit expands them (from= was resolved by the plan)
  const ins: RunIns = { ...raw, mounts: raw.mounts.map((m) => expandMount(m, word)) };
  // the op names the whole command (a #! heredoc's body included) even when argv is the script's path
  const command = ins.command.form === 'exec' ? ins.command.args : [...shellOf(s), ins.command.script];
  const argv = shebangScript(ins) !== undefined ? [SCRIPT_PATH] : command;
  const processEnv = runEnv(s);
  const workdir = s.config.WorkingDir || '/';
  const network = ins.network === 'default' ? env.network : ins.network;
  const selections: ContextSelections = new Map();
  const inputs = {
    op: `RUN ${JSON.stringify(command)}`,
    env: JSON.stringify({ env: processEnv, user: s.config.User ?? '', workdir }),
    mounts: await mountsKey(env, ins.mounts, roots, where(ins), selections),
    network,
  };
  const createdBy = ins.command.form === 'exec' ? `/bin/sh -c #(nop) RUN ${JSON.stringify(command)}` : `${shellOf(s).join(' ')} ${ins.command.script}`;
  return layerStep(env, s, step, inputs, createdBy, ins.original, async (rootfs) => {
    await runInRootfs(env, s, ins, step, roots, rootfs, { argv, processEnv, workdir, network, selections });
  });
}

/** What runStep worked out for the cache key, used again to run the step. */
interface RunPlan {
  argv: string[];
  processEnv: string[];
  workdir: string;
  network: 'host' | 'none';
  selections: ContextSelections;
}

async function runInRootfs(env: BuildEnv, s: StageState, ins: RunIns, step: StepCtx, roots: StageRoots, rootfs: StepRoot, plan: RunPlan): Promise<void> {
  const { argv, processEnv, workdir, network } = plan;
  const merged = rootfs.merged;
  ensureDir(merged, workdir, where(ins));
  let user: ReturnType<typeof resolveUser>;
  try {
    user = resolveUser(merged, s.config.User ?? '');
  } catch (e) {
    throw new KilnError('E_BUILD', `${where(ins)}: USER ${s.config.User}: ${(e as Error).message}`, { cause: e });
  }
  const privateDir = env.store.tempDir('run');
  let prepared: Awaited<ReturnType<typeof prepareMounts>> | undefined;
  try {
    prepared = await prepareMounts(env, ins.mounts, workdir, privateDir, roots, where(ins), plan.selections);
    const mounts: MountRequest[] = [...hostFiles(network), ...prepared.mounts];
    const script = shebangScript(ins);
    if (script !== undefined) {
      // `RUN <<EOF` whose body starts with #!: run the body as a program, as BuildKit does
      const file = path.join(privateDir, 'script');
      fs.writeFileSync(file, script, { mode: 0o755 });
      mounts.push({ type: 'bind', source: file, destination: SCRIPT_PATH, readonly: true });
    }
    const stubs = missingMountPoints(merged, ['/proc', '/dev', '/sys', '/etc/hosts', '/etc/resolv.conf', ...mounts.map((m) => m.destination)]);
    const spec = buildSpec({
      rootfs: merged,
      args: argv,
      env: [...processEnv, ...prepared.env],
      cwd: workdir,
      user,
      network,
      mounts,
      hostname: 'kiln-build',
      ...(env.ulimits?.length ? { rlimits: env.ulimits } : {}),
    });
    writeSpec(privateDir, spec);
    const tail = new Tail();
    const sink = (stream: 'stdout' | 'stderr') => new (require('node:stream') as typeof import('node:stream')).Writable({
      write(chunk: Buffer, _e, cb) {
        tail.add(chunk);
        env.progress({ type: 'output', stage: step.info.stage, step: step.info.step, stream, data: chunk });
        cb();
      },
    });
    let code: number;
    try {
      code = await env.runtime().run({ id: `kiln-build-${randomBytes(8).toString('hex')}`, bundle: privateDir, stdout: sink('stdout'), stderr: sink('stderr'), signal: env.signal });
    } catch (e) {
      if (e instanceof KilnError && e.code === 'E_RUNTIME') throw new KilnError('E_RUN_FAILED', `${where(ins)}: ${e.message}`, { cause: e, hint: e.hint });
      throw e;
    }
    removeStubs(stubs);
    if (code !== 0) {
      const lines = tail.lines().filter((l) => l !== '');
      const out = lines.length ? `\n${lines.map((l) => `  | ${l}`).join('\n')}` : '';
      const err = new KilnError('E_RUN_FAILED', `${where(ins)}: exit status ${code}${out}`);
      (err as KilnError & { exitStatus?: number }).exitStatus = code; // the CLI exits with it, as podman build does
      throw err;
    }
  } finally {
    prepared?.release();
    fs.rmSync(privateDir, { recursive: true, force: true });
  }
}

function expandMount(m: RunMount, word: (w: string) => string): RunMount {
  const opt = (v: string | undefined) => (v === undefined ? undefined : word(v));
  switch (m.type) {
    case 'bind':
      return { ...m, target: word(m.target), source: opt(m.source) };
    case 'cache':
      return { ...m, target: word(m.target), id: opt(m.id), source: opt(m.source) };
    case 'tmpfs':
      return { ...m, target: word(m.target) };
    default:
      return { ...m, id: word(m.id), target: opt(m.target), env: opt(m.env) };
  }
}

const SCRIPT_PATH = '/dev/pipes/script';

/** The body of a lone `RUN <<EOF` heredoc that starts with `#!`, else undefined. */
function shebangScript(ins: RunIns): string | undefined {
  const c = ins.command;
  if (c.form !== 'shell' || c.heredocs.length !== 1 || c.script !== c.heredocs[0].content) return undefined;
  return c.script.startsWith('#!') ? c.script : undefined;
}

/** /etc/hosts and /etc/resolv.conf for the container: the host's when it shares the host network. */
function hostFiles(network: 'host' | 'none'): MountRequest[] {
  if (network !== 'host') return [];
  return ['/etc/hosts', '/etc/resolv.conf'].filter((f) => fs.existsSync(f)).map((f) => ({ type: 'bind' as const, source: f, destination: f, readonly: true }));
}
