/**
 * `kiln image SUBCOMMAND`: podman's image group. Subcommands reuse the top-level commands'
 * definitions; `exists` is only here (exit 0 if the image exists, 1 if not, as podman).
 * As in main.ts, only the module of the subcommand being run is loaded: the others are
 * placeholders with their summaries, and the one commander dispatches to is defined by its
 * module just before its flags are parsed (save, load and push bring the transports and the
 * registry client, which `kiln image exists` must not pay for).
 */
import type { Command } from 'commander';
import { handler, ExitError } from '../output';
import { imageExists } from '../../engine/images';

interface Sub {
  summary: string;
  /** module under ./commands, and its function that adds arguments, flags and the action */
  module: string;
  define: string;
  aliases?: string[];
}

const SUBCOMMANDS: Record<string, Sub> = {
  list: { summary: 'List images in local storage', module: 'images', define: 'defineImages', aliases: ['ls'] },
  rm: { summary: 'Remove one or more images from local storage', module: 'rmi', define: 'defineRmi' },
  tag: { summary: 'Add an additional name to a local image', module: 'tag', define: 'defineTag' },
  untag: { summary: 'Remove a name from a local image', module: 'tag', define: 'defineUntag' },
  inspect: { summary: 'Display the configuration of an image', module: 'inspect', define: 'defineImageInspect' },
  history: { summary: 'Show history of a specified image', module: 'history', define: 'defineHistory' },
  save: { summary: 'Save image(s) to an archive', module: 'save', define: 'defineSave' },
  load: { summary: 'Load image(s) from a tar archive', module: 'load', define: 'defineLoad' },
  import: { summary: 'Import a tarball to create a filesystem image', module: 'import', define: 'defineImport' },
  push: { summary: 'Push an image to a specified destination', module: 'push', define: 'definePush' },
  mount: { summary: "Mount an image's root filesystem", module: 'mount', define: 'defineMount' },
  unmount: { summary: "Unmount an image's root filesystem", module: 'mount', define: 'defineUnmount', aliases: ['umount'] },
};

/** Adds the subcommand's arguments, flags and action to its placeholder `c`. */
function define(c: Command): void {
  const s = SUBCOMMANDS[c.name()];
  if (s === undefined) return; // exists, help: defined in full below
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const m = require(`./${s.module}.js`) as Record<string, (c: Command) => Command>;
  m[s.define]!(c);
}

export function register(program: Command): void {
  const image = program.command('image').description('Manage images');
  image
    .command('exists')
    .description('Check if an image exists in local storage')
    .argument('<image>', 'image name or ID')
    .action(
      handler((ctx, ref: string) => {
        if (!imageExists(ctx, ref)) throw new ExitError(1);
      }),
    );
  for (const [name, s] of Object.entries(SUBCOMMANDS)) {
    const c = image.command(name).description(s.summary);
    for (const a of s.aliases ?? []) c.alias(a);
  }
  image.hook('preSubcommand', (_image, sub) => define(sub));
  // commander's own `help SUB` would print the placeholder's help: define SUB first
  image.helpCommand(false);
  image
    .command('help')
    .description('display help for command')
    .argument('[command]', 'subcommand to show the help of')
    .action((name?: string) => {
      const c = name === undefined ? image : image.commands.find((x) => x.name() === name || x.aliases().includes(name));
      if (c === undefined) throw new ExitError(125, `unknown command '${name}' for 'kiln image'`);
      define(c);
      c.outputHelp();
    });
}
