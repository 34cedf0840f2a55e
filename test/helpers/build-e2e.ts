/**
 * Plumbing for the end-to-end `kiln build` suites (build-cache, build-parallel, build-interop):
 * a private store with the busybox base image, builds run through the real CLI with
 * `--progress=json` and their events folded into one outcome per step, files read out of a
 * built image, and the leftovers a cancelled build must not leave (mounts, runc containers,
 * processes). Nothing here knows how kiln builds; it only looks from the outside.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { sandbox, busyboxTar, requireTool, KILN, type Sandbox } from './env';

/** The name every suite's Containerfiles build FROM, as in Containerfile.examples/. */
export const BASE = 'localhost/busybox:latest';

/** A private store with the busybox base image imported as `localhost/busybox:latest`. */
export async function baseSandbox(prefix: string): Promise<Sandbox> {
  const sb = sandbox(prefix);
  try {
    const tar = await busyboxTar(sb.dir);
    sb.ok(['import', '--change', 'CMD ["/bin/sh"]', tar, BASE]);
  } catch (e) {
    sb.cleanup();
    throw e;
  }
  return sb;
}

/**
 * Removes the sandbox even after a test failed mid-build: kills and deletes its runc containers,
 * lazily unmounts whatever is still mounted under it (deepest first), then deletes it.
 */
export function teardown(sb: Sandbox | undefined): void {
  if (!sb) return;
  killRuncContainers(sb.runroot);
  for (const m of mountsUnder(sb.dir).sort().reverse()) spawnSync('umount', ['-l', m]);
  sb.cleanup();
}

/** Writes `files` (relative path → content) under `dir`, creating directories; returns `dir`. */
export function writeTree(dir: string, files: Record<string, string>): string {
  for (const [rel, content] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    fs.writeFileSync(p, content);
  }
  return dir;
}

/** One `--progress=json` event; the fields are those of src/build/progress.ts ProgressEvent. */
export interface BuildEvent {
  type: string;
  stage?: number;
  step?: number;
  text?: string;
  reason?: string;
  data?: string;
  [k: string]: unknown;
}

export interface BuildRun {
  status: number | null;
  /** the image ID (the last stdout line) when the build succeeded */
  id?: string;
  events: BuildEvent[];
  stdout: string;
  stderr: string;
}

/** Runs kiln with the sandbox's store from `cwd` (the README's commands are relative to the repo). */
export function kilnAt(sb: Sandbox, args: string[], cwd: string): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [KILN, '--root', sb.root, '--runroot', sb.runroot, ...args], { cwd, encoding: 'utf8', maxBuffer: 256 << 20 });
}

/** `kiln build --progress=json ARGS`; never throws for a failed build (check `status`). */
export function buildJson(sb: Sandbox, args: string[]): BuildRun {
  const r = sb.kiln(['build', '--progress=json', ...args]);
  const events: BuildEvent[] = [];
  let id: string | undefined;
  for (const line of r.stdout.split('\n')) {
    if (line.startsWith('{')) events.push(JSON.parse(line) as BuildEvent);
    else if (/^[0-9a-f]{64}$/.test(line.trim())) id = line.trim();
  }
  return { status: r.status, id: r.status === 0 ? id : undefined, events, stdout: r.stdout, stderr: r.stderr };
}

