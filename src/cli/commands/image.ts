/**
 * `kiln image SUBCOMMAND`: podman's image group. Subcommands reuse the top-level commands'
 * definitions; `exists` is only here (exit 0 if the image exists, 1 if not, as podman).
 */
import type { Command } from 'commander';
import { handler, ExitError } from '../output';
import { imageExists } from '../../engine/images';

export function register(program: Command): void {
  const image = program.command('image').description('Manage images');
  image
    .command('exists')
    .description('Check if an image exists in local storage')
    .argument('<image>', 'image name or ID')
    .action(
      handler((ctx, ref: string) => {
        if (!imageExists(ctx, ref)) throw new ExitError(1);
      }),
    );
  const sub = (name: string, mod: string, def: string, aliases: string[] = []) => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require(`./${mod}.js`) as Record<string, (c: Command) => Command>;
    const c = image.command(name);
    for (const a of aliases) c.alias(a);
    m[def]!(c);
  };
  sub('list', 'images', 'defineImages', ['ls']);
  sub('rm', 'rmi', 'defineRmi');
  sub('tag', 'tag', 'defineTag');
  sub('untag', 'tag', 'defineUntag');
  sub('inspect', 'inspect', 'defineInspect');
  sub('history', 'history', 'defineHistory');
  sub('save', 'save', 'defineSave');
  sub('load', 'load', 'defineLoad');
  sub('import', 'import', 'defineImport');
  sub('push', 'push', 'definePush');
  sub('mount', 'mount', 'defineMount');
  sub('unmount', 'mount', 'defineUnmount', ['umount']);
}
