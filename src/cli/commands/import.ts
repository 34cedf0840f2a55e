/** `kiln import [-c CHANGE]... [-m MSG] [-q] TARBALL [NAME]`: prints the new image's ID (sha256:…, as podman). */
import type { Command } from 'commander';
import { handler, write, collect } from '../output';
import { importImage } from '../../engine/import';

export function defineImport(cmd: Command): Command {
  return cmd
    .argument('<tarball>', "root filesystem tarball (plain or gzip), or '-' for standard input")
    .argument('[name]', 'name for the new image')
    .option('-c, --change <instruction>', 'Apply the following possible instructions to the created image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL)', collect, [])
    .option('-m, --message <message>', 'Set commit message for imported image')
    .option('-q, --quiet', 'Suppress output')
    .action(
      handler(async (ctx, tarball: string, name: string | undefined, o: { change: string[]; message?: string; quiet?: boolean }) => {
        const img = await importImage(ctx, { source: tarball, name, changes: o.change, message: o.message });
        if (!o.quiet) write(`sha256:${img.id}`);
      }),
    );
}

export function register(program: Command): void {
  defineImport(program.command('import').description('Import a tarball to create a filesystem image'));
}
