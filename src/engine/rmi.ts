/**
 * `kiln rmi`: podman's rules. Removing by a name of an image that has other names only untags
 * that name; removing by ID an image with several names needs --force; an image used by a
 * container needs --force. Errors per image are collected so that the others are still removed;
 * the exit code follows podman (1 unknown image, 2 in use, 125 other).
 */
import { KilnError, asKilnError } from '../errors';
import { pickName } from '../image/reference';
import type { EngineContext } from './context';

export interface RmiOptions {
  force?: boolean;
  all?: boolean;
  /** like podman's --ignore: unknown images are not an error */
  ignore?: boolean;
}

export interface RmiReport {
  untagged: string[];
  deleted: string[];
  errors: KilnError[];
}

const ID_LIKE = /^(sha256:)?[a-f0-9]{3,64}$/;

export async function removeImages(ctx: EngineContext, refs: string[], opts: RmiOptions = {}): Promise<RmiReport> {
  const store = ctx.store;
  const report: RmiReport = { untagged: [], deleted: [], errors: [] };
  const targets = opts.all ? store.images.list().map((i) => i.id) : [...new Set(refs)];
  for (const ref of targets) {
    try {
      // --force: the containers using the image go first, stopped and removed as `kiln rm -f`
      // would (the transaction below only deletes records)
      const img = opts.force ? store.images.find(ref) : undefined;
      if (img) {
        const users = store.images.containersUsing(img.id);
        if (users.length > 0) {
          // eslint-disable-next-line @typescript-eslint/no-require-imports
          const { removeContainer } = require('../container/lifecycle') as typeof import('../container/lifecycle');
          for (const c of users) await removeContainer(ctx, c, { force: true });
        }
      }
      // Decide and act in one transaction: a concurrent tag must not slip between them.
      const outcome = store.writeTx((): { untagged: string[]; deleted?: string } | undefined => {
        const img = store.images.find(ref);
        if (!img) return undefined;
        const name = opts.all ? undefined : pickName(img.names, ref);
        const byID = opts.all || (ID_LIKE.test(ref) && img.id.startsWith(ref.replace(/^sha256:/, '')) && name === undefined);
        // by one of several names: only that name goes
        if (!byID && img.names.length > 1 && name !== undefined && store.images.removeName(img.id, name)) return { untagged: [name] };
        if (byID && img.names.length > 1 && !opts.force && !opts.all) {
          throw new KilnError('E_INVALID_ARGUMENT', `unable to delete image ${img.id} by ID with more than one tag (${img.names.join(', ')}): please force removal`);
        }
        const removed = store.images.removeTx(img.id, !!opts.force);
        return { untagged: removed.untagged, deleted: removed.id };
      });
      await store.emptyTrash();
      if (!outcome) {
        if (!opts.ignore) report.errors.push(new KilnError('E_IMAGE_UNKNOWN', `${ref}: image not known`));
        continue;
      }
      report.untagged.push(...outcome.untagged);
      if (outcome.deleted) report.deleted.push(outcome.deleted);
    } catch (e) {
      report.errors.push(asKilnError(e));
    }
  }
  return report;
}

/** podman's rmi exit code for a set of errors. */
export function rmiExitCode(errors: KilnError[]): number {
  if (errors.length === 0) return 0;
  if (errors.every((e) => e.code === 'E_IMAGE_UNKNOWN')) return 1;
  if (errors.some((e) => e.code === 'E_IMAGE_IN_USE')) return 2;
  return 125;
}
