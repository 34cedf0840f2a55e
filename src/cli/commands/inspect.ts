/** `kiln inspect [--format F] NAME...`: containers or images, podman's JSON array or one template line each. */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { inspectImage } from '../../engine/inspect';
import { formatInspect } from '../../format/report';
import { KilnError } from '../../errors';

export function defineInspect(cmd: Command, defaultType = 'all'): Command {
  return cmd
    .argument('<names...>', 'images or containers to inspect')
    .option('-f, --format <format>', "Format the output to a Go template or json")
    .option('-t, --type <type>', 'Specify inspect-object type (image, container, all)', defaultType)
    .action(
      handler(async (ctx, names: string[], o: { format?: string; type: string }) => {
        if (!['image', 'container', 'all'].includes(o.type)) throw new KilnError('E_INVALID_ARGUMENT', `--type ${o.type}: must be image, container or all`);
        // podman prints what it found, then fails for the rest; containers before images
        const found: unknown[] = [];
        const errors: unknown[] = [];
        for (const n of names) {
          try {
            if (o.type !== 'image' && ctx.store.containers.find(n)) {
              // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { inspectContainer } = require('../../container/inspect') as typeof import('../../container/inspect');
              found.push(await inspectContainer(ctx, n));
            } else if (o.type === 'container') {
              ctx.store.containers.resolve(n);
            } else {
              found.push(inspectImage(ctx, n));
            }
          } catch (e) {
            errors.push(e);
          }
        }
        write(formatInspect(found, o.format));
        if (errors.length) throw errors[0];
      }),
    );
}

/** `kiln image inspect`: images only. */
export function defineImageInspect(cmd: Command): Command {
  return defineInspect(cmd, 'image');
}

export function register(program: Command): void {
  defineInspect(program.command('inspect').description('Display the configuration of object denoted by ID'));
}
