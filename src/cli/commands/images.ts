/** `kiln images` (and `kiln image ls`): podman's columns, -q, --digests, --no-trunc, --format. */
import type { Command } from 'commander';
import { handler, write, collect } from '../output';
import { listImages, summarize } from '../../engine/images';
import { readConfig } from '../../engine/inspect';
import { splitStoredName } from '../../image/reference';
import { formatReport } from '../../format/report';
import { goTimeString, humanSize, timeAgo } from '../../format/units';
import type { EngineContext } from '../../engine/context';

interface Opts {
  all?: boolean;
  quiet?: boolean;
  digests?: boolean;
  trunc: boolean;
  heading: boolean;
  format?: string;
  filter: string[];
  sort: string;
}

export function defineImages(cmd: Command): Command {
  return cmd
    .argument('[image]', 'list only images with this reference')
    .option('-a, --all', 'Show all images (default hides intermediate images)')
    .option('-q, --quiet', 'Display only image IDs')
    .option('--digests', 'Show digests')
    .option('--no-trunc', 'Do not truncate output')
    .option('-n, --noheading', 'Do not print column headings')
    .option('--format <format>', "Change the output format to JSON or a Go template")
    .option('-f, --filter <filter>', 'Filter output based on conditions provided', collect, [])
    .option('--sort <key>', 'Sort by created, id, repository, size or tag', 'created')
    .action(handler(run));
}

function run(ctx: EngineContext, image: string | undefined, o: Opts & { noheading?: boolean }): void {
  const filters = image ? [...o.filter, `reference=${image}`] : o.filter;
  const imgs = listImages(ctx, { filters, sort: o.sort });
  if (o.quiet) {
    const seen = new Set<string>();
    for (const i of imgs) seen.add(o.trunc ? i.id.slice(0, 12) : `sha256:${i.id}`);
    write([...seen].join('\n'));
    return;
  }
  if (o.format === 'json' || o.format === '{{json .}}') {
    const rows = imgs.map((i) => summarize(ctx, i, ctx.store.images.containersUsing(i.id).length, readConfig(ctx.store, i).config?.Labels ?? null));
    write(o.format === 'json' ? JSON.stringify(rows, null, 4) : rows.map((r) => JSON.stringify(r)).join('\n'));
    return;
  }
  const now = Date.now();
  const needsLabels = o.format?.includes('Labels');
  const rows = imgs.flatMap((i) => {
    const names = i.names.length ? i.names : [''];
    // Image-level values once per image, not per row: an image may have 1000 names.
    const created = timeAgo(i.created, now);
    const createdAt = goTimeString(i.created); // Go's time.Time printing, as podman's template shows it
    const size = humanSize(i.size);
    const base = {
      ID: o.trunc ? i.id.slice(0, 12) : `sha256:${i.id}`,
      Id: i.id,
      Digest: i.manifestDigest,
      Created: created,
      CreatedSince: created,
      CreatedAt: createdAt,
      CreatedTime: createdAt,
      Size: size,
      SizeBytes: i.size,
      VirtualSize: size,
      SharedSize: humanSize(0),
      Containers: 0,
      Names: i.names,
      History: i.namesHistory.join(', '),
      Dangling: i.names.length === 0,
      ReadOnly: false,
      IsReadOnly: false,
      Labels: needsLabels ? readConfig(ctx.store, i).config?.Labels ?? {} : {},
    };
    return names.map((n) => {
      const { repository, tag } = n ? splitStoredName(n) : { repository: '<none>', tag: '<none>' };
      return { ...base, Repository: repository, Tag: tag };
    });
  });
  sortRows(rows, o.sort);
  const defaultTable = o.digests
    ? 'table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.Created}}\t{{.Size}}'
    : 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Created}}\t{{.Size}}';
  write(formatReport(rows, o.format, { defaultTable, headers: { ID: 'IMAGE ID' }, noHeading: o.heading === false || o.noheading === true }));
}

/** podman sorts the listed rows (one per name); created keeps the engine's newest-first order. */
function sortRows(rows: { Repository: string; Tag: string; Id: string; SizeBytes: number }[], key: string): void {
  const by: Record<string, (a: (typeof rows)[number], b: (typeof rows)[number]) => number> = {
    id: (a, b) => (a.Id < b.Id ? -1 : a.Id > b.Id ? 1 : 0),
    repository: (a, b) => (a.Repository < b.Repository ? -1 : a.Repository > b.Repository ? 1 : 0),
    tag: (a, b) => (a.Tag < b.Tag ? -1 : a.Tag > b.Tag ? 1 : 0),
    size: (a, b) => a.SizeBytes - b.SizeBytes,
  };
  const cmp = by[key];
  if (cmp) rows.sort(cmp);
}

export function register(program: Command): void {
  defineImages(program.command('images').description('List images in local storage'));
}
