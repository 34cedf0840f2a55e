/**
 * `kiln run`: create and start a container (container/run.ts). Detached (-d) it prints the ID
 * and returns while conmon keeps the container; attached it streams the output and exits with
 * the container's exit code; a container that could not be started exits 125/126/127 as podman.
 */
import type { Command } from 'commander';
import { handler, write, ExitError, printError } from '../output';
import { defineCreateFlags, createOptions, pullForCreate, type CreateFlags } from './container-flags';
import { RuntimeStartError } from '../../runtime/types';
import type { EngineContext } from '../../engine/context';

interface RunFlags extends CreateFlags {
  detach?: boolean;
}

async function run(ctx: EngineContext, image: string, command: string[], o: RunFlags): Promise<void> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { runContainer } = require('../../container/run') as typeof import('../../container/run');
  await pullForCreate(ctx, image, o);
  const stdin = o.interactive ? process.stdin : undefined;
  const raw = o.tty && o.interactive && process.stdin.isTTY && !o.detach;
  if (raw) process.stdin.setRawMode(true);
  try {
    const r = await runContainer(ctx, { ...createOptions(image, command, o, process.argv.slice(2)), detach: o.detach ?? false }, { ...(stdin ? { stdin } : {}), stdout: process.stdout, stderr: process.stderr });
    if (o.detach) write(r.id);
    else if (r.exitCode !== 0) throw new ExitError(r.exitCode ?? 125);
  } catch (e) {
    if (e instanceof RuntimeStartError) {
      printError(e);
      throw new ExitError(e.exitCode);
    }
    throw e;
  } finally {
    if (raw) process.stdin.setRawMode(false);
    if (stdin) process.stdin.pause();
  }
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
      const raw = o.stdin && process.stdin.isTTY;
      if (raw) process.stdin.setRawMode(true);
      try {
        const code = await attachRunning(ctx, name, { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, noStdin: !o.stdin });
        if (code !== 0) throw new ExitError(code);
      } finally {
        if (raw) process.stdin.setRawMode(false);
        process.stdin.pause();
      }
    }));
}
