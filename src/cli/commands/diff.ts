/**
 * `kiln diff [--format json] CONTAINER` (and `kiln container diff`): podman's "C /etc" lines
 * in the order containers/storage finds the changes, or `--format json`: {"changed": [...],
 * "added": [...], "deleted": [...]} with podman's five-space indent (container/diff.ts).
 */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { KilnError } from '../../errors';
import { isJsonFormat } from '../../format/report';
import { goJson, goStruct } from '../../format/units';
import type { EngineContext } from '../../engine/context';

interface Opts {
  format?: string;
  latest?: boolean;
}

async function run(ctx: EngineContext, ref: string | undefined, o: Opts): Promise<void> {
  if (o.format !== undefined && o.format !== '' && !isJsonFormat(o.format)) throw new KilnError('E_INVALID_ARGUMENT', "only supported value for '--format' is 'json'");
  if (o.latest && ref !== undefined) throw new KilnError('E_INVALID_ARGUMENT', '--latest and containers cannot be used together');
  const target = o.latest ? ctx.store.containers.list()[0]?.id : ref;
  if (target === undefined) throw new KilnError('E_INVALID_ARGUMENT', o.latest ? 'no containers to diff' : '"diff" requires a name, id, or the "--latest" flag');
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { containerDiff } = require('../../container/diff') as typeof import('../../container/diff');
  const changes = await containerDiff(ctx, target);
  if (o.format !== undefined && o.format !== '') {
    const pick = (k: string) => changes.filter((c) => c.kind === k).map((c) => c.path);
    const body: Record<string, string[]> = {};
    for (const [key, kind] of [['changed', 'C'], ['added', 'A'], ['deleted', 'D']] as const) if (pick(kind).length > 0) body[key] = pick(kind);
    write(goJson(goStruct(body), { indent: '     ' }));
    return;
  }
  write(changes.map((c) => `${c.kind} ${c.path}`).join('\n'));
}

export function defineDiff(cmd: Command): Command {
  return cmd
    .argument('[container]')
    .option('--format <format>', "Change the output format (only 'json')")
    .option('-l, --latest', 'Act on the latest container kiln knows about')
    .action(handler(run));
}

export function register(program: Command): void {
  defineDiff(program.command('diff').description("Display the changes to the object's file system"));
}
