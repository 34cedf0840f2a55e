/** `kiln info [--format F]`: YAML-like text by default (as podman), JSON or a template with --format. */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { info } from '../../engine/info';
import { formatOne } from '../../format/report';

/** Renders nested objects as podman's YAML-ish `info` output. */
function yaml(v: unknown, indent = ''): string {
  if (v === null || typeof v !== 'object') return `${JSON.stringify(v)}`;
  return Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => (x !== null && typeof x === 'object' ? `${indent}${k}:\n${yaml(x, `${indent}  `)}` : `${indent}${k}: ${typeof x === 'string' ? x : JSON.stringify(x)}`))
    .join('\n');
}

export function register(program: Command): void {
  program
    .command('info')
    .description('Display kiln system information')
    .option('-f, --format <format>', 'Change the output format to JSON or a Go template')
    .action(
      handler((ctx, o: { format?: string }) => {
        const data = info(ctx);
        if (o.format === 'json') write(JSON.stringify(data, null, 4));
        else if (o.format) write(formatOne(data, o.format));
        else write(yaml(data));
      }),
    );
}
