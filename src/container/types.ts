/**
 * A container's two records (store/containers.ts): ContainerConfig is fixed at `kiln create`
 * (what the image and the flags asked for, resolved); ContainerState is what happened since
 * and changes under the store's write lock (lifecycle.ts). Both are kept as JSON in the
 * containers table, the config also as the OCI bundle it was turned into (spec.ts).
 */
import type { MountRequest, NetworkMode } from '../runtime/spec';

/** podman's container states (libpod define.ContainerStatus), as `ps` and `inspect` show them. */
export type ContainerStatus = 'created' | 'running' | 'stopped' | 'exited';

export interface VolumeUse {
  /** named volume */
  volume: string;
  destination: string;
  readonly: boolean;
}

export interface ContainerConfig {
  /** the image reference as given (`podman ps` IMAGE column shows the name it was created from) */
  imageName: string;
  /** the full command run: entrypoint ++ cmd, resolved */
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workdir: string;
  /** as given (`-u` or the image's USER); resolved against /etc/passwd at start */
  user: string;
  hostname: string;
  tty: boolean;
  interactive: boolean;
  /** remove the container when it exits (--rm) */
  autoRemove: boolean;
  /** bind and tmpfs mounts (sources absolute) */
  mounts: MountRequest[];
  volumes: VolumeUse[];
  readOnly: boolean;
  capAdd: string[];
  capDrop: string[];
  privileged: boolean;
  noNewPrivileges: boolean;
  /** 'default' (the containers-common profile), 'unconfined', or a profile file path */
  seccomp: string;
  network: NetworkMode;
  init: boolean;
  stopSignal: string;
  /** seconds */
  stopTimeout: number;
  /** bytes; undefined = no limit */
  memory?: number;
  /** CPUs as a decimal (--cpus) */
  cpus?: number;
  /** --pids-limit: undefined = podman's default (2048), 0 or -1 = unlimited */
  pidsLimit?: number;
  labels: Record<string, string>;
  /** the command line the container was created with, for `inspect` (podman's CreateCommand) */
  createCommand: string[];
}

export interface ContainerState {
  status: ContainerStatus;
  /** the container's init process on the host, while running */
  pid?: number;
  /** conmon's pid, while running */
  conmonPid?: number;
  exitCode?: number;
  /** ms epoch */
  startedAt?: number;
  finishedAt?: number;
  /** why the last start failed (podman's State.Error) */
  error?: string;
  /** OOM-killed (from conmon's oom file) */
  oomKilled?: boolean;
  restartCount?: number;
}

export interface ContainerRecord {
  id: string;
  name: string;
  imageID: string;
  /** the image's top layer (the rootfs's lower chain), null for an empty image */
  layerID: string | null;
  /** ms epoch */
  created: number;
  config: ContainerConfig;
  state: ContainerState;
}
