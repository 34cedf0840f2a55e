/**
 * Test plumbing: one container created under a real conmon 2.1.6 with runc, the way podman
 * launches it, so that attach and log tests talk to the real thing. (The product's launcher
 * lives in src/container/; this is only what the tests need.)
 *
 * Protocol (conmon's src/conmon.c and parent_pipe_fd.c): conmon is started with
 * _OCI_SYNCPIPE=3 and _OCI_STARTPIPE=4 in its environment. It blocks reading the start pipe,
 * then double-forks (the first process writes --conmon-pidfile and exits), binds the attach
 * socket (SOCKET_DIR/UUID is a symlink to the bundle; the socket is BUNDLE/attach), makes the
 * `ctl` fifo in the bundle, runs `runc create` and writes `{"data": PID}\n` to the sync pipe
 * (`{"data": -1, "message": "..."}` when create failed). The container then waits for
 * `runc start`; when it exits conmon closes every attach connection, writes EXIT_DIR/CID
 * holding the exit code and removes the attach socket.
 *
 * Every container gets a private directory (runc root, socket dir, exits, bundle, rootfs);
 * cleanup() deletes the container (`runc delete -f`), kills conmon and removes the directory,
 * and is safe to call more than once and after any failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildSpec, writeSpec } from '../../src/runtime/spec';
import { requireTool } from './env';

export interface ConmonContainer {
  id: string;
  /** the private directory holding everything below */
  dir: string;
  bundle: string;
  /** SOCKET_DIR/ID/attach, through conmon's symlink to the bundle */
  attachPath: string;
  /** BUNDLE/ctl, conmon's control fifo */
  ctlPath: string;
  /** k8s-file log */
  logPath: string;
  /** written by conmon when the container exited */
  exitFile: string;
  /** the container's init process */
  pid: number;
  conmonPid: number;
  /** `runc start`: runs the process that `runc create` prepared */
  start(): void;
  /** the exit code from the exit file, polled until it appears */
  waitExit(timeoutMs?: number): Promise<number>;
  cleanup(): void;
}

export interface ConmonOptions {
  args: string[];
  /** conmon -i: the container's stdin is a pipe fed from attach connections */
  stdin?: boolean;
  leaveStdinOpen?: boolean;
  /** conmon -t and process.terminal: the container gets a pty (output arrives as stdout) */
  terminal?: boolean;
  /** --socket-dir-path (default DIR/sock); may be longer than sun_path */
  socketDir?: (dir: string) => string;
}

let seq = 0;

/** A busybox rootfs: /bin/busybox from busybox-static and the applets the tests use. */
export function tinyRootfs(dir: string): string {
  requireTool('busybox', 'busybox-static');
  const busybox = fs.realpathSync('/bin/busybox'); // the static one, which runs without libraries
  const rootfs = path.join(dir, 'rootfs');
  fs.mkdirSync(path.join(rootfs, 'bin'), { recursive: true });
  fs.copyFileSync(busybox, path.join(rootfs, 'bin', 'busybox'));
  fs.chmodSync(path.join(rootfs, 'bin', 'busybox'), 0o755);
  for (const applet of ['sh', 'echo', 'cat', 'seq', 'sleep', 'stty']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet));
  return rootfs;
}

function isOurConmon(pid: number, id: string): boolean {
  try {
    const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return path.basename(argv[0] ?? '') === 'conmon' && argv.includes(id);
  } catch {
    return false;
  }
}

