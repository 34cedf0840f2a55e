/**
 * `kiln create/start/stop/kill/restart/rm/wait` and `kiln container cleanup` (conmon's exit
 * command): each builds its options and calls one engine function per container, printing
 * what podman prints (the name or ID as given) and failing with podman's exit codes.
 */
import type { Command } from 'commander';
import { handler, write, ExitError, printError } from '../output';
import { createContainer } from '../../container/create';
import { cleanupContainer, killContainer, removeContainer, startContainer, stopContainer, waitContainer } from '../../container/lifecycle';
import { parseSignal } from '../../container/flags';
import { defineCreateFlags, createOptions, pullForCreate, type CreateFlags } from './container-flags';
import { isKilnError, KilnError } from '../../errors';
import type { EngineContext } from '../../engine/context';
import { withContainerIO } from '../container-io';

/** podman runs a command on each named container and reports failures per container; exit 125 if any failed. */
async function eachContainer(names: string[], fn: (name: string) => Promise<string | undefined>): Promise<void> {
  let failed: unknown;
  for (const n of names) {
    try {
      const out = await fn(n);
      if (out !== undefined) write(out);
    } catch (e) {
      if (failed !== undefined) printError(failed);
      failed = e;
    }
  }
  if (failed !== undefined) throw failed;
}

/** --all / --latest select containers instead of names. */
function targets(ctx: EngineContext, names: string[], o: { all?: boolean; latest?: boolean }, filter?: (s: string) => boolean): string[] {
  if (o.all || o.latest) {
    const all = ctx.store.containers.list().filter((c) => !filter || filter(c.state.status));
    return (o.latest ? all.slice(0, 1) : all).map((c) => c.id);
  }
  if (names.length === 0) throw new KilnError('E_INVALID_ARGUMENT', 'you must provide at least one container name or ID');
  return names;
}

export function register_create(program: Command): void {
  defineCreateFlags(program.command('create').description('Create but do not start a container'))
    .action(handler(async (ctx, image: string, command: string[], o: CreateFlags) => {
      await pullForCreate(ctx, image, o);
      write(createContainer(ctx, createOptions(image, command, o, process.argv.slice(2))).id);
    }));
}

export function register_start(program: Command): void {
  program.command('start').description('Start one or more containers')
    .argument('[containers...]')
    .option('-a, --attach', 'Attach container\'s STDOUT and STDERR')
    .option('-i, --interactive', 'Keep STDIN open even if not attached')
    .option('--all', 'Start all containers regardless of their state or configuration')
    .action(handler(async (ctx, names: string[], o: { attach?: boolean; interactive?: boolean; all?: boolean }) => {
      if (o.attach) {
        if (names.length !== 1) throw new KilnError('E_INVALID_ARGUMENT', 'you cannot start and attach multiple containers at once');
        // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { startAttached } = require('../../container/run') as typeof import('../../container/run');
        await withContainerIO({ raw: true, stdin: o.interactive ?? false }, () =>
          startAttached(ctx, names[0]!, { ...(o.interactive ? { stdin: process.stdin } : {}), stdout: process.stdout, stderr: process.stderr }));
        return;
      }
      await eachContainer(targets(ctx, names, o), async (n) => {
        await startContainer(ctx, n);
        return n;
      });
    }));
}

export function register_stop(program: Command): void {
  program.command('stop').description('Stop one or more containers')
    .argument('[containers...]')
    .option('-t, --time <seconds>', 'Seconds to wait for stop before killing the container', (v) => {
      if (!/^-?\d+$/.test(v)) throw new KilnError('E_INVALID_ARGUMENT', `--time ${JSON.stringify(v)}: must be a whole number of seconds`);
      return Number(v);
    })
    .option('-a, --all', 'Stop all running containers')
    .option('-l, --latest', 'Act on the latest container kiln knows about')
    .option('-i, --ignore', 'Ignore errors when a specified container is missing')
    .action(handler(async (ctx, names: string[], o: { time?: number; all?: boolean; latest?: boolean; ignore?: boolean }) => {
      await eachContainer(targets(ctx, names, o, (s) => s === 'running'), async (n) => {
        try {
          await stopContainer(ctx, n, o.time !== undefined && o.time < 0 ? 1e9 : o.time);
        } catch (e) {
          if (o.ignore && isKilnError(e, 'E_CONTAINER_UNKNOWN')) return undefined;
          throw e;
        }
        return n;
      });
    }));
}

