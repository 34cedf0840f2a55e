/** `kiln ps` (and `kiln container ls`): podman's columns, -a, -q, -n, --no-trunc, --filter, --format. */
import type { Command } from 'commander';
import { handler, write, collect } from '../output';
import { listContainers, listed } from '../../container/list';
import { formatReport, isJsonFormat } from '../../format/report';
import { timeAgo } from '../../format/units';
import type { EngineContext } from '../../engine/context';

interface Opts {
  all?: boolean;
  quiet?: boolean;
  trunc: boolean;
  noheading?: boolean;
  format?: string;
  filter: string[];
  last?: number;
  latest?: boolean;
}

export function definePs(cmd: Command): Command {
  return cmd
    .option('-a, --all', 'Show all the containers, default is only running containers')
    .option('-q, --quiet', 'Print the numeric IDs of the containers only')
    .option('--no-trunc', 'Display the extended information')
    .option('-n, --noheading', 'Do not print headers')
    .option('--format <format>', 'Pretty-print containers to JSON or using a Go template')
    .option('-f, --filter <filter>', 'Filter output based on conditions given', collect, [])
    .option('--last <n>', 'Print the n last created containers (all states)', Number)
    .option('-l, --latest', 'Act on the latest container kiln knows about')
    .action(handler(run));
}

async function run(ctx: EngineContext, o: Opts): Promise<void> {
  const last = o.latest ? 1 : o.last;
  const cs = await listContainers(ctx, { all: o.all || last !== undefined, filters: o.filter, ...(last !== undefined ? { last } : {}) });
  if (o.quiet) {
    write(cs.map((c) => (o.trunc ? c.id.slice(0, 12) : c.id)).join('\n'));
    return;
  }
  const now = Date.now();
  const rows = cs.map((c) => listed(c, now));
  if (o.format !== undefined && isJsonFormat(o.format)) {
    write(JSON.stringify(rows, null, 4));
    return;
  }
  const table = rows.map((r) => ({
    ...r,
    ID: o.trunc ? r.Id.slice(0, 12) : r.Id,
    Names: r.Names[0] ?? '',
    Command: truncCommand(r.Command.join(' '), o.trunc),
    Created: timeAgo(r.Created * 1000, now),
    CreatedHuman: timeAgo(r.Created * 1000, now),
    Ports: '',
    Mounts: r.Mounts.join(','),
    Labels: r.Labels ?? {},
  }));
  write(formatReport(table, o.format, {
    defaultTable: 'table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Created}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}',
    headers: { ID: 'CONTAINER ID' },
    noHeading: o.noheading === true,
    name: 'ps',
  }));
}

/** podman shows the command cut to 17 characters with an ellipsis unless --no-trunc. */
function truncCommand(cmd: string, trunc: boolean): string {
  return trunc && cmd.length > 20 ? `${cmd.slice(0, 17)}...` : cmd;
}

export function register(program: Command): void {
  definePs(program.command('ps').description('List containers'));
}
