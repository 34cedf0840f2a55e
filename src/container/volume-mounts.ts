/**
 * The named and anonymous volumes of a container (-v NAME:/dst, -v /dst, --mount type=volume,
 * image VOLUMEs): created when missing inside the create transaction (with the container's
 * use recorded), filled from the image's content at the destination on first start (podman's
 * copy-up, container/volumes.ts copyUpIfEmpty), their host paths given to the bundle.
 */
import { randomBytes } from 'node:crypto';
import type { EngineContext } from '../engine/context';
import { secureJoin } from '../runtime/securejoin';
import type { VolumeSpec } from './flags';
import type { ContainerRecord, VolumeUse } from './types';
import { copyUpIfEmpty, ensureVolumeTx, recordUse, removeIfUnused, volumePath } from './volumes';

/**
 * Inside the create transaction, before the container row: the volumes of `specs` (binds are
 * mounts, not volumes), created when missing; anonymous ones get a random 64-hex name.
 */
export function resolveVolumes(ctx: EngineContext, specs: VolumeSpec[]): VolumeUse[] {
  const out: VolumeUse[] = [];
  for (const s of specs) {
    if (s.kind === 'bind') continue;
    const name = s.kind === 'named' ? s.name : randomBytes(32).toString('hex');
    ensureVolumeTx(ctx, name, { anonymous: s.kind === 'anonymous' });
    out.push({ volume: name, destination: s.destination, readonly: s.readonly });
  }
  return out;
}

/** Inside the create transaction, after the container row: records which volumes it uses. */
export function recordVolumeUses(ctx: EngineContext, containerId: string, uses: VolumeUse[]): void {
  for (const u of uses) recordUse(ctx, containerId, u.volume, u.destination);
}

/**
 * Before a start, with the rootfs mounted: each volume never filled gets the image's content
 * at its destination (resolved inside the rootfs) when it is empty; returns name → host path.
 */
export async function prepareVolumes(ctx: EngineContext, c: ContainerRecord, rootfs: string): Promise<Map<string, string>> {
  const paths = new Map<string, string>();
  for (const v of c.config.volumes) {
    await copyUpIfEmpty(ctx, v.volume, secureJoin(rootfs, v.destination));
    paths.set(v.volume, volumePath(ctx, v.volume));
  }
  return paths;
}

/** The anonymous volumes among a container's (those made for it alone). */
export function anonymousVolumes(ctx: EngineContext, c: ContainerRecord): string[] {
  return c.config.volumes.map((v) => v.volume).filter((n) => ctx.store.volumes.get(n)?.anonymous === true);
}

export { removeIfUnused, volumePath };
