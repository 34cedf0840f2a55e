/**
 * Container lifecycle over conmon and the OCI runtime: start, wait, stop, kill, remove, and
 * the exit command conmon runs (cleanup). The SQLite state is made to agree with what really
 * happened by syncState(), called before any decision: conmon writes the exit code to
 * <runroot>/containers/<id>/exits/<id> even when no kiln runs, so a container that died
 * meanwhile shows as exited with its code the next time kiln looks.
 *
 * Every state change is a read-modify-write under the store's write lock
 * (ContainerStore.update); cleanup is idempotent, so the exit command and a waiting `kiln run`
 * or `kiln stop` may both do it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { KilnError } from '../errors';
import { humanDuration } from '../format/units';
import type { EngineContext } from '../engine/context';
import { packageRoot } from '../paths';
import { chooseRuntime } from '../runtime/detect';
import type { Store } from '../store/store';
import { alive, launchConmon, readExitCode, runtimeCall } from './conmon';
import { bundleDir, mountRootfs, removeDirs, runDir, unmountRootfs } from './rootfs';
import { writeBundle } from './spec';
import type { ContainerRecord, ContainerState } from './types';
import { anonymousVolumes, prepareVolumes, removeIfUnused } from './volume-mounts';

export interface Runtime {
  name: string;
  path: string;
  root: string;
}

/** The OCI runtime containers run with (runc on hybrid-cgroup hosts, else crun) and its state root. */
export function containerRuntime(store: Store): Runtime {
  const choice = chooseRuntime();
  if (choice.path === undefined) throw new KilnError('E_RUNTIME', `no OCI runtime: ${choice.reason}`, { hint: 'apt-get install runc' });
  if (choice.name === 'crun' && fs.existsSync('/sys/fs/cgroup/unified')) {
    throw new KilnError('E_RUNTIME', 'crun cannot run containers under conmon on a hybrid-cgroup host', { hint: 'install runc, or unset KILN_RUNTIME' });
  }
  return { name: choice.name, path: choice.path, root: path.join(store.paths.runroot, 'runtime') };
}

/**
 * `<runtime> delete --force ID` when the runtime has state for the container (its dir under
 * the runtime root); a spawn saved for a container that never ran or was already deleted.
 */
async function runtimeDelete(rt: Runtime, id: string): Promise<void> {
  if (!fs.existsSync(path.join(rt.root, id))) return;
  await runtimeCall(rt.path, rt.root, ['delete', '--force', id]).catch(() => undefined);
}

/** The command conmon runs when the container exits: this kiln's `container cleanup ID`. */
function exitCommand(store: Store, id: string): string[] {
  return [process.execPath, path.join(packageRoot(), 'bin', 'kiln'), '--root', store.paths.root, '--runroot', store.paths.runroot, 'container', 'cleanup', id];
}

/**
 * Brings the recorded state of a created/running container in line with reality: the exit
 * file conmon wrote, else conmon gone and the runtime no longer running it. Returns the record.
 */
export function syncState(ctx: EngineContext, c: ContainerRecord): ContainerRecord {
  if (c.state.status !== 'running') return c;
  const dir = runDir(ctx.store, c.id);
  const exit = readExitCode(dir, c.id);
  if (exit === undefined) {
    if (alive(c.state.conmonPid) || alive(c.state.pid)) return c;
  }
  return ctx.store.containers.update(c.id, (s) => {
    if (s.status !== 'running') return undefined;
    const { pid: _pid, conmonPid: _cp, ...rest } = s;
    return { ...rest, status: 'exited', exitCode: exit?.code ?? -1, finishedAt: exit?.at ?? Date.now() };
  });
}

/** syncState for a reference (name, ID, prefix). */
export function lookup(ctx: EngineContext, ref: string): ContainerRecord {
  return syncState(ctx, ctx.store.containers.resolve(ref));
}

export interface StartHooks {
  /** runs after conmon created the container and before it starts (attach here, so no output is lost) */
  beforeStart?: (c: ContainerRecord, dir: string) => Promise<void>;
  /**
   * The caller waits for the container and cleans up after it (an attached run): conmon's exit
   * command, then only a fallback should the caller die, runs a second later instead of
   * racing the caller's own clean-up for the CPU.
   */
  attached?: boolean;
}

