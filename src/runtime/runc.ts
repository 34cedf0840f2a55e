/**
 * OciRuntime over a runc-compatible command line (runc, crun, youki): every call spawns
 * `<runtime> --root <stateDir> …`, so the state of this store's containers lives in its own
 * runtime root and `<runtime> --root <stateDir> list` shows exactly kiln's containers.
 *
 * run() and exec() pass the caller's streams straight through (no terminal: the process
 * inherits the runtime's stdio). To tell "the runtime could not start the process" from "the
 * process exited non-zero", the runtime logs to a private file with `--log-format json`: an
 * error-level entry with a non-zero exit status is a RuntimeStartError (E_RUNTIME), anything
 * else is the process's exit status. The runtime's own error text also appears on the
 * process's stderr stream (it shares it); that cannot be avoided without a terminal.
 * Limitation: an exec that fails only at execve() (e.g. "exec format error" for a script
 * without #!) is reported by runc and crun after the process has started: exit status 1 and
 * the message on stderr, as with podman.
 */
import { spawn, execFile, type ChildProcess, type StdioOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { KilnError } from '../errors';
import { trackTemp } from '../util/cleanup';
import {
  RuntimeStartError,
  type ContainerState,
  type OciProcess,
  type OciRuntime,
  type RunOptions,
  type RuntimeStdio,
  type StartFailureReason,
} from './types';

/** After the runtime exits, how long its stdout/stderr may stay open (held by leftovers of an exec). */
const EXEC_LINGER_MS = 200;
const RUN_LINGER_MS = 5000;
/** After an abort, how long `kill` is retried before the runtime process itself is SIGKILLed. */
const ABORT_GRACE_MS = 5000;

const SIGNALS = os.constants.signals as Record<string, number>;

export class OciCliRuntime implements OciRuntime {
  /**
   * @param name   shown in messages ("runc: …")
   * @param path   the runtime binary
   * @param stateDir the runtime's --root (created 0700 if missing), one per store
   */
  constructor(
    readonly name: string,
    readonly path: string,
    readonly stateDir: string,
  ) {}

  /** The command line that runs the runtime with `args`; crun's hybrid-cgroup wrapper overrides it. */
  protected command(args: string[]): [string, string[]] {
    return [this.path, args];
  }

  async run(opts: RunOptions): Promise<number> {
    checkId(opts.id);
    if (opts.signal?.aborted) throw aborted(opts.id);
    // Checked first so that the cleanup below can never delete somebody else's container.
    if (fs.existsSync(path.join(this.stateDir, opts.id))) {
      throw new KilnError('E_RUNTIME', `${this.name}: container ${opts.id} already exists in ${this.stateDir}`, {
        hint: 'container ids must be unique among live containers of a runtime root',
      });
    }
    const { signal } = opts;
    let wasAborted = false;
    const result = await this.passthrough(['run', '--bundle', opts.bundle, opts.id], opts, RUN_LINGER_MS, (child, exited) => {
      if (!signal) return () => {};
      const onAbort = () => {
        wasAborted = true;
        void this.killUntilExit(opts.id, child, exited);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      return () => signal.removeEventListener('abort', onAbort);
    }).finally(() => this.cleanup(opts.id));
    if (wasAborted) throw aborted(opts.id);
    return this.outcome(result);
  }

  async exec(id: string, proc: OciProcess, stdio: RuntimeStdio): Promise<number> {
    checkId(id);
    const dir = this.scratchDir('exec-');
    try {
      const file = path.join(dir, 'process.json');
      fs.writeFileSync(file, JSON.stringify({ terminal: false, ...proc }));
      return this.outcome(await this.passthrough(['exec', '--process', file, id], stdio, EXEC_LINGER_MS));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  async kill(id: string, signal: string | number = 'KILL', all = false): Promise<void> {
    checkId(id);
    const sig = typeof signal === 'number' ? String(signal) : signal.toUpperCase().replace(/^SIG/, '');
    if (typeof signal === 'number' ? !Number.isInteger(signal) || signal <= 0 : !(`SIG${sig}` in SIGNALS)) {
      throw new KilnError('E_INVALID_ARGUMENT', `kill ${id}: unknown signal ${JSON.stringify(signal)}`);
    }
    const r = await this.call(['kill', ...(all ? ['--all'] : []), id, sig]);
    if (r.code !== 0) throw this.failure(`kill ${id}`, r.stderr);
  }

  async delete(id: string): Promise<void> {
    checkId(id);
    const r = await this.call(['delete', '--force', id]);
    if (r.code !== 0 && !notFound(r.stderr)) throw this.failure(`delete ${id}`, r.stderr);
  }

  async state(id: string): Promise<ContainerState | undefined> {
    checkId(id);
    const r = await this.call(['state', id]);
    if (r.code !== 0) {
      if (notFound(r.stderr)) return undefined;
      throw this.failure(`state ${id}`, r.stderr);
    }
    let s: Record<string, unknown>;
    try {
      s = JSON.parse(r.stdout) as Record<string, unknown>;
    } catch (e) {
      throw new KilnError('E_RUNTIME', `${this.name} state ${id}: output is not JSON: ${r.stdout.slice(0, 200)}`, { cause: e });
    }
    const status = String(s.status);
    return {
      id: String(s.id ?? id),
      status: (['creating', 'created', 'running', 'stopped'].includes(status) ? status : 'unknown') as ContainerState['status'],
      pid: typeof s.pid === 'number' ? s.pid : 0,
      bundle: String(s.bundle ?? ''),
    };
  }

  /**
   * `delete --force` unless the runtime already removed the container (runc and crun keep one
   * directory per container under --root, and `run` deletes it on a normal exit; the check
   * saves a runtime call per step). Errors are swallowed: this runs on the way out.
   */
  private async cleanup(id: string): Promise<void> {
    if (!fs.existsSync(path.join(this.stateDir, id))) return;
    await this.delete(id).catch(() => {});
  }

  /** Ids of the containers in this runtime root (`list --format json`). */
  async list(): Promise<string[]> {
    const r = await this.call(['list', '--format', 'json']);
    if (r.code !== 0) throw this.failure('list', r.stderr);
    const parsed = JSON.parse(r.stdout.trim() === '' ? 'null' : r.stdout) as { id: string }[] | null;
    return (parsed ?? []).map((c) => c.id);
  }

  /**
   * A per-call scratch dir (runtime log, exec process.json) next to the state dir, under the
   * store's runroot: what a process killed before its `finally` leaves stays in the runroot
   * (tmpfs by default; a test's sandbox), not in /tmp. Not inside the state dir:
   * the runtime lists every dir there as a container.
   */
  private scratchDir(prefix: string): string {
    const parent = `${this.stateDir}-scratch`;
    fs.mkdirSync(parent, { recursive: true, mode: 0o700 });
    const dir = fs.mkdtempSync(path.join(parent, prefix));
    trackTemp(dir);
    return dir;
  }

  /** Spawns the runtime with the caller's stdio and a JSON log; resolves when it has exited. */
  private async passthrough(
    args: string[],
    stdio: RuntimeStdio,
    lingerMs: number,
    onSpawn?: (child: ChildProcess, exited: Promise<unknown>) => () => void,
  ): Promise<Exit & { log: string }> {
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    const dir = this.scratchDir('rt-');
    const logFile = path.join(dir, 'log.json');
    try {
      const [cmd, argv] = this.command(['--root', this.stateDir, '--log', logFile, '--log-format', 'json', ...args]);
      const child = spawn(cmd, argv, { stdio: stdioOf(stdio), env: runtimeEnv() });
      const detach = connect(child, stdio);
      const exited = waitExit(child, lingerMs);
      const off = onSpawn?.(child, exited) ?? (() => {});
      const exit = await exited.finally(() => {
        off();
        detach();
      });
      let log = '';
      try {
        log = fs.readFileSync(logFile, 'utf8');
      } catch {
        /* the runtime wrote nothing */
      }
      return { ...exit, log };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  /** The process's exit status, or the runtime's failure as an error. */
  private outcome(r: Exit & { log: string }): number {
    if (r.error) throw new KilnError('E_RUNTIME', `${this.name}: cannot start ${this.path}: ${r.error.message}`, { cause: r.error });
    if (r.signal) throw new KilnError('E_RUNTIME', `${this.name} was killed by ${r.signal}`);
    const code = r.code ?? 0;
    if (code === 0) return 0;
    const errors = logErrors(r.log);
    if (errors.length === 0) return code;
    throw startFailure(this.name, errors.join('; '));
  }

  /** Sends KILL until the runtime process has exited; SIGKILLs the runtime itself after a grace period. */
  private async killUntilExit(id: string, child: ChildProcess, exited: Promise<unknown>): Promise<void> {
    let done = false;
    void exited.finally(() => {
      done = true;
    });
    const start = Date.now();
    while (!done) {
      await this.call(['kill', id, 'KILL']).catch(() => undefined);
      if (done) break;
      if (Date.now() - start > ABORT_GRACE_MS) child.kill('SIGKILL');
      await Promise.race([exited, sleep(50)]);
    }
  }

  /** Runs the runtime with captured output. */
  private call(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    fs.mkdirSync(this.stateDir, { recursive: true, mode: 0o700 });
    const [cmd, argv] = this.command(['--root', this.stateDir, ...args]);
    return new Promise((resolve, reject) => {
      execFile(cmd, argv, { encoding: 'utf8', maxBuffer: 16 << 20, env: runtimeEnv() }, (err, stdout, stderr) => {
        if (err && typeof (err as NodeJS.ErrnoException).code === 'string') {
          reject(new KilnError('E_RUNTIME', `${this.name}: cannot start ${this.path}: ${err.message}`, { cause: err }));
          return;
        }
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      });
    });
  }

  private failure(what: string, stderr: string): KilnError {
    return new KilnError('E_RUNTIME', `${this.name} ${what}: ${cleanStderr(stderr) || 'failed without a message'}`);
  }
}

/** runc, found on PATH unless given. */
export class RuncRuntime extends OciCliRuntime {
  constructor(stateDir: string, runcPath = 'runc') {
    super('runc', runcPath, stateDir);
  }
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/**
 * This process's environment without the variables by which runc/crun would hand a service
 * manager's sockets to the container: NOTIFY_SOCKET (the runtime would wait for the container's
 * READY=1) and LISTEN_FDS & co. (socket-activation fds would be passed into it).
 */
function runtimeEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of ['NOTIFY_SOCKET', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[k];
  return env;
}

function stdioOf(s: RuntimeStdio): StdioOptions {
  const out = (w: Writable | 'inherit' | 'ignore') => (w === 'inherit' || w === 'ignore' ? w : 'pipe');
  return [s.stdin === undefined ? 'ignore' : s.stdin === 'inherit' ? 'inherit' : 'pipe', out(s.stdout), out(s.stderr)];
}

/** Pipes the caller's streams to the child (never ending the caller's writables); returns the undo. */
function connect(child: ChildProcess, s: RuntimeStdio): () => void {
  const stdin = typeof s.stdin === 'object' ? (s.stdin as Readable) : undefined;
  if (stdin && child.stdin) {
    child.stdin.on('error', () => {}); // EPIPE when the process does not read its input
    stdin.pipe(child.stdin);
  }
  if (typeof s.stdout === 'object' && child.stdout) child.stdout.pipe(s.stdout, { end: false });
  if (typeof s.stderr === 'object' && child.stderr) child.stderr.pipe(s.stderr, { end: false });
  return () => {
    if (stdin && child.stdin) stdin.unpipe(child.stdin);
  };
}

/** Resolves once the child has exited and its output was drained (or lingerMs passed). */
function waitExit(child: ChildProcess, lingerMs: number): Promise<Exit> {
  return new Promise((resolve) => {
    let exit: Exit | undefined;
    let timer: NodeJS.Timeout | undefined;
    const finish = (e: Exit) => {
      if (timer) clearTimeout(timer);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve(e);
    };
    child.once('error', (error) => finish({ code: null, signal: null, error }));
    // 'close' follows 'exit' once stdout/stderr are closed; an exec's background children may hold them open
    child.once('close', () => exit && finish(exit));
    child.once('exit', (code, signal) => {
      exit = { code, signal };
      timer = setTimeout(() => finish(exit as Exit), lingerMs);
    });
  });
}

/** Messages of error-level entries of a runtime's JSON log. */
export function logErrors(log: string): string[] {
  const out: string[] = [];
  for (const line of log.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const e = JSON.parse(line) as { level?: string; msg?: string };
      if ((e.level === 'error' || e.level === 'fatal') && e.msg && !out.includes(e.msg)) out.push(e.msg);
    } catch {
      /* not a JSON line */
    }
  }
  return out;
}

/**
 * The RuntimeStartError for a runtime's error text (`<runtime> run|exec|create|start failed: `
 * and logrus decoration dropped), classified (127/126/125) with a hint saying what to check; for every caller that
 * gets a runtime's start failure: this adapter, conmon's sync pipe, a detached exec's log.
 */
export function startFailure(runtime: string, text: string): RuntimeStartError {
  const message = cleanStderr(text).replace(new RegExp(`^${runtime} (run|exec|create|start) failed: `), '');
  const reason = classify(message);
  const hint =
    reason === 'not-found' ? 'the command is not in the image: check its spelling, the image\'s PATH, or give an absolute path'
    : reason === 'not-executable' ? 'the command exists but cannot be executed: check its mode bits and that it is a binary or has a #! line'
    : undefined;
  return new RuntimeStartError(runtime, message, reason, hint);
}

/** runc's and crun's wordings for a missing or unexecutable command. */
export function classify(message: string): StartFailureReason {
  if (/executable file .*not found|exec: "[^"]*": stat [^:]*: no such file or directory/i.test(message)) return 'not-found';
  if (/exec: "[^"]*": (permission denied|exec format error)|open executable: |exec container process/i.test(message)) return 'not-executable';
  return 'other';
}

function notFound(stderr: string): boolean {
  return /does not exist|not found|no such file or directory/i.test(stderr);
}

/** A runtime's stderr without logrus decoration (`time=… level=error msg="…"`). */
function cleanStderr(stderr: string): string {
  return stderr
    .trim()
    .split('\n')
    .map((l) => {
      const m = /msg="((?:[^"\\]|\\.)*)"/.exec(l);
      return m ? (m[1] as string).replace(/\\"/g, '"') : l;
    })
    .join('; ');
}

function checkId(id: string): void {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}$/.test(id)) {
    throw new KilnError('E_INVALID_ARGUMENT', `container id ${JSON.stringify(id)} must be 1-128 letters, digits, '_', '.', '+' or '-', starting with a letter or digit`);
  }
}

function aborted(id: string): KilnError {
  return new KilnError('E_RUN_ABORTED', `container ${id} was aborted`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