/** Creates (not starts) a container under conmon; see the file comment for the protocol. */
export async function createUnderConmon(opts: ConmonOptions): Promise<ConmonContainer> {
  const conmon = requireTool('conmon');
  const runc = requireTool('runc');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-conmon-'));
  const id = `kiln-t${process.pid}-${++seq}`;
  const runcRoot = path.join(dir, 'runc');
  const socketDir = opts.socketDir ? opts.socketDir(dir) : path.join(dir, 'sock');
  const bundle = path.join(dir, 'bundle');
  const exits = path.join(dir, 'exits');
  for (const d of [runcRoot, socketDir, bundle, exits]) fs.mkdirSync(d, { recursive: true });
  const spec = buildSpec({ rootfs: tinyRootfs(dir), args: opts.args, network: 'none' });
  if (opts.terminal) spec.process.terminal = true;
  writeSpec(bundle, spec);
  const logPath = path.join(bundle, 'ctr.log');
  const conmonPidfile = path.join(dir, 'conmon.pid');

  let conmonPid = 0;
  const cleanup = () => {
    spawnSync(runc, ['--root', runcRoot, 'delete', '-f', id], { stdio: 'ignore' });
    if (!conmonPid && fs.existsSync(conmonPidfile)) conmonPid = Number(fs.readFileSync(conmonPidfile, 'utf8')) || 0;
    // only while that pid is still this container's conmon (a pid is reused once it exited)
    if (conmonPid && isOurConmon(conmonPid, id)) {
      try {
        process.kill(conmonPid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  };

  try {
    const args = [
      '--api-version', '1',
      '-c', id, '-u', id, '-n', id,
      '-r', runc, '-b', bundle, '-p', path.join(bundle, 'pidfile'),
      '--exit-dir', exits,
      '-l', `k8s-file:${logPath}`,
      '--socket-dir-path', socketDir,
      '--conmon-pidfile', conmonPidfile,
      '--runtime-arg', '--root', '--runtime-arg', runcRoot,
      ...(opts.stdin ? ['-i'] : []),
      ...(opts.leaveStdinOpen ? ['--leave-stdin-open'] : []),
      ...(opts.terminal ? ['-t'] : []),
    ];
    const child = spawn(conmon, args, {
      stdio: ['ignore', 'pipe', 'pipe', 'pipe', 'pipe'],
      env: { ...process.env, _OCI_SYNCPIPE: '3', _OCI_STARTPIPE: '4' },
    });
    let diag = '';
    child.stdout!.on('data', (d: Buffer) => (diag += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (diag += d.toString()));
    const syncPipe = child.stdio[3] as NodeJS.ReadableStream & { destroy(): void };
    const startPipe = child.stdio[4] as NodeJS.WritableStream & { destroy(): void };

    const reply = new Promise<{ data: number; message?: string }>((resolve, reject) => {
      let buf = '';
      const timer = setTimeout(() => reject(new Error(`conmon sent nothing on its sync pipe in 20 s: ${diag}`)), 20000);
      syncPipe.on('data', (d: Buffer) => {
        buf += d.toString();
        const nl = buf.indexOf('\n');
        if (nl < 0) return;
        clearTimeout(timer);
        try {
          resolve(JSON.parse(buf.slice(0, nl)));
        } catch (e) {
          reject(e);
        }
      });
      syncPipe.on('end', () => {
        clearTimeout(timer);
        reject(new Error(`conmon closed its sync pipe without a pid: ${diag}`));
      });
      syncPipe.on('error', reject);
    });
    startPipe.end('0'); // conmon reads one message, then forks and creates the container
    const msg = await reply;
    syncPipe.destroy();
    startPipe.destroy();
    if (msg.data < 0) throw new Error(`conmon: runc create failed: ${msg.message ?? ''} ${diag}`);
    conmonPid = Number(fs.readFileSync(conmonPidfile, 'utf8'));

    const exitFile = path.join(exits, id);
    return {
      id,
      dir,
      bundle,
      attachPath: path.join(socketDir, id, 'attach'),
      ctlPath: path.join(bundle, 'ctl'),
      logPath,
      exitFile,
      pid: msg.data,
      conmonPid,
      start() {
        const r = spawnSync(runc, ['--root', runcRoot, 'start', id], { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`runc start ${id} exited ${r.status}: ${r.stderr}`);
      },
      async waitExit(timeoutMs = 20000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const text = fs.existsSync(exitFile) ? fs.readFileSync(exitFile, 'utf8') : '';
          if (text !== '') return Number(text);
          if (Date.now() > deadline) throw new Error(`no exit file ${exitFile} after ${timeoutMs} ms`);
          await sleep(20);
        }
      },
      cleanup,
    };
  } catch (e) {
    cleanup();
    throw e;
  }
}
