/** `kiln version [--format F]`. */
import type { Command } from 'commander';
import { write, fail } from '../output';
import { versionInfo } from '../../engine/info';
import { formatOne } from '../../format/report';

export function register(program: Command): void {
  program
    .command('version')
    .description('Display the kiln version information')
    .option('-f, --format <format>', 'Change the output format to JSON or a Go template')
    .action((o: { format?: string }) => {
      try {
        const v = versionInfo();
        if (o.format === 'json') write(JSON.stringify({ Client: v }, null, 4));
        else if (o.format) write(formatOne({ Client: v }, o.format));
        else write(`Version:      ${v.Version}\nNode Version: ${v.NodeVersion}\nOS/Arch:      ${v.OsArch}`);
      } catch (e) {
        fail(e);
      }
    });
}
