/**
 * `kiln run`: create and start a container (container/run.ts). Detached (-d) it prints the ID
 * and returns while conmon keeps the container; attached it streams the output and exits with
 * the container's exit code; a container that could not be started exits 125/126/127 as podman.
 */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { withContainerIO } from '../container-io';
import { defineCreateFlags, createOptions, pullForCreate, type CreateFlags } from './container-flags';
import type { EngineContext } from '../../engine/context';

interface RunFlags extends CreateFlags {
  detach?: boolean;
}

async function run(ctx: EngineContext, image: string, command: string[], o: RunFlags): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runContainer } = require('../../container/run') as typeof import('../../container/run');
  await pullForCreate(ctx, image, o);
  await withContainerIO({ raw: (o.tty ?? false) && !o.detach, stdin: o.interactive ?? false }, async () => {
    const r = await runContainer(ctx, { ...createOptions(image, command, o, process.argv.slice(2)), detach: o.detach ?? false }, {
      ...(o.interactive ? { stdin: process.stdin } : {}), stdout: process.stdout, stderr: process.stderr,
    });
    if (o.detach) write(r.id);
    return r.exitCode;
  });
}

export function register(program: Command): void {
  defineCreateFlags(program.command('run').description('Run a command in a new container'))
    .option('-d, --detach', 'Run container in background and print container ID')
    .action(handler(run));
}

export function register_attach(program: Command): void {
  program.command('attach').description('Attach to a running container')
    .argument('<container>')
    .option('--no-stdin', 'Do not attach STDIN. The default is false')
    .option('--sig-proxy', 'Proxy received signals to the process (default true)', true)
    .action(handler(async (ctx, name: string, o: { stdin: boolean }) => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { attachRunning } = require('../../container/run') as typeof import('../../container/run');
      await withContainerIO({ raw: true, stdin: o.stdin }, () =>
        attachRunning(ctx, name, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, noStdin: !o.stdin }));
    }));
}
