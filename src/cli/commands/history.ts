/** `kiln history [--human=false] [-q] [--no-trunc] [--format F] IMAGE`. */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { imageHistory } from '../../engine/inspect';
import { formatReport } from '../../format/report';
import { humanSize, timeAgo } from '../../format/units';

export function defineHistory(cmd: Command): Command {
  return cmd
    .argument('<image>', 'image')
    .option('-H, --human [bool]', 'Display sizes and dates in human readable format', (v) => v !== 'false', true)
    .option('--no-trunc', 'Do not truncate the output')
    .option('-q, --quiet', 'Display the numeric IDs only')
    .option('--format <format>', 'Change the output to JSON or a Go template')
    .action(
      handler((ctx, image: string, o: { human: boolean; trunc: boolean; quiet?: boolean; format?: string }) => {
        const rows = imageHistory(ctx, image);
        if (o.quiet) {
          write(rows.map((r) => (r.id === '<missing>' || !o.trunc ? r.id : r.id.slice(0, 12))).join('\n'));
          return;
        }
        const now = Date.now();
        const view = rows.map((r) => ({
          ID: r.id === '<missing>' || !o.trunc ? r.id : r.id.slice(0, 12),
          Created: o.human ? timeAgo(r.created, now) : new Date(r.created).toISOString(),
          CreatedSince: timeAgo(r.created, now),
          CreatedAt: new Date(r.created).toISOString(),
          CreatedBy: o.trunc && r.createdBy.length > 45 ? `${r.createdBy.slice(0, 42)}...` : r.createdBy,
          Size: o.human ? humanSize(r.size) : String(r.size),
          Comment: r.comment,
          Tags: r.tags,
        }));
        if (o.format === 'json') {
          // podman's shape: one line, comment and tags only when set
          write(JSON.stringify(rows.map((r) => ({
            id: r.id,
            created: new Date(r.created).toISOString(),
            CreatedBy: r.createdBy,
            size: r.size,
            ...(r.comment ? { comment: r.comment } : {}),
            ...(r.tags.length ? { tags: r.tags } : {}),
            Created: new Date(r.created).toISOString().replace(/\.\d+Z$/, 'Z'),
          }))));
          return;
        }
        write(formatReport(view, o.format, { defaultTable: 'table {{.ID}}\t{{.Created}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}', headers: { ID: 'ID', CreatedBy: 'CREATED BY' } }));
      }),
    );
}

export function register(program: Command): void {
  defineHistory(program.command('history').description('Show history of a specified image'));
}
