/**
 * `kiln container inspect` / `kiln inspect CONTAINER`: podman's InspectContainerData (the
 * fields kiln has), State synced first (lifecycle.ts syncState).
 */
import type { EngineContext } from '../engine/context';
import { rfc3339Nano } from '../format/units';
import { lookup } from './lifecycle';
import { bundleDir, mergedDir } from './rootfs';
import { effectiveCapabilities } from './spec';
import { volumePath } from './volume-mounts';

const ZERO_TIME = '0001-01-01T00:00:00Z';
const at = (ms: number | undefined) => (ms ? rfc3339Nano(ms) : ZERO_TIME);

export async function inspectContainer(ctx: EngineContext, ref: string): Promise<Record<string, unknown>> {
  const c = await lookup(ctx, ref);
  const cfg = c.config;
  const s = c.state;
  const args = [...cfg.entrypoint, ...cfg.cmd];
  const caps = effectiveCapabilities(cfg);
  return {
    Id: c.id,
    Created: rfc3339Nano(c.created),
    Path: args[0] ?? '',
    Args: args.slice(1),
    State: {
      OciVersion: '1.0.2',
      Status: s.status,
      Running: s.status === 'running',
      Paused: false,
      Restarting: false,
      OOMKilled: s.oomKilled ?? false,
      Dead: false,
      Pid: s.pid ?? 0,
      ConmonPid: s.conmonPid ?? 0,
      ExitCode: s.exitCode ?? 0,
      Error: s.error ?? '',
      StartedAt: at(s.startedAt),
      FinishedAt: at(s.finishedAt),
    },
    Image: c.imageID,
    ImageName: cfg.imageName,
    Rootfs: '',
    ResolvConfPath: `${bundleDir(ctx.store, c.id)}/resolv.conf`,
    HostnamePath: `${bundleDir(ctx.store, c.id)}/hostname`,
    HostsPath: `${bundleDir(ctx.store, c.id)}/hosts`,
    OCIConfigPath: `${bundleDir(ctx.store, c.id)}/config.json`,
    Name: c.name,
    RestartCount: s.restartCount ?? 0,
    Driver: 'overlay',
    MountLabel: '',
    ProcessLabel: '',
    EffectiveCaps: caps,
    BoundingCaps: caps,
    Mounts: [
      ...cfg.volumes.map((v) => ({ Type: 'volume', Name: v.volume, Source: volumePath(ctx, v.volume), Destination: v.destination, Driver: 'local', Mode: '', Options: ['nosuid', 'nodev', 'rbind'], RW: !v.readonly, Propagation: 'rprivate' })),
      ...cfg.mounts.map((m) => ({ Type: m.type, Source: m.type === 'bind' ? m.source : '', Destination: m.destination, Driver: '', Mode: '', Options: m.type === 'bind' ? ['rbind'] : ['nosuid', 'nodev'], RW: m.type === 'bind' ? !m.readonly : true, Propagation: m.type === 'bind' ? 'rprivate' : '' })),
    ],
    GraphDriver: { Name: 'overlay', Data: { MergedDir: mergedDir(ctx.store, c.id) } },
    Config: {
      Hostname: cfg.hostname,
      User: cfg.user,
      Env: cfg.env,
      Cmd: cfg.cmd,
      Image: cfg.imageName,
      WorkingDir: cfg.workdir,
      Entrypoint: cfg.entrypoint.join(' '),
      Labels: cfg.labels,
      StopSignal: cfg.stopSignal,
      StopTimeout: cfg.stopTimeout,
      Tty: cfg.tty,
      OpenStdin: cfg.interactive,
      CreateCommand: cfg.createCommand,
    },
    HostConfig: {
      Binds: cfg.mounts.filter((m) => m.type === 'bind').map((m) => (m.type === 'bind' ? `${m.source}:${m.destination}${m.readonly ? ':ro' : ''}` : '')),
      NetworkMode: typeof cfg.network === 'string' ? cfg.network : 'ns',
      Privileged: cfg.privileged,
      ReadonlyRootfs: cfg.readOnly,
      CapAdd: cfg.capAdd,
      CapDrop: cfg.capDrop,
      SecurityOpt: [...(cfg.noNewPrivileges ? ['no-new-privileges'] : []), ...(cfg.seccomp !== 'default' ? [`seccomp=${cfg.seccomp}`] : [])],
      Memory: cfg.memory ?? 0,
      NanoCpus: cfg.cpus !== undefined ? Math.round(cfg.cpus * 1e9) : 0,
      PidsLimit: cfg.pidsLimit ?? 2048,
      AutoRemove: cfg.autoRemove,
      Tmpfs: Object.fromEntries(cfg.mounts.filter((m) => m.type === 'tmpfs').map((m) => [m.destination, (m.type === 'tmpfs' ? m.options ?? [] : []).join(',')])),
      Init: cfg.init,
    },
    IsInfra: false,
  };
}