export function register_kill(program: Command): void {
  program.command('kill').description('Kill one or more running containers with a specific signal')
    .argument('[containers...]')
    .option('-s, --signal <signal>', 'Signal to send to the container', 'KILL')
    .option('-a, --all', 'Signal all running containers')
    .option('-l, --latest', 'Act on the latest container kiln knows about')
    .action(handler(async (ctx, names: string[], o: { signal: string; all?: boolean; latest?: boolean }) => {
      const sig = parseSignal('--signal', o.signal);
      await eachContainer(targets(ctx, names, o, (s) => s === 'running'), async (n) => {
        await killContainer(ctx, n, sig);
        return n;
      });
    }));
}

export function register_restart(program: Command): void {
  program.command('restart').description('Restart one or more containers')
    .argument('[containers...]')
    .option('-t, --time <seconds>', 'Seconds to wait for stop before killing the container', Number)
    .option('-a, --all', 'Restart all non-running containers')
    .option('-l, --latest', 'Act on the latest container kiln knows about')
    .action(handler(async (ctx, names: string[], o: { time?: number; all?: boolean; latest?: boolean }) => {
      await eachContainer(targets(ctx, names, o), async (n) => {
        const c = await stopContainer(ctx, n, o.time);
        ctx.store.containers.update(c.id, (s) => ({ ...s, restartCount: (s.restartCount ?? 0) + 1 }));
        await startContainer(ctx, c.id);
        return c.id;
      });
    }));
}

export function register_rm(program: Command): void {
  program.command('rm').description('Remove one or more containers')
    .argument('[containers...]')
    .option('-f, --force', 'Force removal of a running or unusable container')
    .option('-v, --volumes', 'Remove anonymous volumes associated with the container')
    .option('-a, --all', 'Remove all containers')
    .option('-t, --time <seconds>', 'Seconds to wait for stop before killing the container', Number)
    .option('-i, --ignore', 'Ignore errors when a specified container is missing')
    .action(handler(async (ctx, names: string[], o: { force?: boolean; volumes?: boolean; all?: boolean; time?: number; ignore?: boolean }) => {
      let stateError = false;
      try {
        await eachContainer(targets(ctx, names, { all: o.all }), async (n) => {
          try {
            return await removeContainer(ctx, n, { force: o.force ?? false, volumes: o.volumes ?? false, ...(o.time !== undefined ? { time: o.time } : {}) });
          } catch (e) {
            if (isKilnError(e, 'E_CONTAINER_UNKNOWN') && o.ignore) return undefined;
            if (isKilnError(e, 'E_CONTAINER_STATE')) stateError = true;
            throw e;
          }
        });
      } catch (e) {
        // podman rm: 1 no such container, 2 a container is running, 125 other
        printError(e);
        throw new ExitError(isKilnError(e, 'E_CONTAINER_UNKNOWN') ? 1 : stateError ? 2 : 125);
      }
    }));
}

export function register_wait(program: Command): void {
  program.command('wait').description('Block on one or more containers')
    .argument('<containers...>')
    .option('--condition <state>', 'Condition to wait on (stopped, exited)', 'stopped')
    .action(handler(async (ctx, names: string[]) => {
      await eachContainer(names, async (n) => String(await waitContainer(ctx, n)));
    }));
}

/**
 * `kiln container cleanup ID`: conmon's exit command (also usable by hand, as podman's). A
 * container already removed (a foreground `run --rm` got there first) is not an error.
 */
export function defineCleanup(cmd: Command): Command {
  return cmd.argument('<containers...>')
    .action(handler(async (ctx, names: string[]) => {
      await eachContainer(names, async (n) => {
        const c = ctx.store.containers.find(n);
        if (c) await cleanupContainer(ctx, c.id);
        return undefined;
      });
    }));
}
