/** `kiln tag IMAGE NAME...` and `kiln untag IMAGE [NAME...]`. */
import type { Command } from 'commander';
import { handler } from '../output';
import { tagImage, untagImage } from '../../engine/images';

export function defineTag(cmd: Command): Command {
  return cmd
    .argument('<image>', 'image to tag')
    .argument('<names...>', 'new names')
    .action(handler((ctx, image: string, names: string[]) => void tagImage(ctx, image, names)));
}

export function defineUntag(cmd: Command): Command {
  return cmd
    .argument('<image>', 'image to untag')
    .argument('[names...]', 'names to remove (all if none)')
    .action(handler((ctx, image: string, names: string[]) => void untagImage(ctx, image, names)));
}

export function register_tag(program: Command): void {
  defineTag(program.command('tag').description('Add an additional name to a local image'));
}

export function register_untag(program: Command): void {
  defineUntag(program.command('untag').description('Remove a name from a local image'));
}