/**
 * Starts a created or exited container: mounts its rootfs, writes its bundle, has conmon create
 * it, runs `hooks.beforeStart`, starts it. A failure leaves it not running with State.Error
 * set and nothing mounted; the runtime's error is rethrown (RuntimeStartError: 125/126/127).
 */
export async function startContainer(ctx: EngineContext, ref: string, hooks: StartHooks = {}): Promise<ContainerRecord> {
  const store = ctx.store;
  let c = await lookup(ctx, ref);
  if (c.state.status === 'running') return c;
  const rt = containerRuntime(store);
  const dir = runDir(store, c.id);
  const bundle = bundleDir(store, c.id);
  await runtimeDelete(rt, c.id);
  try {
    const rootfs = await mountRootfs(store, c.id, c.layerID);
    const volumePaths = await prepareVolumes(ctx, c, rootfs);
    writeBundle(bundle, c, { rootfs, volumePaths, ...(fs.existsSync('/usr/bin/catatonit') ? { initPath: '/usr/bin/catatonit' } : {}) });
    const launched = await launchConmon({
      id: c.id, name: c.name, bundle, runtimePath: rt.path, runtimeName: rt.name, runtimeRoot: rt.root, runDir: dir,
      logPath: path.join(bundle, 'ctr.log'), tty: c.config.tty, stdin: c.config.interactive, exitCommand: exitCommand(store, c.id),
      ...(hooks.attached ? { exitDelay: 1 } : {}),
    });
    c = store.containers.update(c.id, (s) => ({ ...s, status: 'running', pid: launched.pid, conmonPid: launched.conmonPid, startedAt: Date.now(), exitCode: undefined, finishedAt: undefined, error: undefined }));
    if (hooks.beforeStart) await hooks.beforeStart(c, dir);
    await runtimeCall(rt.path, rt.root, ['start', c.id]);
    return c;
  } catch (e) {
    await runtimeDelete(rt, c.id);
    unmountRootfs(store, c.id);
    const msg = e instanceof Error ? e.message : String(e);
    store.containers.update(c.id, (s) => {
      const { pid: _p, conmonPid: _c, ...rest } = s;
      return { ...rest, status: s.startedAt ? 'exited' : 'created', error: msg };
    });
    throw e;
  }
}

/**
 * Resolves with the exit code once the container is no longer running: woken by the exit
 * file's appearance (fs.watch on conmon's exit dir), with a poll as a fallback.
 */
export async function waitContainer(ctx: EngineContext, ref: string, opts: { signal?: AbortSignal } = {}): Promise<number> {
  let c = lookup(ctx, ref);
  const id = c.id;
  let wake: (() => void) | undefined;
  let watcher: fs.FSWatcher | undefined;
  try {
    watcher = fs.watch(path.join(runDir(ctx.store, id), 'exits'), () => wake?.());
  } catch {
    /* no exit dir yet: polling alone */
  }
  try {
    for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
      if (c.state.status === 'exited' || c.state.status === 'stopped') return c.state.exitCode ?? -1;
      if (c.state.status === 'created') return c.state.exitCode ?? 0;
      if (opts.signal?.aborted) throw new KilnError('E_RUN_ABORTED', `waiting for container ${id.slice(0, 12)} was interrupted`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, delay);
        wake = () => {
          clearTimeout(t);
          r();
        };
      });
      const now = ctx.store.containers.get(id);
      if (!now) throw new KilnError('E_CONTAINER_UNKNOWN', `container ${id.slice(0, 12)} was removed while waiting for it`);
      c = syncState(ctx, now);
    }
  } finally {
    watcher?.close();
  }
}

/** Waits up to `ms` for the container to stop running; true if it did. */
async function stoppedWithin(ctx: EngineContext, id: string, ms: number): Promise<boolean> {
  const ac = new AbortController();
  const t = setTimeout(() => ac.abort(), ms);
  try {
    await waitContainer(ctx, id, { signal: ac.signal });
    return true;
  } catch (e) {
    if (e instanceof KilnError && e.code === 'E_RUN_ABORTED') return false;
    throw e;
  } finally {
    clearTimeout(t);
  }
}

/**
 * podman stop: the stop signal, then after `timeout` seconds (default the container's
 * --stop-timeout) SIGKILL to every process. A container that is not running is left as it is.
 */
