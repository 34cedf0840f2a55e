/**
 * `kiln volume create|ls|inspect|rm|prune|exists`: podman 4.3.1's volume commands (flags,
 * output, exit codes). `rm` exits 1 when the last error was an unknown volume, 2 when it was
 * a volume in use, 125 otherwise; `exists` exits 0 or 1. `create --ignore` and `create -d` are
 * from later podman versions. `rm -f` removes the containers using a volume through the
 * container code (src/container/lifecycle.ts removeContainer), loaded only then.
 */
import type { Command } from 'commander';
import { handler, write, printError, ExitError, collect } from '../output';
import {
  createVolume,
  inspectVolumes,
  listVolumes,
  parseKeyValues,
  pruneCandidates,
  pruneVolumes,
  removeVolumes,
  volumeData,
  volumeExists,
  volumeJson,
  volumeRmExitCode,
  type RemoveContainers,
} from '../../engine/volumes';
import { formatInspect, formatReport } from '../../format/report';
import { goJson } from '../../format/units';
import { KilnError } from '../../errors';
import type { EngineContext } from '../../engine/context';

/** pflag's `strings` flags (--label, ls --filter) also split each value at commas. */
const collectCsv = (v: string, prev: string[]) => [...prev, ...v.split(',')];
/** podman 4.3.1 treats `{{json .}}` like `json` for volume ls and inspect. */
const JSON_FORMAT = /^\s*(json|\{\{\s*json\s*\.?\s*\}\})\s*$/;

function defineCreate(c: Command): void {
  c.argument('[name]', 'volume name (default: 64 random hex digits)')
    .option('--driver <driver>', 'Specify volume driver name', 'local')
    .option('-d <driver>', 'Same as --driver')
    .option('-l, --label <label>', 'Set metadata for a volume (key=value)', collectCsv, [])
    .option('-o, --opt <option>', 'Set driver specific options (type, device, o, ...)', collect, [])
    .option('--ignore', 'Do not fail if the volume already exists')
    .action(
      handler((ctx, name: string | undefined, o: { driver: string; d?: string; label: string[]; opt: string[]; ignore?: boolean }) => {
        const v = createVolume(ctx, {
          ...(name !== undefined ? { name } : {}),
          driver: o.d ?? o.driver,
          labels: parseKeyValues('labels', o.label),
          options: parseKeyValues('options', o.opt),
          ignore: o.ignore === true,
        });
        write(v.name);
      }),
    );
}

/** podman 4.3.1's `volume ls --format json`: 2-space indent, empty maps as "{\n<indent>\n}". */
function lsJson(rows: object[]): string {
  return goJson(rows, { indent: '  ', escapeHTML: true }).replace(/^( *)("[^"\n]*": )\{\}(,?)$/gm, (_m, ind: string, key: string, comma: string) => `${ind}${key}{\n${ind}  \n${ind}}${comma}`);
}

function defineLs(c: Command): void {
  c.option('-f, --filter <filter>', 'Filter volume output (name, driver, scope, label, opt, until, dangling)', collectCsv, [])
    .option('--format <format>', 'Format volume output using JSON or a Go template')
    .option('--noheading', 'Do not print headers')
    .option('-q, --quiet', 'Print volume output in quiet mode')
    .action(
      handler((ctx, o: { filter: string[]; format?: string; noheading?: boolean; quiet?: boolean }) => {
        const vols = listVolumes(ctx, { filters: o.filter });
        if (o.format !== undefined && JSON_FORMAT.test(o.format) && !o.quiet) {
          write(lsJson(vols.map((v) => volumeJson(ctx, v))));
          return;
        }
        if (vols.length === 0) return;
        const format = o.quiet ? '{{.Name}}' : o.format;
        write(formatReport(vols.map((v) => volumeData(ctx, v)), format, { defaultTable: 'table {{.Driver}}\t{{.Name}}', headers: { Name: 'VOLUME NAME' }, noHeading: o.noheading === true, name: 'ls' }));
      }),
    );
}

function defineInspect(c: Command): void {
  c.argument('[volumes...]', 'volumes to inspect')
    .option('-a, --all', 'Inspect all volumes')
    .option('-f, --format <format>', 'Format volume output using a Go template', 'json')
    .action(
      handler((ctx, refs: string[], o: { all?: boolean; format: string }) => {
        if ((refs.length > 0) === (o.all === true)) throw new KilnError('E_INVALID_ARGUMENT', 'provide one or more volume names or use --all');
        const r = inspectVolumes(ctx, refs, { all: o.all === true });
        write(JSON_FORMAT.test(o.format) ? formatInspect(r.volumes.map((v) => volumeJson(ctx, v))) : formatInspect(r.volumes.map((v) => volumeData(ctx, v)), o.format));
        if (r.errors.length > 0) {
          for (const e of r.errors.slice(1)) process.stderr.write(`error inspecting object: ${e.message}\n`);
          throw new KilnError(r.errors[0]!.code, `inspecting object: ${r.errors[0]!.message}`);
        }
      }),
    );
}

/** The container code's forced removal, if this build has it. */
function containerRemover(ctx: EngineContext): RemoveContainers | undefined {
  let mod: { removeContainer?: unknown };
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require('../../container/lifecycle') as { removeContainer?: unknown };
  } catch {
    return undefined;
  }
  if (typeof mod.removeContainer !== 'function') return undefined;
  const remove = mod.removeContainer as (ctx: EngineContext, ref: string, o: { force: boolean; time?: number }) => Promise<unknown>;
  return async (ids, o) => {
    for (const id of ids) await remove(ctx, id, { force: true, ...(o.timeout !== undefined ? { time: o.timeout } : {}) });
  };
}

