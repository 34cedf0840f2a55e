/**
 * `kiln cp [-a/--archive=BOOL] [--overwrite] SRC DEST` (and `kiln container cp`): SRC and DEST
 * are CONTAINER:PATH, a host path, or `-` for a tar on stdin/stdout (container/cp.ts). Prints
 * nothing on success, as podman.
 */
import type { Command } from 'commander';
import { handler } from '../output';
import { parseGoBool } from '../../build/frontend/flags';
import { KilnError } from '../../errors';

interface Opts {
  archive: boolean | string;
  overwrite?: boolean;
}

export function defineCp(cmd: Command): Command {
  return cmd
    .argument('[src]', 'CONTAINER:PATH, a host path, or - for a tar on standard input')
    .argument('[dest]', 'CONTAINER:PATH, a host path, or - for a tar on standard output')
    .option('-a, --archive [bool]', 'Chown copied files to the primary uid/gid of the destination container (--archive=false keeps the source ids)', true)
    .option('--overwrite', 'Allow to overwrite directories with non-directories and vice versa')
    .action(handler(async (ctx, src: string | undefined, dest: string | undefined, o: Opts) => {
      // `-a SRC DEST`: commander took SRC as the flag's value; podman's flag takes none there
      let archive = true;
      if (typeof o.archive === 'string') {
        const v = o.archive.replace(/^=/, '');
        const b = parseGoBool(v);
        if (b !== undefined) archive = b;
        else if (dest !== undefined) throw new KilnError('E_INVALID_ARGUMENT', 'accepts 2 arg(s), received 3');
        else [src, dest] = [v, src];
      } else archive = o.archive;
      if (src === undefined || dest === undefined) throw new KilnError('E_INVALID_ARGUMENT', `accepts 2 arg(s), received ${[src, dest].filter((x) => x !== undefined).length}`);
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { copyFiles } = require('../../container/cp') as typeof import('../../container/cp');
      await copyFiles(ctx, { source: src, dest, archive, overwrite: o.overwrite ?? false }, {
        get stdin() { return process.stdin; },
        stdout: process.stdout,
      });
    }));
}

export function register(program: Command): void {
  defineCp(program.command('cp').description('Copy files/folders between a container and the local filesystem'));
}
