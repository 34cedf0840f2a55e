/** Image mounts for `kiln image mount/unmount` (holder "cli": the hold outlives the command). */
import { KilnError } from '../errors';
import type { EngineContext } from './context';

const CLI_HOLDER = 'cli';

function topLayer(ctx: EngineContext, ref: string): { id: string; layer: string } {
  const img = ctx.store.images.resolve(ref);
  if (img.topLayer === null) throw new KilnError('E_INVALID_ARGUMENT', `image ${img.id.slice(0, 12)} has no layers to mount`);
  return { id: img.id, layer: img.topLayer };
}

export async function mountImages(ctx: EngineContext, refs: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of refs) {
    const top = topLayer(ctx, r).layer;
    await ctx.store.layers.ensureChain(top);
    out.push(ctx.store.mounts.mount(top, CLI_HOLDER));
  }
  return out;
}

/** Returns the IDs of the images whose mounts were released (podman prints them). */
export function unmountImages(ctx: EngineContext, refs: string[], opts: { all: boolean; force: boolean }): string[] {
  const store = ctx.store;
  if (opts.all) {
    const out: string[] = [];
    for (const m of listMounts(ctx)) {
      store.mounts.unmount(m.layer, CLI_HOLDER, true);
      out.push(m.id);
    }
    return out;
  }
  if (refs.length === 0) throw new KilnError('E_INVALID_ARGUMENT', 'image name or ID must be specified, or use --all');
  return refs.map((r) => {
    const t = topLayer(ctx, r);
    store.mounts.unmount(t.layer, CLI_HOLDER, opts.force);
    return t.id;
  });
}

export function listMounts(ctx: EngineContext): { id: string; names: string[]; layer: string; target: string }[] {
  const store = ctx.store;
  store.writeTx(() => store.mounts.dropStale());
  const byTop = new Map(store.images.list().filter((i) => i.topLayer !== null).map((i) => [i.topLayer!, i]));
  return store.mounts.list().flatMap((m) => {
    const img = byTop.get(m.layerID);
    return img ? [{ id: img.id, names: img.names, layer: m.layerID, target: m.target }] : [];
  });
}
