/**
 * `kiln exec -t`: an exec session run by conmon (--exec --exec-attach), which gives the process a
 * terminal (runc's console socket) and serves it on an attach socket of the session's own.
 *
 * Protocol (conmon --api-version 1, as podman drives it): fds 3/4/5 are _OCI_SYNCPIPE,
 * _OCI_STARTPIPE, _OCI_ATTACHPIPE. A first byte on the start pipe lets conmon set up; it
 * reports on the attach pipe when the session's attach socket listens; the client connects and
 * sends a second byte on the start pipe; conmon runs `<runtime> exec`, reports {"data": PID} on
 * the sync pipe, and {"data": EXIT CODE} when the process ended. Everything of the session lives
 * in <runDir>/exec/<session> and is removed afterwards.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { KilnError } from '../errors';
import type { OciProcess } from '../runtime/types';
import { startFailure } from '../runtime/runc';
import { attachContainer, attachSocketPath, resizeTerminal } from './attach';
import { CONMON, pipeMessages } from './conmon';
import type { Runtime } from './lifecycle';

export interface TerminalExec {
  containerId: string;
  name: string;
  bundle: string;
  runDir: string;
  runtime: Runtime;
  process: OciProcess;
  stdin?: Readable;
  stdout: Writable;
}

/** Runs the process with a terminal under conmon; resolves with its exit code. */
export async function execWithTerminal(o: TerminalExec): Promise<number> {
  const session = randomBytes(32).toString('hex');
  const dir = path.join(o.runDir, 'exec', session);
  fs.mkdirSync(path.join(dir, 'exit'), { recursive: true, mode: 0o700 });
  try {
    const spec = path.join(dir, 'process.json');
    fs.writeFileSync(spec, JSON.stringify({ ...o.process, terminal: true }));
    const sockDir = path.join(o.runDir, 'sock');
    fs.mkdirSync(sockDir, { recursive: true, mode: 0o700 });
    const args = [
      '--api-version', '1', '-c', o.containerId, '-u', session, '-r', o.runtime.path, '-b', o.bundle,
      '-p', path.join(dir, 'pid'), '-n', o.name, '--exit-dir', path.join(dir, 'exit'), '--socket-dir-path', sockDir,
      '-l', `k8s-file:${path.join(dir, 'log')}`, '--log-level', 'error', '-e', '--exec-attach', '--exec-process-spec', spec, '-t',
      ...(o.stdin ? ['-i'] : []), '--runtime-arg', '--root', '--runtime-arg', o.runtime.root,
    ];
    const child = spawn(CONMON, args, { stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe', 'pipe'], env: { ...process.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4', _OCI_ATTACHPIPE: '5' }, detached: true });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (e) => reject(new KilnError('E_RUNTIME', `cannot run ${CONMON}: ${e.message}`, { cause: e })));
    });
    const stdio = child.stdio as unknown as Socket[];
    const [syncSock, startSock, attachPipe] = [stdio[3]!, stdio[4]!, stdio[5]!];
    const sync = pipeMessages(syncSock);
    const attached = pipeMessages(attachPipe);
    child.unref();
    try {
      startSock.write(Buffer.from([0]));
      const ready = await attached();
      if (ready === undefined || (ready.data ?? 0) < 0) throw new KilnError('E_RUNTIME', `conmon could not set up the exec session: ${ready?.message ?? 'no reply'}`);
      const sessionIO = await attachContainer(attachSocketPath(sockDir, session), { ...(o.stdin ? { stdin: o.stdin } : {}), stdout: o.stdout, stderr: o.stdout });
      try {
        startSock.end(Buffer.from([0]));
        const started = await sync();
        if (started === undefined || started.data === undefined || started.data <= 0) {
          const msg = started?.message ?? 'conmon ended without starting the process';
          throw startFailure(o.runtime.name, msg);
        }
        const out = o.stdout as Writable & { columns?: number; rows?: number };
        if (out.columns && out.rows) {
          try {
            resizeTerminal(path.join(o.bundle, 'ctl'), out.rows, out.columns);
          } catch {
            /* the session's terminal keeps its default size */
          }
        }
        await sessionIO.closed;
        const ended = await sync();
        if (ended?.data !== undefined) return ended.data;
        const code = fs.readFileSync(path.join(dir, 'exit', session), 'utf8').trim();
        return Number(code);
      } finally {
        sessionIO.close();
      }
    } finally {
      for (const s of [syncSock, startSock, attachPipe]) s.destroy();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
