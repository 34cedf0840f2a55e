/**
 * Starting a container under conmon (Debian's conmon 2.x), as podman does, so that the
 * container outlives kiln: conmon daemonizes, runs `<runtime> create`, holds the container's
 * stdio (k8s-file log, attach socket, a pty with -t), writes the exit code to the exit dir when
 * the container's process ends, and then runs kiln's exit command (`kiln container cleanup ID`).
 *
 * Protocol (conmon's --api-version 1): conmon waits for a byte on _OCI_STARTPIPE before doing
 * anything; after `create` it writes {"data": PID} (or {"data": -1, "message": …}) as a line to
 * _OCI_SYNCPIPE. Call order: launchConmon() (created, not started) → attach if wanted →
 * startContainer() (`<runtime> start`) → the exit file appears when the process ends.
 */
import { spawn, execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import { KilnError } from '../errors';
import { startFailure } from '../runtime/runc';
import { attachSocketPath } from './attach';

export const CONMON = '/usr/bin/conmon';

export interface ConmonOptions {
  id: string;
  name: string;
  bundle: string;
  /** the OCI runtime binary and its --root */
  runtimePath: string;
  runtimeName: string;
  runtimeRoot: string;
  /** dir for pidfile, conmon.pid, exits/ and the attach socket dir */
  runDir: string;
  logPath: string;
  tty: boolean;
  /** keep stdin open for attach (-i) */
  stdin: boolean;
  /** argv of the command conmon runs after the container exited */
  exitCommand: string[];
  /** seconds conmon waits before running it (an attached kiln cleans up itself meanwhile) */
  exitDelay?: number;
}

export interface Launched {
  conmonPid: number;
  pid: number;
}

/** The exit file conmon writes (its content: the exit code). */
export function exitFile(runDir: string, id: string): string {
  return path.join(runDir, 'exits', id);
}

/** The attach socket conmon creates under --socket-dir-path for uuid `id` (attach.ts attachSocketPath). */
export function attachSocket(runDir: string, id: string): string {
  return attachSocketPath(path.join(runDir, 'sock'), id);
}

/** The control fifo (terminal resize) in the bundle. */
export function ctlFifo(bundle: string): string {
  return path.join(bundle, 'ctl');
}

function findConmon(): string {
  if (!fs.existsSync(CONMON)) throw new KilnError('E_RUNTIME', `conmon is not installed (${CONMON})`, { hint: 'apt-get install conmon' });
  return CONMON;
}

/**
 * Successive messages on a conmon pipe (JSON lines {"data": n, "message"?: s}; a line that is not
 * JSON becomes its message); undefined once the pipe closed.
 */
export function pipeMessages(sock: Socket): () => Promise<{ data?: number; message?: string } | undefined> {
  let buf = '';
  let ended = false;
  const waiting: (() => void)[] = [];
  const wake = () => waiting.splice(0).forEach((w) => w());
  sock.on('data', (d: Buffer) => {
    buf += d.toString();
    wake();
  });
  sock.on('close', () => {
    ended = true;
    wake();
  });
  sock.on('error', () => {
    ended = true;
    wake();
  });
  return async () => {
    for (;;) {
      const nl = buf.indexOf('\n');
      if (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          return JSON.parse(line) as { data?: number; message?: string };
        } catch {
          return { message: line };
        }
      }
      if (ended) return undefined;
      await new Promise<void>((r) => waiting.push(r));
    }
  };
}

/** Starts conmon, which creates (not starts) the container; resolves with conmon's and the container's pids. */
export async function launchConmon(o: ConmonOptions): Promise<Launched> {
  const conmon = findConmon();
  fs.mkdirSync(path.join(o.runDir, 'exits'), { recursive: true, mode: 0o700 });
  fs.mkdirSync(path.join(o.runDir, 'sock'), { recursive: true, mode: 0o700 });
  for (const f of [path.join(o.runDir, 'pidfile'), path.join(o.runDir, 'conmon.pid'), exitFile(o.runDir, o.id)]) fs.rmSync(f, { force: true });
  const args = [
    '--api-version', '1', '-c', o.id, '-u', o.id, '-r', o.runtimePath, '-b', o.bundle,
    '-p', path.join(o.runDir, 'pidfile'), '-n', o.name, '--exit-dir', path.join(o.runDir, 'exits'),
    '--socket-dir-path', path.join(o.runDir, 'sock'), '-l', `k8s-file:${o.logPath}`, '--log-level', 'error',
    '--conmon-pidfile', path.join(o.runDir, 'conmon.pid'), '--runtime-arg', '--root', '--runtime-arg', o.runtimeRoot,
    ...(o.tty ? ['-t'] : []), ...(o.stdin ? ['-i'] : []),
    '--exit-command', o.exitCommand[0]!, ...o.exitCommand.slice(1).flatMap((a) => ['--exit-command-arg', a]),
    ...(o.exitDelay ? ['--exit-delay', String(o.exitDelay)] : []),
  ];
  const child = spawn(conmon, args, {
    stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'],
    env: { ...process.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4' },
    detached: true,
  });
  const sync = child.stdio[3] as Socket;
  const start = child.stdio[4] as Socket;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (e) => reject(new KilnError('E_RUNTIME', `cannot run ${conmon}: ${e.message}`, { cause: e })));
  });
  await spawned;
  const next = pipeMessages(sync);
  start.end(Buffer.from([0]));
  const msg = (await next()) ?? {};
  sync.destroy();
  start.destroy();
  child.unref();
  if (typeof msg.data !== 'number' || msg.data <= 0) {
    const text = (msg.message ?? stderr.trim()) || 'conmon exited without reporting the container';
    throw startFailure(o.runtimeName, text.trim());
  }
  const conmonPid = Number(fs.readFileSync(path.join(o.runDir, 'conmon.pid'), 'utf8').trim());
  return { conmonPid, pid: msg.data };
}

/** Runs `<runtime> --root R <args…>`; rejects with its stderr. */
export function runtimeCall(runtimePath: string, runtimeRoot: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(runtimePath, ['--root', runtimeRoot, ...args], { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(Object.assign(new Error((stderr || err.message).trim()), { stderr }));
      else resolve(stdout);
    });
  });
}

/** The exit code conmon recorded, or undefined while the container has not exited. */
export function readExitCode(runDir: string, id: string): { code: number; at: number } | undefined {
  const f = exitFile(runDir, id);
  try {
    const text = fs.readFileSync(f, 'utf8').trim();
    if (text === '') return undefined;
    return { code: Number(text), at: fs.statSync(f).mtimeMs };
  } catch {
    return undefined;
  }
}

/** Whether `pid` is a live process (not a zombie). */
export function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/\) [ZX] /.test(stat);
  } catch {
    return false;
  }
}
