/** `kiln exec [-i] [-d] [-e] [-u] [-w] CONTAINER COMMAND…` (container/exec.ts). */
import type { Command } from 'commander';
import { handler, collect } from '../output';
import { withContainerIO } from '../container-io';
import { KilnError } from '../../errors';

interface Opts {
  interactive?: boolean;
  tty?: boolean;
  detach?: boolean;
  env: string[];
  envFile: string[];
  user?: string;
  workdir?: string;
  privileged?: boolean;
}

export function register(program: Command): void {
  program.command('exec').description('Run a process in a running container')
    .argument('<container>')
    .argument('[command...]')
    .passThroughOptions()
    .option('-i, --interactive', 'Keep STDIN open even if not attached')
    .option('-t, --tty', 'Allocate a pseudo-TTY')
    .option('-d, --detach', 'Run the exec session in detached mode (backgrounded)')
    .option('-e, --env <env>', 'Set environment variables', collect, [])
    .option('--env-file <file>', 'Read in a file of environment variables', collect, [])
    .option('-u, --user <user>', 'Sets the username or UID used and optionally the groupname or GID for the specified command')
    .option('-w, --workdir <dir>', 'Working directory inside the container')
    .option('--privileged', 'Give the process extended Linux capabilities inside the container')
    .action(handler(async (ctx, container: string, command: string[], o: Opts) => {
      if (o.tty && o.detach) throw new KilnError('E_INVALID_ARGUMENT', '--tty and --detach cannot be used together for exec');
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { execInContainer } = require('../../container/exec') as typeof import('../../container/exec');
      await withContainerIO({ raw: o.tty ?? false, stdin: o.interactive ?? false }, () =>
        execInContainer(ctx, {
          container, command, env: o.env, envFiles: o.envFile,
          ...(o.user !== undefined ? { user: o.user } : {}), ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
          detach: o.detach ?? false, interactive: o.interactive ?? false, tty: o.tty ?? false, privileged: o.privileged ?? false,
        }, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr }));
    }));
}
