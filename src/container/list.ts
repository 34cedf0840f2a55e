/**
 * `kiln ps` data: every container with its state synced (lifecycle.ts syncState), as podman's
 * ListContainer entries (`ps --format json` field names), filtered by podman's --filter keys:
 * id, name, status, label, ancestor, exited.
 */
import { KilnError } from '../errors';
import type { EngineContext } from '../engine/context';
import { statusText, syncState } from './lifecycle';
import { timeAgo } from '../format/units';
import type { ContainerRecord } from './types';

export interface ListedContainer {
  AutoRemove: boolean;
  Command: string[];
  Created: number;
  CreatedAt: string;
  Exited: boolean;
  ExitedAt: number;
  ExitCode: number;
  Id: string;
  Image: string;
  ImageID: string;
  IsInfra: boolean;
  Labels: Record<string, string> | null;
  Mounts: string[];
  Names: string[];
  Namespaces: Record<string, never>;
  Networks: string[];
  Pid: number;
  Pod: string;
  PodName: string;
  Ports: null;
  Size: null;
  StartedAt: number;
  State: string;
  Status: string;
}

function matches(c: ContainerRecord, key: string, value: string): boolean {
  switch (key) {
    case 'id':
      return c.id.startsWith(value);
    case 'name':
      return new RegExp(value).test(c.name);
    case 'status':
      return c.state.status === value || (value === 'stopped' && c.state.status === 'exited');
    case 'label': {
      const i = value.indexOf('=');
      const k = i < 0 ? value : value.slice(0, i);
      return k in c.config.labels && (i < 0 || c.config.labels[k] === value.slice(i + 1));
    }
    case 'ancestor':
      return c.config.imageName === value || c.imageID.startsWith(value) || c.config.imageName.endsWith(`/${value}`);
    case 'exited':
      return c.state.status === 'exited' && c.state.exitCode === Number(value);
    default:
      throw new KilnError('E_INVALID_ARGUMENT', `--filter ${key}=${value}: unsupported filter (id, name, status, label, ancestor, exited)`);
  }
}

/** Containers, newest first; running only unless `all`. Filters with the same key are ORed, different keys ANDed. */
export async function listContainers(ctx: EngineContext, o: { all?: boolean; filters?: string[]; last?: number } = {}): Promise<ContainerRecord[]> {
  const byKey = new Map<string, string[]>();
  for (const f of o.filters ?? []) {
    const i = f.indexOf('=');
    if (i <= 0) throw new KilnError('E_INVALID_ARGUMENT', `--filter ${JSON.stringify(f)}: expected KEY=VALUE`);
    byKey.set(f.slice(0, i), [...(byKey.get(f.slice(0, i)) ?? []), f.slice(i + 1)]);
  }
  const out: ContainerRecord[] = [];
  for (const rec of ctx.store.containers.list()) {
    const c = await syncState(ctx, rec);
    const filtered = byKey.size > 0;
    if (!o.all && !filtered && c.state.status !== 'running') continue;
    if ([...byKey].every(([k, vs]) => vs.some((v) => matches(c, k, v)))) out.push(c);
  }
  return o.last !== undefined && o.last >= 0 ? out.slice(0, o.last) : out;
}

export function listed(c: ContainerRecord, now = Date.now()): ListedContainer {
  const exited = c.state.status === 'exited' || c.state.status === 'stopped';
  return {
    AutoRemove: c.config.autoRemove,
    Command: [...c.config.entrypoint, ...c.config.cmd],
    Created: Math.floor(c.created / 1000),
    CreatedAt: timeAgo(c.created, now),
    Exited: exited,
    ExitedAt: exited ? Math.floor((c.state.finishedAt ?? 0) / 1000) : -62135596800,
    ExitCode: c.state.exitCode ?? 0,
    Id: c.id,
    Image: c.config.imageName,
    ImageID: c.imageID,
    IsInfra: false,
    Labels: Object.keys(c.config.labels).length > 0 ? c.config.labels : null,
    Mounts: [...c.config.volumes.map((v) => v.destination), ...c.config.mounts.map((m) => m.destination)],
    Names: [c.name],
    Namespaces: {},
    Networks: [],
    Pid: c.state.pid ?? 0,
    Pod: '',
    PodName: '',
    Ports: null,
    Size: null,
    StartedAt: Math.floor((c.state.startedAt ?? 0) / 1000),
    State: c.state.status,
    Status: statusText(c.state, now),
  };
}
