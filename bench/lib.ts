/** Helpers for bench/run.ts: running tools, hyperfine, temp stores and their clean-up. */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import * as path from 'node:path';

/** Repo root (this file runs as dist/bench/lib.js). */
export const REPO = path.resolve(__dirname, '..', '..');
export const KILN = path.join(REPO, 'bin', 'kiln');
/** Written by scripts/setup.sh: runc and clamped ulimits, which podman needs on this host. */
export const PODMAN_CONF = '/etc/kiln/podman-containers.conf';

export interface RunResult { stdout: string; stderr: string }

/** Run a program; throw with its stderr when it fails. */
export function run(cmd: string, args: readonly string[], opts: SpawnSyncOptions = {}): RunResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 256 << 20, ...opts });
  if (r.error) throw new Error(`${cmd}: ${r.error.message}`);
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  if (r.status !== 0) {
    const why = r.signal ? `signal ${r.signal}` : `exit ${r.status}`;
    throw new Error(`${[cmd, ...args].join(' ')}: ${why}${stderr.trim() ? `\n${stderr.trim().split('\n').slice(-5).join('\n')}` : ''}`);
  }
  return { stdout, stderr };
}

/** First line of `cmd args` or "unknown". */
export function versionOf(cmd: string, args: readonly string[] = ['--version']): string {
  try {
    return run(cmd, args).stdout.trim().split('\n')[0] || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Timed runs per side of a bench that times itself: `envVar` overrides the default 3. */
export function runsFromEnv(envVar: string): number {
  const n = Number(process.env[envVar] ?? 3);
  if (!Number.isInteger(n) || n < 2) throw new Error(`${envVar} must be an integer >= 2, got ${process.env[envVar]}`);
  return n;
}

export function countLines(s: string): number {
  return s.split('\n').filter((l) => l.trim() !== '').length;
}

export interface HyperfineResult { command: string; median: number; mean: number; stddev: number; min: number; max: number }

/**
 * Time the commands in one hyperfine run (no shell: each command is split on whitespace,
 * so paths must not contain spaces). Output of the commands goes to /dev/null.
 * Returns seconds, in the order of `commands`.
 */
export function hyperfine(commands: readonly string[], o: { warmup: number; runs: number; jsonOut: string; env?: NodeJS.ProcessEnv }): HyperfineResult[] {
  run('hyperfine', [
    '--shell=none', '--output=null', '--style=basic',
    '--warmup', String(o.warmup), '--runs', String(o.runs),
    '--export-json', o.jsonOut, ...commands,
  ], { env: o.env, stdio: ['ignore', 'inherit', 'pipe'] });
  const parsed = JSON.parse(readFileSync(o.jsonOut, 'utf8')) as { results: HyperfineResult[] };
  return parsed.results;
}

function unescapeMountinfo(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** Mount points at or below dir, deepest first. */
export function mountsUnder(dir: string): string[] {
  const root = path.resolve(dir);
  const out: string[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    if (f.length < 5) continue;
    const mp = unescapeMountinfo(f[4]);
    if (mp === root || mp.startsWith(root + '/')) out.push(mp);
  }
  return out.sort((a, b) => b.length - a.length);
}

/**
 * Remove a temp tree that tools may have mounted things in. (Deliberately not
 * `podman system reset`: besides the store it also deletes the host's podman networks,
 * which other tests may be using.)
 */
export function removeTree(dir: string): void {
  for (const mp of mountsUnder(dir)) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
  try {
    rmSync(dir, { recursive: true, force: true });
  } catch {
    // an immutable or busy leftover: try once more after unmounting again
    for (const mp of mountsUnder(dir)) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove leftovers of earlier, interrupted runs: parent/PREFIX-<pid>-* whose pid is gone. */
export function removeStale(parent: string, prefix: string): void {
  let names: string[] = [];
  try {
    names = readdirSync(parent);
  } catch {
    return;
  }
  for (const n of names) {
    const m = n.startsWith(`${prefix}-`) ? /^(\d+)-/.exec(n.slice(prefix.length + 1)) : null;
    if (m && Number(m[1]) !== process.pid && !alive(Number(m[1]))) removeTree(path.join(parent, n));
  }
}
