/**
 * `kiln port [-a] [-l] [CONTAINER] [PRIVATE_PORT[/PROTO]]` (and `kiln container port`):
 * podman's port mappings listing. kiln publishes no ports yet (networking is none, host or
 * loopback), so a container has no mappings: with a valid port and an existing container this
 * prints nothing and exits 0, as podman does for a container without mappings. Arguments are
 * checked with podman's wording; an unknown container is its "no such container" error.
 */
import type { Command } from 'commander';
import { handler } from '../output';
import { KilnError } from '../../errors';
import type { EngineContext } from '../../engine/context';

/** Go's strconv.ParseUint(s, 10, 16), with its error text. */
function parsePort(s: string): number {
  if (!/^\d+$/.test(s)) throw new KilnError('E_INVALID_ARGUMENT', `strconv.ParseUint: parsing ${JSON.stringify(s)}: invalid syntax`);
  const n = Number(s);
  if (n > 65535) throw new KilnError('E_INVALID_ARGUMENT', `strconv.ParseUint: parsing ${JSON.stringify(s)}: value out of range`);
  return n;
}

async function run(ctx: EngineContext, args: string[], o: { all?: boolean; latest?: boolean }): Promise<void> {
  if (args.length === 0 && !o.latest && !o.all) throw new KilnError('E_INVALID_ARGUMENT', 'you must supply a running container name or id');
  if (o.all && args.length > 0) throw new KilnError('E_INVALID_ARGUMENT', 'no arguments are needed with --all');
  if (args.length > 2) throw new KilnError('E_INVALID_ARGUMENT', '`port` accepts at most 2 arguments');
  const port = o.latest ? (args.length === 1 ? args[0] : undefined) : args[1];
  if (port !== undefined && port !== '') {
    const fields = port.split('/');
    if (fields.length > 2) throw new KilnError('E_INVALID_ARGUMENT', `port formats are port/protocol. '${port}' is invalid`);
    parsePort(fields[0]!);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { lookup } = require('../../container/lifecycle') as typeof import('../../container/lifecycle');
  if (o.all || o.latest) {
    for (const c of ctx.store.containers.list().slice(0, o.latest ? 1 : undefined)) await lookup(ctx, c.id);
    return;
  }
  await lookup(ctx, args[0]!);
  // no published ports: nothing to print
}

export function definePort(cmd: Command): Command {
  return cmd
    .argument('[args...]', 'CONTAINER [PRIVATE_PORT[/PROTO]]')
    .option('-a, --all', 'Display port information for all containers')
    .option('-l, --latest', 'Act on the latest container kiln knows about')
    .action(handler(run));
}

export function register(program: Command): void {
  definePort(program.command('port').description('List port mappings or a specific mapping for the container'));
}
