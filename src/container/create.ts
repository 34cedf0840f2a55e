/**
 * `kiln create` (and the first half of `kiln run`): the image (pulled when missing and
 * --pull allows), the flags parsed (flags.ts) and merged with the image's config as podman
 * does, then the container's dirs made and its record committed together. Nothing runs yet.
 */
import { randomBytes } from 'node:crypto';
import * as os from 'node:os';
import { KilnError } from '../errors';
import type { EngineContext } from '../engine/context';
import { parseConfig } from '../image/manifest';
import type { MountRequest } from '../runtime/spec';
import { makeDirs, removeDirs } from './rootfs';
import { pullBaseImages, type BuildPullOptions, type PullPolicy } from '../build/pull-bases';
import { mergeEnv, parseBytes, parseEntrypoint, parseEnv, parseMountFlag, parseNetwork, parseSecurityOpts, parseSignal, parseTmpfsFlag, parseVolumeFlag, type VolumeSpec } from './flags';
import { recordVolumeUses, resolveVolumes } from './volume-mounts';
import type { ContainerConfig, ContainerRecord } from './types';

export interface CreateOptions {
  image: string;
  /** the command after the image name (replaces the image's CMD) */
  command: string[];
  name?: string;
  entrypoint?: string;
  env?: string[];
  envFiles?: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  interactive?: boolean;
  rm?: boolean;
  volumes?: string[];
  mounts?: string[];
  tmpfs?: string[];
  readOnly?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  privileged?: boolean;
  securityOpts?: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: number;
  network?: string;
  init?: boolean;
  stopSignal?: string;
  stopTimeout?: number;
  labels?: string[];
  /** the command line, for inspect's CreateCommand */
  createCommand?: string[];
}

/**
 * podman's --pull for run/create: the image is pulled (as `kiln pull` does: short names,
 * mirrors, signature policy) when `policy` asks, before the container is created.
 */
export async function ensureImage(ctx: EngineContext, image: string, policy: PullPolicy, pull: BuildPullOptions): Promise<void> {
  await pullBaseImages(ctx, [image], policy, pull);
}

function labelsOf(values: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of values) {
    const i = l.indexOf('=');
    if (i === 0) throw new KilnError('E_INVALID_ARGUMENT', `--label ${JSON.stringify(l)}: the key is empty`);
    out[i < 0 ? l : l.slice(0, i)] = i < 0 ? '' : l.slice(i + 1);
  }
  return out;
}

/** Creates the container; returns its record (state created). */
export function createContainer(ctx: EngineContext, o: CreateOptions): ContainerRecord {
  const store = ctx.store;
  // flags first: a bad flag leaves nothing behind
  const security = parseSecurityOpts(o.securityOpts ?? []);
  const network = parseNetwork(o.network);
  const specs: VolumeSpec[] = (o.volumes ?? []).map(parseVolumeFlag);
  const mounts: MountRequest[] = (o.tmpfs ?? []).map(parseTmpfsFlag);
  for (const m of o.mounts ?? []) {
    const r = parseMountFlag(m);
    if ('kind' in r) specs.push(r);
    else mounts.push(r);
  }
  for (const s of specs) if (s.kind === 'bind') mounts.push({ type: 'bind', source: s.source, destination: s.destination, readonly: s.readonly });
  const memory = o.memory === undefined ? undefined : parseBytes('--memory', o.memory);
  let cpus: number | undefined;
  if (o.cpus !== undefined) {
    cpus = Number(o.cpus);
    if (!Number.isFinite(cpus) || cpus <= 0) throw new KilnError('E_INVALID_ARGUMENT', `--cpus ${JSON.stringify(o.cpus)}: must be a positive number`);
    const max = os.availableParallelism();
    if (cpus > max) throw new KilnError('E_INVALID_ARGUMENT', `--cpus ${o.cpus}: range of CPUs is from 0.01 to ${max}.00, as there are only ${max} CPUs available`);
  }
  if (o.pidsLimit !== undefined && !Number.isInteger(o.pidsLimit)) throw new KilnError('E_INVALID_ARGUMENT', `--pids-limit ${o.pidsLimit}: must be an integer`);
  if (o.stopTimeout !== undefined && (!Number.isInteger(o.stopTimeout) || o.stopTimeout < 0)) throw new KilnError('E_INVALID_ARGUMENT', `--stop-timeout ${o.stopTimeout}: must be a whole number of seconds`);
  const envFlags = parseEnv(o.env ?? [], o.envFiles ?? []);
  const labels = labelsOf(o.labels ?? []);

  const img = store.images.resolve(o.image);
  const image = parseConfig(store.blobs.read(img.configDigest), `image ${img.id.slice(0, 12)}`);
  const ic = image.config ?? {};
  const entrypoint = o.entrypoint !== undefined ? parseEntrypoint(o.entrypoint) : [...(ic.Entrypoint ?? [])];
  const cmd = o.command.length > 0 ? [...o.command] : o.entrypoint !== undefined ? [] : [...(ic.Cmd ?? [])];
  const stopSignal = parseSignal('--stop-signal', o.stopSignal ?? ic.StopSignal ?? 'SIGTERM');
  const id = randomBytes(32).toString('hex');
  const layers = store.images.layerIDs(img.id);
  const name = o.name ?? store.containers.freeName();
  // image VOLUMEs become anonymous volumes, unless a flag mounts something there
  const taken = new Set([...specs.map((s) => s.destination), ...mounts.map((m) => m.destination)]);
  for (const d of Object.keys(ic.Volumes ?? {})) if (!taken.has(d)) specs.push({ kind: 'anonymous', destination: d, readonly: false });

  const config: ContainerConfig = {
    imageName: o.image,
    entrypoint,
    cmd,
    env: mergeEnv(ic.Env ?? [], envFlags),
    workdir: o.workdir ?? (ic.WorkingDir || '/'),
    user: o.user ?? ic.User ?? '',
    hostname: o.hostname ?? id.slice(0, 12),
    tty: o.tty ?? false,
    interactive: o.interactive ?? false,
    autoRemove: o.rm ?? false,
    mounts,
    volumes: [],
    readOnly: o.readOnly ?? false,
    capAdd: o.capAdd ?? [],
    capDrop: o.capDrop ?? [],
    privileged: o.privileged ?? false,
    noNewPrivileges: security.noNewPrivileges,
    seccomp: security.seccomp,
    network,
    init: o.init ?? false,
    stopSignal,
    stopTimeout: o.stopTimeout ?? 10,
    ...(memory !== undefined ? { memory } : {}),
    ...(cpus !== undefined ? { cpus } : {}),
    ...(o.pidsLimit !== undefined ? { pidsLimit: o.pidsLimit } : {}),
    labels: { ...(ic.Labels ?? {}), ...labels },
    createCommand: o.createCommand ?? [],
  };
  if (!config.workdir.startsWith('/')) throw new KilnError('E_INVALID_ARGUMENT', `--workdir ${JSON.stringify(config.workdir)}: must be an absolute path`);
  try {
    // dirs and record appear in one transaction: under the write lock a container dir without
    // a record is debris of a killed process (store/repair.ts), never work in progress
    return store.writeTx(() => {
      makeDirs(store, id);
      config.volumes = resolveVolumes(ctx, specs);
      const rec = store.containers.createTx({ id, name, imageID: img.id, layerID: layers[layers.length - 1] ?? null, config, state: { status: 'created' } });
      recordVolumeUses(ctx, id, config.volumes);
      return rec;
    });
  } catch (e) {
    removeDirs(store, id);
    throw e;
  }
}
