/**
 * The OCI runtime behind one small interface, as BuildKit's executor does: kiln writes an OCI
 * bundle (config.json + a rootfs it has mounted) and asks the runtime to run it. crun and runc
 * adapters implement it (crun.ts, runc.ts); choose() in detect.ts picks the one that works on
 * this host. Call order: run() (create+start+wait in one) or, for long-lived containers,
 * create() → start() → state()/kill()/exec() → delete(). delete() is safe to call on a
 * container that never started or is already gone.
 */
import type { Readable, Writable } from 'node:stream';

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
