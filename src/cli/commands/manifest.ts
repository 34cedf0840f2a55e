/**
 * `kiln manifest create|add|remove|inspect|exists|rm|push`: podman's manifest list commands
 * (engine/manifest-list.ts). Output as podman's: create/add/remove print the list's ID, inspect
 * the index JSON, rm "Untagged:"/"Deleted:" lines (exit 1 for an unknown list), push nothing on
 * stdout and its progress lines on stderr unless -q.
 *
 * push's bool flags take podman's forms `--all`, `--all=false`, `--tls-verify=false`; a bare
 * `--all` followed by the list name (`push --all LIST DEST`) keeps LIST as the list, which
 * commander alone would take as the flag's value.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { ExitError, handler, printError, write } from '../output';
import { progressOutput } from '../progress-lines';
import { KilnError } from '../../errors';
import { hostOptionsFor } from '../../registry/host-options';
import type { ListFormat } from '../../image/list-index';
import * as engine from '../../engine/manifest-list';

/**
 * A `--flag [bool]` whose parser keeps a non-boolean value aside as a positional argument
 * (commander consumed it as the flag's value) in `taken`.
 */
function boolFlag(taken: string[]): (v: string) => boolean {
  return (v: string): boolean => {
    if (/^(true|1|yes)$/i.test(v)) return true;
    if (/^(false|0|no)$/i.test(v)) return false;
    taken.push(v);
    return true;
  };
}

function format(v: string): ListFormat {
  if (v === 'oci' || v === 'v2s2') return v;
  throw new InvalidArgumentError(`--format takes oci or v2s2, not ${JSON.stringify(v)}`);
}

interface PushFlags {
  all?: boolean;
  tlsVerify?: boolean;
  certDir?: string;
  authfile?: string;
  creds?: string;
  quiet?: boolean;
  format?: ListFormat;
  digestfile?: string;
  rm?: boolean;
}

export function register(program: Command): void {
  const manifest = program.command('manifest').description('Manipulate manifest lists');

  manifest
    .command('create')
    .description('Create a manifest list')
    .argument('<list>', 'name of the new list')
    .argument('[images...]', 'stored images to add')
    .option('-a, --amend', 'modify the list if it already exists')
    .action(
      handler((ctx, list: string, images: string[], o: { amend?: boolean }) => {
        write(engine.createManifestList(ctx, { name: list, images, amend: o.amend === true }).id);
      }),
    );

  manifest
    .command('add')
    .description('Add an image to a manifest list')
    .argument('<list>', 'the manifest list')
    .argument('<image>', 'a stored image ([containers-storage:]NAME or ID)')
    .option('--arch <arch>', 'override the architecture the list records for the image')
    .option('--os <os>', 'override the OS the list records for the image')
    .option('--variant <variant>', 'the variant the list records for the image')
    .action(
      handler((ctx, list: string, image: string, o: { arch?: string; os?: string; variant?: string }) => {
        write(engine.addToManifestList(ctx, { list, image, ...o }).id);
      }),
    );

  manifest
    .command('remove')
    .description('Remove an entry from a manifest list')
    .argument('<list>', 'the manifest list')
    .argument('<digest>', 'the manifest digest of the entry')
    .action(
      handler((ctx, list: string, digest: string) => {
        write(engine.removeFromManifestList(ctx, { list, digest }).id);
      }),
    );

  manifest
    .command('inspect')
    .description('Display the contents of a manifest list')
    .argument('<list>', 'the manifest list')
    .action(
      handler((ctx, list: string) => {
        write(JSON.stringify(engine.inspectManifestList(ctx, { list }).index, null, 4));
      }),
    );

  manifest
    .command('exists')
    .description('Check if a manifest list exists in local storage')
    .argument('<list>', 'the manifest list')
    .action(
      handler((ctx, list: string) => {
        try {
          engine.resolveList(ctx, list);
        } catch (e) {
          if (e instanceof KilnError && e.code === 'E_IMAGE_UNKNOWN') throw new ExitError(1);
          throw e;
        }
      }),
    );

  manifest
    .command('rm')
    .description('Remove manifest lists from local storage (not the images they list)')
    .argument('<lists...>', 'manifest lists to remove')
    .action(
      handler((ctx, refs: string[]) => {
        const r = engine.removeManifestLists(ctx, refs);
        write([...r.untagged.map((n) => `Untagged: ${n}`), ...r.deleted.map((d) => `Deleted: ${d}`)].join('\n'));
        if (r.errors.length) {
          for (const e of r.errors) printError(e);
          throw new ExitError(r.errors.every((e) => e.code === 'E_IMAGE_UNKNOWN') ? 1 : 125);
        }
      }),
    );

  const taken: string[] = [];
  manifest
    .command('push')
    .description('Push a manifest list to a registry')
    .argument('[list]', 'the manifest list')
    .argument('[destination]', 'docker://REGISTRY/REPO[:TAG]')
    .option('--all [bool]', 'also push the images in the list, by digest (default true)', boolFlag(taken))
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates when contacting registries (default true)', boolFlag(taken))
    .option('--cert-dir <dir>', 'use certificates (*.crt) at the specified path to access the registry')
    .option('--authfile <file>', 'path of the authentication file')
    .option('--creds <user:pass>', 'use USERNAME[:PASSWORD] for accessing the registry')
    .option('-f, --format <format>', 'manifest list type (oci or v2s2); default: the type of its manifests', format)
    .option('--digestfile <file>', 'write the digest of the pushed list to FILE')
    .option('--rm', 'remove the manifest list if the push succeeds')
    .option('-q, --quiet', "don't output progress information when pushing lists")
    .action(
      handler(async (ctx, a: string | undefined, b: string | undefined, o: PushFlags, cmd: Command) => {
        // the values commander gave to --all/--tls-verify that are positionals, back in argv order
        let root: Command = cmd;
        while (root.parent) root = root.parent;
        const raw = (root as unknown as { rawArgs?: string[] }).rawArgs ?? []; // commander keeps argv there (untyped)
        const bad = taken.find((v) => raw.includes(`--all=${v}`) || raw.includes(`--tls-verify=${v}`));
        if (bad !== undefined) throw new KilnError('E_INVALID_ARGUMENT', `--all and --tls-verify take true or false, not ${JSON.stringify(bad)}`);
        const given = [...taken, a, b].filter((x): x is string => x !== undefined).sort((x, y) => raw.indexOf(x) - raw.indexOf(y));
        if (given.length !== 2) throw new KilnError('E_INVALID_ARGUMENT', `manifest push takes a list and a destination (docker://REGISTRY/REPO[:TAG]), got ${given.length} argument(s)`);
        const out = progressOutput(o.quiet);
        try {
          await engine.pushManifestList(ctx, {
            list: given[0]!,
            destination: given[1]!,
            all: o.all !== false,
            ...(o.format ? { format: o.format } : {}),
            ...(o.digestfile !== undefined ? { digestFile: o.digestfile } : {}),
            rm: o.rm === true,
            registry: {
              hostOptions: hostOptionsFor({ ...(o.tlsVerify !== undefined ? { tlsVerify: o.tlsVerify } : {}), certDir: o.certDir, authfile: o.authfile, creds: o.creds }),
              ...(out.log ? { log: out.log } : {}),
              ...(out.progress ? { progress: out.progress } : {}),
            },
          });
        } finally {
          out.close();
        }
      }),
    );
}
