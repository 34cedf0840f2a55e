/**
 * `kiln exec`: another process in a running container, through the OCI runtime's exec (the
 * process gets the container's capabilities, no-new-privileges setting, environment merged
 * with -e, user from -u or the container's, resolved in its rootfs). Attached: streams passed
 * through, resolves with the process's exit code (126/127 as podman when it cannot be run).
 * Detached (-d): started with the runtime's --detach, resolves at once. With a terminal (-t) the
 * session runs under conmon (conmon-exec.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { KilnError } from '../errors';
import type { EngineContext } from '../engine/context';
import { openRuntime } from '../runtime/detect';
import { clampRlimits, DEFAULT_RLIMITS, resolveUser } from '../runtime/spec';
import type { OciProcess } from '../runtime/types';
import { startFailure } from '../runtime/runc';
import { spawn } from 'node:child_process';
import { containerRuntime, lookup } from './lifecycle';
import { bundleDir, mergedDir, runDir } from './rootfs';
import { effectiveCapabilities } from './spec';
import { mergeEnv, parseEnv } from './flags';

export interface ExecOptions {
  container: string;
  command: string[];
  env?: string[];
  envFiles?: string[];
  user?: string;
  workdir?: string;
  detach?: boolean;
  interactive?: boolean;
  /** a terminal for the process (conmon-exec.ts) */
  tty?: boolean;
  privileged?: boolean;
}

export async function execInContainer(ctx: EngineContext, o: ExecOptions, io: { stdin?: Readable; stdout: Writable; stderr: Writable }): Promise<number> {
  if (o.command.length === 0) throw new KilnError('E_INVALID_ARGUMENT', 'exec requires the name or ID of a container and a command to run');
  const c = await lookup(ctx, o.container);
  if (c.state.status !== 'running') {
    throw new KilnError('E_CONTAINER_STATE', `can only create exec sessions on running containers: container state improper`);
  }
  const rootfs = mergedDir(ctx.store, c.id);
  const user = resolveUser(rootfs, o.user ?? c.config.user);
  const caps = o.privileged ? effectiveCapabilities({ ...c.config, privileged: true }) : effectiveCapabilities(c.config);
  const cwd = o.workdir ?? c.config.workdir;
  if (!cwd.startsWith('/')) throw new KilnError('E_INVALID_ARGUMENT', `--workdir ${JSON.stringify(cwd)}: must be an absolute path`);
  const proc: OciProcess = {
    terminal: false,
    user: { uid: user.uid, gid: user.gid, ...(user.additionalGids.length ? { additionalGids: user.additionalGids } : {}) },
    args: o.command,
    env: mergeEnv(c.config.env.some((e) => e.startsWith('PATH=')) ? c.config.env : ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', ...c.config.env], parseEnv(o.env ?? [], o.envFiles ?? [])),
    cwd,
    capabilities: { bounding: caps, effective: caps, permitted: caps },
    rlimits: clampRlimits(DEFAULT_RLIMITS),
    noNewPrivileges: c.config.noNewPrivileges,
  };
  const rt = containerRuntime(ctx.store);
  if (o.detach) {
    const dir = fs.mkdtempSync(path.join(ctx.store.workDir(), 'exec-'));
    try {
      const file = path.join(dir, 'process.json');
      fs.writeFileSync(file, JSON.stringify(proc));
      // the detached process inherits the runtime's stdio: /dev/null, never a pipe of ours
      // (kiln would wait for it to close); the runtime's errors go to a log file
      const log = path.join(dir, 'runtime.log');
      const code = await new Promise<number | null>((resolve, reject) => {
        const child = spawn(rt.path, ['--root', rt.root, '--log', log, '--log-format', 'json', 'exec', '--detach', '--process', file, c.id], { stdio: 'ignore' });
        child.once('error', reject);
        child.once('exit', (n) => resolve(n));
      });
      if (code !== 0) {
        const lines = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').filter(Boolean) : [];
        const msgs = lines.map((l) => {
          try {
            return (JSON.parse(l) as { msg?: string }).msg ?? l;
          } catch {
            return l;
          }
        });
        const msg = msgs[msgs.length - 1] ?? `exit status ${code}`;
        throw startFailure(rt.name, msg);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    return 0;
  }
  if (o.tty) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { execWithTerminal } = require('./conmon-exec') as typeof import('./conmon-exec');
    return execWithTerminal({
      containerId: c.id, name: c.name, bundle: bundleDir(ctx.store, c.id), runDir: runDir(ctx.store, c.id), runtime: rt, process: proc,
      ...(o.interactive && io.stdin ? { stdin: io.stdin } : {}), stdout: io.stdout,
    });
  }
  const runtime = openRuntime(rt.root);
  return runtime.exec(c.id, proc, { ...(o.interactive && io.stdin ? { stdin: io.stdin } : {}), stdout: io.stdout, stderr: io.stderr });
}
