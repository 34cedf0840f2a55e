/** `kiln logs [-f] [--since] [--until] [--tail N] [-t] CONTAINER...`: the k8s-file log conmon writes. */
import * as path from 'node:path';
import type { Command } from 'commander';
import { handler } from '../output';
import { KilnError } from '../../errors';
import { parseSince, readLogs } from '../../container/logs';
import { lookup, syncState } from '../../container/lifecycle';
import { bundleDir } from '../../container/rootfs';

interface Opts {
  follow?: boolean;
  since?: string;
  until?: string;
  tail?: string;
  timestamps?: boolean;
  names?: boolean;
  latest?: boolean;
}

export function register(program: Command): void {
  program.command('logs').description('Fetch the logs of one or more containers')
    .argument('[containers...]')
    .option('-f, --follow', 'Follow log output')
    .option('--since <time>', 'Show logs since TIMESTAMP')
    .option('--until <time>', 'Show logs until TIMESTAMP')
    .option('--tail <n>', 'Output the specified number of LINES at the end of the logs (-1: all)')
    .option('-t, --timestamps', 'Output the timestamps in the log')
    .option('-l, --latest', 'Act on the latest container kiln knows about')
    .action(handler(async (ctx, names: string[], o: Opts) => {
      let refs = names;
      if (o.latest) refs = ctx.store.containers.list().slice(0, 1).map((c) => c.id);
      if (refs.length === 0) throw new KilnError('E_INVALID_ARGUMENT', 'no container specified: give a container name or ID, or --latest');
      let tail: number | undefined;
      if (o.tail !== undefined) {
        if (!/^-?\d+$/.test(o.tail)) throw new KilnError('E_INVALID_ARGUMENT', `--tail ${JSON.stringify(o.tail)}: must be a number of lines`);
        tail = Number(o.tail);
      }
      const since = o.since !== undefined ? parseSince(o.since) : undefined;
      const until = o.until !== undefined ? parseSince(o.until, Date.now(), '--until') : undefined;
      for (const r of refs) {
        const c = lookup(ctx, r);
        const file = path.join(bundleDir(ctx.store, c.id), 'ctr.log');
        await readLogs(file, {
          ...(since !== undefined ? { since } : {}),
          ...(until !== undefined ? { until } : {}),
          ...(tail !== undefined ? { tail } : {}),
          timestamps: o.timestamps ?? false,
          follow: o.follow ?? false,
          stop: () => {
            const now = ctx.store.containers.get(c.id);
            return !now || syncState(ctx, now).state.status !== 'running';
          },
        }, { stdout: process.stdout, stderr: process.stderr });
      }
    }));
}
