/** `kiln container inspect [--format F] CONTAINER...`: podman's JSON array, or a template line each. */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { formatInspect } from '../../format/report';
import { inspectContainer } from '../../container/inspect';

export function registerIn(group: Command): void {
  group.command('inspect').description('Display the configuration of a container')
    .argument('<containers...>')
    .option('-f, --format <format>', 'Format the output to a Go template or json')
    .action(handler(async (ctx, names: string[], o: { format?: string }) => {
      const found: unknown[] = [];
      const errors: unknown[] = [];
      for (const n of names) {
        try {
          found.push(await inspectContainer(ctx, n));
        } catch (e) {
          errors.push(e);
        }
      }
      write(formatInspect(found, o.format));
      if (errors.length) throw errors[0];
    }));
}
