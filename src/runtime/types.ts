/**
 * The OCI runtime behind one small interface, as BuildKit's executor does: kiln writes an OCI
 * bundle (config.json + a rootfs it has mounted) and asks the runtime to run it. crun and runc
 * adapters implement it (crun.ts, runc.ts); openRuntime() in detect.ts picks the one that works
 * on this host (chooseRuntime()). Call order: run() creates, starts and waits in one call and
 * deletes the container afterwards; while it runs, state()/kill()/exec() may be used on its id.
 * delete() is safe to call on a container that never started or is already gone.
 */
import type { Readable, Writable } from 'node:stream';
import { KilnError } from '../errors';

export interface RuntimeStdio {
  /** stdin for the process; absent = /dev/null */
  stdin?: Readable | 'inherit';
  /** where the process's stdout/stderr go (streamed as produced) */
  stdout: Writable | 'inherit' | 'ignore';
  stderr: Writable | 'inherit' | 'ignore';
}

export interface RunOptions extends RuntimeStdio {
  /** container id, unique among live containers of this runtime root */
  id: string;
  /** directory holding config.json; its rootfs is `spec.root.path` */
  bundle: string;
  /** aborting kills the container (SIGKILL) and deletes it; run() then rejects with E_RUN_ABORTED */
  signal?: AbortSignal;
}

export interface ContainerState {
  id: string;
  status: 'creating' | 'created' | 'running' | 'stopped' | 'unknown';
  pid: number;
  bundle: string;
}

export interface OciRuntime {
  readonly name: string;
  readonly path: string;
  /** runs the container's process to completion and deletes the container; resolves with its exit code (128+n for a signal) */
  run(opts: RunOptions): Promise<number>;
  /** runs an extra process in a running container; resolves with its exit code */
  exec(id: string, process: OciProcess, stdio: RuntimeStdio): Promise<number>;
  kill(id: string, signal?: string | number, all?: boolean): Promise<void>;
  /** force-deletes the container; no error if it does not exist */
  delete(id: string): Promise<void>;
  /** undefined if the runtime does not know the container */
  state(id: string): Promise<ContainerState | undefined>;
  /** ids of all containers in this runtime's state root (for cleanup of leftovers) */
  list?(): Promise<string[]>;
}

/** The subset of the OCI runtime spec's process object that kiln sets. */
export interface OciProcess {
  terminal?: boolean;
  user: { uid: number; gid: number; additionalGids?: number[]; umask?: number };
  args: string[];
  env: string[];
  cwd: string;
  capabilities?: { bounding: string[]; effective: string[]; permitted: string[]; ambient?: string[] };
  rlimits?: { type: string; hard: number; soft: number }[];
  noNewPrivileges?: boolean;
}

/**
 * Why the runtime could not start a container's process: 'not-found' (no such executable in
 * the rootfs or $PATH), 'not-executable' (permission denied, not a binary…), 'other' (a mount,
 * namespace, cgroup or spec error). Podman reports these as exit codes 127, 126 and 125.
 */
export type StartFailureReason = 'not-found' | 'not-executable' | 'other';

/**
 * E_RUNTIME raised when the runtime itself failed, as opposed to the container's process
 * exiting non-zero (that is a resolved exit code). `exitCode` is the code podman/docker would
 * use (127, 126, 125); `runtimeMessage` is the runtime's own error text. Only the code, message
 * and hint cross a worker boundary (toWire); the message names the reason in words.
 */
export class RuntimeStartError extends KilnError {
  readonly reason: StartFailureReason;
  readonly exitCode: 125 | 126 | 127;
  readonly runtimeMessage: string;

  constructor(runtime: string, runtimeMessage: string, reason: StartFailureReason, hint?: string) {
    super('E_RUNTIME', `${runtime}: ${runtimeMessage}`, hint === undefined ? {} : { hint });
    this.name = 'RuntimeStartError';
    this.reason = reason;
    this.exitCode = reason === 'not-found' ? 127 : reason === 'not-executable' ? 126 : 125;
    this.runtimeMessage = runtimeMessage;
  }
}