/** Like buildJson but throws with kiln's stderr unless the build succeeded. */
export function buildOk(sb: Sandbox, args: string[]): BuildRun & { id: string } {
  const r = buildJson(sb, args);
  if (r.status !== 0 || r.id === undefined) throw new Error(`kiln build ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r as BuildRun & { id: string };
}

/**
 * What happened to one step: `cached` when kiln reported step-cached for it, `ran` when it
 * reported a cache-miss reason and the step finished, `meta` for steps that never touch the
 * cache (FROM, ARG, ENV, CMD, ...).
 */
export interface StepOutcome {
  stage: number;
  step: number;
  text: string;
  outcome: 'cached' | 'ran' | 'meta';
  reason?: string;
}

/** One outcome per started step, in the order the steps started. */
export function stepOutcomes(events: BuildEvent[]): StepOutcome[] {
  const key = (e: BuildEvent) => `${e.stage}/${e.step}`;
  const byKey = new Map<string, StepOutcome>();
  const done = new Set<string>();
  for (const e of events) {
    if (e.stage === undefined || e.step === undefined) continue;
    const k = key(e);
    if (e.type === 'step-start') byKey.set(k, { stage: e.stage, step: e.step, text: e.text ?? '', outcome: 'meta' });
    const o = byKey.get(k);
    if (!o) continue;
    if (e.type === 'step-cached') o.outcome = 'cached';
    else if (e.type === 'cache-miss-reason') o.reason = e.reason;
    else if (e.type === 'step-done') done.add(k);
  }
  for (const [k, o] of byKey) if (o.outcome === 'meta' && o.reason !== undefined && done.has(k)) o.outcome = 'ran';
  return [...byKey.values()];
}

/** The outcomes of the steps that make layers (RUN, COPY, ADD). */
export function layerSteps(events: BuildEvent[]): StepOutcome[] {
  return stepOutcomes(events).filter((o) => /^(RUN|COPY|ADD)\b/i.test(o.text));
}

/** The single outcome whose text is `text` (asserting there is exactly one). */
export function stepByText(events: BuildEvent[], text: string): StepOutcome {
  const all = stepOutcomes(events).filter((o) => o.text === text);
  if (all.length !== 1) throw new Error(`expected one step "${text}", found ${all.length} in: ${stepOutcomes(events).map((o) => o.text).join(' | ')}`);
  return all[0]!;
}

/** Reads files out of an image through `kiln image mount` (unmounted again before returning). */
export function readImageFiles(sb: Sandbox, image: string, files: string[]): Record<string, string> {
  const root = sb.ok(['image', 'mount', image]).trim();
  try {
    const out: Record<string, string> = {};
    for (const f of files) out[f] = fs.readFileSync(path.join(root, f), 'utf8');
    return out;
  } finally {
    sb.ok(['image', 'unmount', image]);
  }
}

/** Mount points under `dir` in this process's mount namespace (/proc/self/mountinfo, octal escapes decoded). */
export function mountsUnder(dir: string): string[] {
  const real = fs.realpathSync(dir);
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined)
    .map((m) => m.replace(/\\([0-7]{3})/g, (_s, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((m) => m === real || m.startsWith(`${real}/`) || m === dir || m.startsWith(`${dir}/`));
}

/** Ids of the containers runc knows in the store's runtime root (`<runroot>/runtime`). */
export function runcContainers(runroot: string): string[] {
  requireTool('runc');
  const state = path.join(runroot, 'runtime');
  if (!fs.existsSync(state)) return [];
  const r = spawnSync('runc', ['--root', state, 'list', '--quiet'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`runc --root ${state} list exited ${r.status}: ${r.stderr}`);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

/** Kills and deletes every runc container of the store (test clean-up after a kill -9). */
export function killRuncContainers(runroot: string): void {
  const state = path.join(runroot, 'runtime');
  for (const id of runcContainers(runroot)) {
    spawnSync('runc', ['--root', state, 'kill', id, 'KILL']);
    for (let i = 0; i < 50; i++) {
      if (spawnSync('runc', ['--root', state, 'delete', '--force', id]).status === 0) break;
      spawnSync('sleep', ['0.1']);
    }
  }
}

export interface ProcInfo {
  pid: number;
  argv: string[];
}

/**
 * Live processes whose environment holds `NAME=VALUE` exactly: a Containerfile's
 * `ENV NAME=VALUE` with a value unique to the test marks the processes of its RUN steps
 * (their /proc/PID/root says nothing from outside the container's mount namespace).
 */
export function processesWithEnv(entry: string): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const env = fs.readFileSync(`/proc/${d}/environ`, 'latin1').split('\0');
      if (!env.includes(entry)) continue;
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0').filter((a) => a !== '');
      if (argv.length === 0) continue; // a zombie: already dead, only waiting to be reaped
      out.push({ pid: Number(d), argv });
    } catch {
      /* the process went away while we looked */
    }
  }
  return out;
}

/** Starts `kiln build` in the background with the sandbox's store; stdout and stderr are collected. */
export function spawnBuild(sb: Sandbox, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(process.execPath, [KILN, '--root', sb.root, '--runroot', sb.runroot, 'build', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
  return { child, output: () => out };
}

/** Resolves when `test(output())` holds; rejects after `ms` or if the child exits first. */
export function waitFor(child: ChildProcess, output: () => string, test: (s: string) => boolean, ms: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = setInterval(() => {
      if (test(output())) return finish();
      if (child.exitCode !== null || child.signalCode !== null) return finish(new Error(`kiln exited (${child.exitCode ?? child.signalCode}) before ${what}:\n${output()}`));
      if (Date.now() - started > ms) return finish(new Error(`timed out after ${ms} ms waiting for ${what}:\n${output()}`));
    }, 25);
    function finish(e?: Error): void {
      clearInterval(tick);
      if (e) reject(e);
      else resolve();
    }
  });
}

/** The child's exit, or a rejection after `ms` (the child is then SIGKILLed). */
export function exitOf(child: ChildProcess, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve({ code: child.exitCode, signal: child.signalCode, ms: 0 });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`process ${child.pid} did not exit within ${ms} ms`));
    }, ms);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, ms: Date.now() - t0 });
    });
  });
}

/** Polls `cond` every 50 ms for up to `ms`; returns its last value. */
export async function eventually<T>(cond: () => T, ok: (v: T) => boolean, ms: number): Promise<T> {
  const t0 = Date.now();
  let v = cond();
  while (!ok(v) && Date.now() - t0 < ms) {
    await new Promise((r) => setTimeout(r, 50));
    v = cond();
  }
  return v;
}