export async function stopContainer(ctx: EngineContext, ref: string, timeout?: number): Promise<ContainerRecord> {
  let c = await lookup(ctx, ref);
  if (c.state.status !== 'running') return c;
  const rt = containerRuntime(ctx.store);
  const secs = timeout ?? c.config.stopTimeout;
  await runtimeCall(rt.path, rt.root, ['kill', c.id, c.config.stopSignal.replace(/^SIG/, '')]).catch(() => undefined);
  if (!(await stoppedWithin(ctx, c.id, secs * 1000))) {
    await runtimeCall(rt.path, rt.root, ['kill', '--all', c.id, 'KILL']).catch(() => undefined);
    if (!(await stoppedWithin(ctx, c.id, 10_000))) throw new KilnError('E_RUNTIME', `container ${c.name} did not stop after SIGKILL`);
  }
  return cleanupContainer(ctx, c.id, { keep: true });
}

/** podman kill: sends `signal` (default SIGKILL) to the container's init process. */
export async function killContainer(ctx: EngineContext, ref: string, signal = 'SIGKILL'): Promise<ContainerRecord> {
  const c = await lookup(ctx, ref);
  if (c.state.status !== 'running') {
    throw new KilnError('E_CONTAINER_STATE', `can only kill running containers. ${c.id} is in state ${c.state.status}: container state improper`);
  }
  const rt = containerRuntime(ctx.store);
  const n = (os.constants.signals as Record<string, number>)[signal];
  await runtimeCall(rt.path, rt.root, ['kill', c.id, String(n ?? signal)]);
  return c;
}

/**
 * The exit command's work, also done by whoever sees the container exit first: records the exit
 * code, deletes the runtime's container, unmounts the rootfs; removes the container when it was
 * created with --rm (unless `keep`). Safe to run twice, and on a container that is gone.
 */
export async function cleanupContainer(ctx: EngineContext, id: string, opts: { keep?: boolean } = {}): Promise<ContainerRecord> {
  const store = ctx.store;
  const found = store.containers.get(id);
  if (!found) throw new KilnError('E_CONTAINER_UNKNOWN', `no container with name or ID "${id}" found: no such container`);
  const c = await syncState(ctx, found);
  if (c.state.status === 'running') return c;
  const rt = containerRuntime(store);
  await runtimeDelete(rt, c.id);
  unmountRootfs(store, c.id);
  if (c.config.autoRemove && !opts.keep) {
    await removeContainer(ctx, c.id, { force: true, volumes: true });
  }
  return c;
}

export interface RemoveOptions {
  force?: boolean;
  /** remove the container's anonymous volumes too (-v) */
  volumes?: boolean;
  /** seconds for the stop before a forced removal (podman rm -t) */
  time?: number;
}

/** podman rm: refuses a running container unless forced (then stops it first); returns the ID. */
export async function removeContainer(ctx: EngineContext, ref: string, opts: RemoveOptions = {}): Promise<string> {
  const store = ctx.store;
  let c = await lookup(ctx, ref);
  if (c.state.status === 'running') {
    if (!opts.force) {
      throw new KilnError('E_CONTAINER_STATE', `cannot remove container ${c.id} as it is running - running or paused containers cannot be removed without force: container state improper`);
    }
    c = await stopContainer(ctx, c.id, opts.time ?? c.config.stopTimeout);
  }
  const rt = containerRuntime(store);
  await runtimeDelete(rt, c.id);
  unmountRootfs(store, c.id);
  const anonymous = anonymousVolumes(ctx, c);
  store.writeTx(() => store.containers.removeTx(c.id));
  removeDirs(store, c.id);
  if (opts.volumes) for (const v of anonymous) await removeIfUnused(ctx, v);
  return c.id;
}

/** podman 4.3's Status text: "Up 3 seconds ago", "Exited (0) 2 minutes ago", "Created". */
export function statusText(s: ContainerState, now = Date.now()): string {
  if (s.status === 'running') return `Up ${humanDuration(now - (s.startedAt ?? now))} ago`;
  if (s.status === 'exited' || s.status === 'stopped') return `Exited (${s.exitCode ?? 0}) ${humanDuration(now - (s.finishedAt ?? now))} ago`;
  return 'Created';
}
