/**
 * `kiln system check [--repair]`: compares store records with files (podman 5's
 * `system check`). Exit 0 when consistent; 125 with a list of problems otherwise. --repair
 * first removes debris left by killed kiln processes.
 * `kiln system prune [-a] [-f]`: removes the build cache, cache mounts and dangling images.
 */
import type { Command } from 'commander';
import { handler, write, ExitError } from '../output';
import { check } from '../../store/repair';

/** podman's prompt; anything but y/yes (and a closed stdin) declines. */
async function confirm(all: boolean): Promise<boolean> {
  process.stdout.write(`WARNING! This command removes:
	- the build cache and RUN --mount=type=cache directories
	- ${all ? 'all images without at least one container associated with them' : 'all dangling images'}

Are you sure you want to continue? [y/N] `);
  const answer = await new Promise<string>((resolve) => {
    let buf = '';
    process.stdin.setEncoding('utf8');
    process.stdin.on('data', (d: string) => {
      buf += d;
      if (buf.includes('\n')) {
        process.stdin.pause();
        resolve(buf);
      }
    });
    process.stdin.on('end', () => resolve(buf));
  });
  return /^y(es)?$/i.test(answer.trim());
}

export function register(program: Command): void {
  const system = program.command('system').description('Manage kiln');
  system
    .command('prune')
    .description('Remove unused data: the build cache, RUN cache mounts and dangling images')
    .option('-a, --all', 'Remove all unused images, not just dangling ones')
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(
      handler(async (ctx, o: { all?: boolean; force?: boolean }) => {
        if (!o.force && !(await confirm(o.all === true))) return;
        const { prune } = require('../../engine/prune') as typeof import('../../engine/prune');
        const { humanSize } = require('../../format/units') as typeof import('../../format/units');
        const r = await prune(ctx, { all: o.all === true });
        const out = ['Deleted Images', ...r.images, `Deleted build cache entries: ${r.cacheEntries}`, `Total reclaimed space: ${humanSize(r.reclaimed)}`];
        write(out.join('\n'));
      }),
    );
  system
    .command('check')
    .description('Check the store for consistency')
    .option('-r, --repair', 'Remove debris left by killed kiln processes')
    .option('-q, --quiet', 'Print nothing when the store is consistent')
    .action(
      handler((ctx, o: { repair?: boolean; quiet?: boolean }) => {
        if (o.repair) {
          const r = ctx.store.recoverDebris(true);
          if (r && !o.quiet) {
            write(`Removed debris: ${r.deadOwners.length} work dirs, ${r.orphanBlobs.length} blob files, ${r.orphanLayers.length} layer dirs, ${r.collectedLayers.length} unused layers, ${r.collectedBlobs.length} unused blobs; restored ${r.restored.length} files of interrupted removals`);
          }
        }
        const rep = check(ctx.store);
        const lines = [...rep.problems, ...rep.debris];
        if (lines.length) {
          write(lines.join('\n'));
          throw new ExitError(125, `store ${ctx.store.paths.root} is not consistent (${rep.problems.length} problems, ${rep.debris.length} leftovers)`);
        }
        if (!o.quiet) write('No problems found');
      }),
    );
}
