/**
 * `kiln build --pull`: base images (FROM, COPY --from=IMAGE, RUN --mount from=IMAGE) that are
 * fetched from registries before the build starts, as podman build does: `missing` (default)
 * pulls those the store lacks, `always`/`newer` pulls each (layers already stored are not
 * fetched again), `never` pulls none. Pulls go through the same engine function as `kiln pull`
 * (mirrors, short names, signature policy).
 */
import type { PullOptions } from '../engine/pull';
import type { EngineContext } from '../engine/context';
import { asKilnError, KilnError } from '../errors';

export type PullPolicy = 'missing' | 'never' | 'always' | 'newer';

/** Registry settings of a build (podman build's --tls-verify, --creds, … and --signature-policy). */
export type BuildPullOptions = Omit<PullOptions, 'image'>;

/** Pulls what `policy` asks for among `refs` (deduplicated, in order). */
export async function pullBaseImages(ctx: EngineContext, refs: string[], policy: PullPolicy, opts: BuildPullOptions): Promise<void> {
  if (policy === 'never') return;
  // loaded only when a build pulls: the registry client (undici) is not needed otherwise
  let pull: typeof import('../engine/pull').pullImages | undefined;
  for (const ref of new Set(refs)) {
    if (ref === 'scratch') continue;
    const have = ctx.store.images.find(ref) !== undefined;
    if (policy === 'missing' && have) continue;
    pull ??= (require('../engine/pull') as typeof import('../engine/pull')).pullImages;
    try {
      await pull(ctx, { ...opts, image: ref });
    } catch (e) {
      if (have) throw e;
      const k = asKilnError(e, 'E_TRANSPORT');
      throw new KilnError(k.code === 'E_POLICY' ? 'E_POLICY' : 'E_IMAGE_UNKNOWN', `${ref}: image not known locally, and pulling it failed: ${k.message}`, { ...(k.hint !== undefined ? { hint: k.hint } : {}), cause: e });
    }
  }
}
