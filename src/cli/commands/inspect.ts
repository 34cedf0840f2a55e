/** `kiln inspect [--format F] IMAGE...`: podman's JSON array, or one template line per image. */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { inspectImage } from '../../engine/inspect';
import { formatInspect } from '../../format/report';
import { KilnError } from '../../errors';

export function defineInspect(cmd: Command): Command {
  return cmd
    .argument('<images...>', 'images to inspect')
    .option('-f, --format <format>', "Format the output to a Go template or json")
    .option('-t, --type <type>', 'Specify inspect-object type (image)', 'image')
    .action(
      handler((ctx, images: string[], o: { format?: string; type: string }) => {
        if (o.type !== 'image' && o.type !== 'all') throw new KilnError('E_INVALID_ARGUMENT', `--type ${o.type}: only "image" is supported`);
        // podman prints what it found, then fails for the rest
        const found: ReturnType<typeof inspectImage>[] = [];
        const errors: unknown[] = [];
        for (const i of images) {
          try {
            found.push(inspectImage(ctx, i));
          } catch (e) {
            errors.push(e);
          }
        }
        write(formatInspect(found, o.format));
        if (errors.length) throw errors[0];
      }),
    );
}

export function register(program: Command): void {
  defineInspect(program.command('inspect').description('Display the configuration of an image'));
}
