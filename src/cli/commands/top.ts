/**
 * `kiln top [-l] CONTAINER [DESCRIPTORS...]` (and `kiln container top`): the container's
 * processes in podman's table (container/top.ts), or with descriptors kiln does not know, the
 * output of `ps DESCRIPTORS` run inside the container.
 */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { KilnError } from '../../errors';
import { alignColumns } from '../../format/report';

export function defineTop(cmd: Command): Command {
  return cmd
    .argument('[container]')
    .argument('[descriptors...]', 'format descriptors (user, pid, ppid, pcpu, etime, tty, time, args, ...), or ps(1) arguments')
    .option('-l, --latest', 'Act on the latest container kiln knows about')
    .allowUnknownOption()
    .action(handler(async (ctx, container: string | undefined, descriptors: string[], o: { latest?: boolean }) => {
      let ref = container;
      let args = descriptors;
      if (o.latest) {
        ref = ctx.store.containers.list()[0]?.id;
        args = container === undefined ? descriptors : [container, ...descriptors];
        if (ref === undefined) throw new KilnError('E_CONTAINER_UNKNOWN', 'no containers to show the processes of');
      }
      if (ref === undefined) throw new KilnError('E_INVALID_ARGUMENT', 'you must provide the name or ID of a running container');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { containerTop } = require('../../container/top') as typeof import('../../container/top');
      const r = await containerTop(ctx, ref, args);
      write('lines' in r ? r.lines.join('\n') : alignColumns([r.header, ...r.rows]));
    }));
}

export function register(program: Command): void {
  defineTop(program.command('top').description('Display the running processes of a container'));
}
