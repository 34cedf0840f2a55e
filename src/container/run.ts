/**
 * `kiln run` in the foreground and `kiln start -a`: the container's output through conmon's
 * attach socket (connected after conmon created it and before it starts, so nothing is lost),
 * stdin forwarded with -i, the terminal raw and its size passed on with -t, signals to kiln
 * forwarded to the container (podman's --sig-proxy), and the exit code returned once conmon
 * recorded it. With --rm the container is removed afterwards (the exit command may have done
 * it already).
 */
import type { Readable, Writable } from 'node:stream';
import type { EngineContext } from '../engine/context';
import { isKilnError, KilnError } from '../errors';
import { attachContainer, resizeTerminal, type AttachSession } from './attach';
import { attachSocket, ctlFifo } from './conmon';
import { createContainer, type CreateOptions } from './create';
import { cleanupContainer, killContainer, lookup, removeContainer, startContainer, waitContainer } from './lifecycle';
import { bundleDir, runDir } from './rootfs';

/** Passes the terminal's size on; a failure (conmon gone) only loses the resize. */
function resize(ctl: string, out: Writable & { columns?: number; rows?: number }): void {
  if (!out.columns || !out.rows) return;
  try {
    resizeTerminal(ctl, out.rows, out.columns);
  } catch {
    /* the container is gone or never had a terminal */
  }
}

export interface RunIO {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
}

const PROXIED = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'] as const;

/** Starts `ref` attached; resolves with its exit code. */
export async function startAttached(ctx: EngineContext, ref: string, io: RunIO): Promise<number> {
  let session: AttachSession | undefined;
  const c = await startContainer(ctx, ref, {
    attached: true,
    beforeStart: async (c, dir) => {
      session = await attachContainer(attachSocket(dir, c.id), {
        ...(c.config.interactive && io.stdin ? { stdin: io.stdin } : {}),
        stdout: io.stdout,
        stderr: io.stderr,
      });
      if (c.config.tty) resize(ctlFifo(bundleDir(ctx.store, c.id)), io.stdout);
    },
  });
  const handlers = new Map<string, () => void>();
  for (const sig of PROXIED) {
    const h = sig === 'SIGWINCH'
      ? () => {
          if (c.config.tty) resize(ctlFifo(bundleDir(ctx.store, c.id)), io.stdout);
        }
      : () => void killContainer(ctx, c.id, sig).catch(() => undefined);
    handlers.set(sig, h);
    process.on(sig, h);
  }
  try {
    await session?.closed;
    return await waitContainer(ctx, c.id);
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h);
    session?.close();
  }
}

/**
 * `kiln attach`: the output (and with -i containers, stdin) of a running container until it
 * exits; resolves with its exit code. Detaching is closing kiln: the container keeps running.
 */
export async function attachRunning(ctx: EngineContext, ref: string, io: RunIO & { noStdin?: boolean }): Promise<number> {
  const c = lookup(ctx, ref);
  if (c.state.status !== 'running') {
    throw new KilnError('E_CONTAINER_STATE', `you can only attach to running containers: container state improper`);
  }
  const session = await attachContainer(attachSocket(runDir(ctx.store, c.id), c.id), {
    ...(c.config.interactive && io.stdin && !io.noStdin ? { stdin: io.stdin } : {}),
    stdout: io.stdout,
    stderr: io.stderr,
  });
  if (c.config.tty) resize(ctlFifo(bundleDir(ctx.store, c.id)), io.stdout);
  try {
    await session.closed;
    return await waitContainer(ctx, c.id);
  } finally {
    session.close();
  }
}

/**
 * Creates and runs a container. Detached: resolves once it started, with its ID. Attached:
 * resolves with its exit code when it ended (and, with --rm, was removed).
 */
export async function runContainer(ctx: EngineContext, o: CreateOptions & { detach?: boolean }, io: RunIO): Promise<{ id: string; exitCode?: number }> {
  const c = createContainer(ctx, o);
  try {
    if (o.detach) {
      await startContainer(ctx, c.id);
      return { id: c.id };
    }
    const exitCode = await startAttached(ctx, c.id, io);
    if (c.config.autoRemove) await removeGone(ctx, c.id);
    else await cleanupContainer(ctx, c.id).catch(() => undefined);
    return { id: c.id, exitCode };
  } catch (e) {
    if (c.config.autoRemove) await removeGone(ctx, c.id);
    throw e;
  }
}

/** Removes the container unless somebody (conmon's exit command) already did. */
async function removeGone(ctx: EngineContext, id: string): Promise<void> {
  try {
    await removeContainer(ctx, id, { force: true, volumes: true });
  } catch (e) {
    if (!isKilnError(e, 'E_CONTAINER_UNKNOWN')) throw e;
  }
}
