/**
 * `kiln system check [--repair]`: compares store records with files (podman 5's
 * `system check`). Exit 0 when consistent; 125 with a list of problems otherwise. --repair
 * first removes debris left by killed kiln processes.
 */
import type { Command } from 'commander';
import { handler, write, ExitError } from '../output';
import { check } from '../../store/repair';

export function register(program: Command): void {
  const system = program.command('system').description('Manage kiln');
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
