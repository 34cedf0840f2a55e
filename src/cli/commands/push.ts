/** `kiln push IMAGE DESTINATION` (oci:, oci-archive:, docker-archive:, dir: for now). */
import type { Command } from 'commander';
import { handler } from '../output';
import { pushImage } from '../../engine/transfer';

export function definePush(cmd: Command): Command {
  return cmd
    .argument('<image>', 'image to push')
    .argument('<destination>', 'oci:DIR[:TAG], oci-archive:PATH, docker-archive:PATH or dir:PATH')
    .option('-q, --quiet', 'Suppress output information when pushing images')
    .action(handler((ctx, image: string, destination: string) => pushImage(ctx, { image, destination })));
}

export function register(program: Command): void {
  definePush(program.command('push').description('Push an image to a specified destination'));
}
