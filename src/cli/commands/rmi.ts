/** `kiln rmi [-f] [-a] [-i] IMAGE...`: podman's output ("Untagged: …", "Deleted: …") and exit codes. */
import type { Command } from 'commander';
import { handler, write, printError, ExitError } from '../output';
import { removeImages, rmiExitCode } from '../../engine/rmi';
import { KilnError } from '../../errors';

export function defineRmi(cmd: Command): Command {
  return cmd
    .argument('[images...]', 'images to remove')
    .option('-f, --force', 'Force Removal of the image')
    .option('-a, --all', 'Remove all images')
    .option('-i, --ignore', 'Ignore errors if a specified image does not exist')
    .action(
      handler(async (ctx, images: string[], o: { force?: boolean; all?: boolean; ignore?: boolean }) => {
        if (images.length === 0 && !o.all) throw new KilnError('E_INVALID_ARGUMENT', 'image name or ID must be specified');
        if (images.length > 0 && o.all) throw new KilnError('E_INVALID_ARGUMENT', 'when using the --all switch, you may not pass any images names or IDs');
        const r = await removeImages(ctx, images, o);
        write([...r.untagged.map((n) => `Untagged: ${n}`), ...r.deleted.map((d) => `Deleted: ${d}`)].join('\n'));
        if (r.errors.length) {
          for (const e of r.errors) printError(e);
          throw new ExitError(rmiExitCode(r.errors));
        }
      }),
    );
}

export function register(program: Command): void {
  defineRmi(program.command('rmi').description('Remove one or more images from local storage'));
}