function defineRm(c: Command): void {
  c.argument('[volumes...]', 'volumes to remove')
    .option('-a, --all', 'Remove all volumes')
    .option('-f, --force', 'Remove a volume by force, even if it is being used by a container')
    .option('-t, --time <seconds>', 'Seconds to wait for running containers to stop before killing the container')
    .action(
      handler(async (ctx, refs: string[], o: { all?: boolean; force?: boolean; time?: string }) => {
        if ((refs.length > 0) === (o.all === true)) throw new KilnError('E_INVALID_ARGUMENT', 'choose either one or more volumes or all');
        let timeout: number | undefined;
        if (o.time !== undefined) {
          if (!/^\d+$/.test(o.time)) throw new KilnError('E_INVALID_ARGUMENT', `--time ${JSON.stringify(o.time)}: must be a whole number of seconds`);
          timeout = Number(o.time);
        }
        const remover = o.force ? containerRemover(ctx) : undefined;
        const r = await removeVolumes(ctx, refs, {
          all: o.all === true,
          force: o.force === true,
          ...(timeout !== undefined ? { timeout } : {}),
          ...(remover ? { removeContainers: remover } : {}),
        });
        write(r.removed.join('\n'));
        if (r.errors.length > 0) {
          for (const e of r.errors) printError(e);
          throw new ExitError(volumeRmExitCode(r.errors));
        }
      }),
    );
}

/** One line from stdin; podman fails with "EOF" when stdin ends before a newline. */
function readLine(): Promise<string> {
  return new Promise((resolve, reject) => {
    let buf = '';
    process.stdin.setEncoding('utf8');
    const done = (f: () => void) => {
      process.stdin.removeAllListeners('data').removeAllListeners('end').pause();
      f();
    };
    process.stdin.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl >= 0) done(() => resolve(buf.slice(0, nl + 1)));
    });
    process.stdin.on('end', () => done(() => reject(new KilnError('E_IO', 'EOF', { hint: 'answer y or n, or use --force' }))));
  });
}

function definePrune(c: Command): void {
  c.option('--filter <filter>', "Provide filter values (e.g. 'label=<key>=<value>')", collect, [])
    .option('-f, --force', 'Do not prompt for confirmation')
    .action(
      handler(async (ctx, o: { filter: string[]; force?: boolean }) => {
        if (!o.force) {
          process.stdout.write('WARNING! This will remove all volumes not used by at least one container. The following volumes will be removed:\n');
          const names = pruneCandidates(ctx, { filters: o.filter });
          if (names.length === 0) {
            write('No dangling volumes found');
            return;
          }
          process.stdout.write(`${names.join('\n')}\nAre you sure you want to continue? [y/N] `);
          const answer = await readLine();
          if (answer[0]?.toLowerCase() !== 'y') return;
        }
        const r = await pruneVolumes(ctx, { filters: o.filter });
        write(r.removed.join('\n'));
        if (r.errors.length > 0) {
          for (const e of r.errors.slice(0, -1)) printError(e);
          throw r.errors[r.errors.length - 1];
        }
      }),
    );
}

function defineExists(c: Command): void {
  c.argument('<volume>', 'volume name').action(
    handler((ctx, name: string) => {
      if (!volumeExists(ctx, name)) throw new ExitError(1);
    }),
  );
}

export function register(program: Command): void {
  const volume = program.command('volume').description('Manage volumes');
  defineCreate(volume.command('create').description('Create a new volume'));
  defineLs(volume.command('ls').alias('list').description('List volumes'));
  defineInspect(volume.command('inspect').description('Display detailed information on one or more volumes'));
  defineRm(volume.command('rm').alias('remove').description('Remove one or more volumes'));
  definePrune(volume.command('prune').description('Remove all unused volumes'));
  defineExists(volume.command('exists').description('Check if the given volume exists'));
}
