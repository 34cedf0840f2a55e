/**
 * kiln's command line. Start-up cost matters (`kiln --version` must stay within 2x of
 * `node -e 0`), so only the module of the command being run is loaded; the others appear in
 * --help from the summaries below. Exit codes follow podman: 0 ok, 125 engine error (bad flags
 * included), 126 cannot invoke, 127 not found; some commands define their own (rmi, image exists).
 */
import { Command, CommanderError, Option } from 'commander';
import { VERSION } from '../version';
import { fail, EXIT } from './output';
import { installSignalCleanup } from '../util/cleanup';

interface Entry {
  summary: string;
  /** module under ./commands exporting `register(program)`; undefined = group defined inline */
  module: string;
}

const COMMANDS: Record<string, Entry> = {
  build: { summary: 'Build an image using instructions from Containerfiles', module: 'build' },
  images: { summary: 'List images in local storage', module: 'images' },
  image: { summary: 'Manage images (exists, ls, rm, tag, untag, inspect, history, save, load, import, push, mount, unmount)', module: 'image' },
  import: { summary: 'Import a tarball to create a filesystem image', module: 'import' },
  inspect: { summary: 'Display the configuration of an image', module: 'inspect' },
  tag: { summary: 'Add an additional name to a local image', module: 'tag' },
  untag: { summary: 'Remove a name from a local image', module: 'tag' },
  rmi: { summary: 'Remove one or more images from local storage', module: 'rmi' },
  history: { summary: 'Show history of a specified image', module: 'history' },
  save: { summary: 'Save image(s) to an archive', module: 'save' },
  load: { summary: 'Load image(s) from a tar archive', module: 'load' },
  push: { summary: 'Push an image to a specified destination', module: 'push' },
  pull: { summary: 'Pull an image from a registry', module: 'pull' },
  'generate-sigstore-key': { summary: 'Generate a sigstore public/private key pair', module: 'generate-sigstore-key' },
  login: { summary: 'Log in to a container registry', module: 'login' },
  logout: { summary: 'Log out of a container registry', module: 'login' },
  info: { summary: 'Display kiln system information', module: 'info' },
  version: { summary: 'Display the kiln version information', module: 'version' },
  system: { summary: 'Manage kiln (check, repair, prune)', module: 'system' },
  manifest: { summary: 'Manipulate manifest lists', module: 'manifest' },
  volume: { summary: 'Manage volumes', module: 'volume' },
  run: { summary: 'Run a command in a new container', module: 'run' },
  create: { summary: 'Create but do not start a container', module: 'lifecycle' },
  start: { summary: 'Start one or more containers', module: 'lifecycle' },
  stop: { summary: 'Stop one or more containers', module: 'lifecycle' },
  kill: { summary: 'Kill one or more running containers with a specific signal', module: 'lifecycle' },
  restart: { summary: 'Restart one or more containers', module: 'lifecycle' },
  rm: { summary: 'Remove one or more containers', module: 'lifecycle' },
  wait: { summary: 'Block on one or more containers', module: 'lifecycle' },
  ps: { summary: 'List containers', module: 'ps' },
  logs: { summary: 'Fetch the logs of one or more containers', module: 'logs' },
  exec: { summary: 'Run a process in a running container', module: 'exec' },
  attach: { summary: 'Attach to a running container', module: 'run' },
  container: { summary: 'Manage containers', module: 'container' },
  cp: { summary: 'Copy files/folders between a container and the local filesystem', module: 'cp' },
  diff: { summary: "Display the changes to the object's file system", module: 'diff' },
  commit: { summary: 'Create new image based on the changed container', module: 'commit' },
  top: { summary: 'Display the running processes of a container', module: 'top' },
  port: { summary: 'List port mappings or a specific mapping for the container', module: 'port' },
};

export type Register = (program: Command) => void;

/** Commands whose trailing arguments are a command line of their own. */
const POSITIONAL = new Set(['run', 'create', 'exec', 'container', 'rm']);

/** podman's --log-level values (kiln accepts them; it has no log yet). */
const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'warning', 'error', 'fatal', 'panic'];

function findCommand(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--root' || a === '--runroot' || a === '--log-level') {
      i++;
      continue;
    }
    if (a.startsWith('-')) continue;
    return a;
  }
  return undefined;
}

export function buildProgram(argv: string[]): Command {
  const program = new Command('kiln')
    .description('Daemonless container build and image-pipeline engine')
    .version(`kiln version ${VERSION}`, '-v, --version', 'Version for kiln')
    .option('--root <dir>', 'Path to the root directory in which data, including images, is stored (env KILN_ROOT)')
    .option('--runroot <dir>', 'Path to the run directory where all state information is stored (env KILN_RUNROOT)')
    .addOption(new Option('--log-level <level>', 'Log messages above specified level').choices(LOG_LEVELS).default('warn'))
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeErr: (s) => process.stderr.write(s.replace(/^error: unknown option '([^']*)'/, 'Error: unknown flag: $1').replace(/^error: /, 'Error: ')),
    });
  const wanted = findCommand(argv);
  // `kiln run IMAGE sh -c …`: options after the image belong to the command (passThroughOptions),
  // which needs positional options; other commands keep taking global options anywhere.
  if (wanted !== undefined && POSITIONAL.has(wanted)) program.enablePositionalOptions();
  for (const [name, e] of Object.entries(COMMANDS)) {
    if (name === wanted) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      // the .js suffix lets the bundler (scripts/bundle.sh) include every command module
      const mod = require(`./commands/${e.module}.js`) as Record<string, Register>;
      const reg = mod[`register_${name}`] ?? mod.register;
      if (!reg) throw new Error(`command module ${e.module} has no register function for ${name}`);
      reg(program);
    } else {
      program.command(name).description(e.summary).allowUnknownOption().allowExcessArguments()
        .action(() => undefined);
    }
  }
  return program;
}

/**
 * Loads every command module without running anything: for the code cache written at build
 * time (bin/kiln with KILN_WRITE_CODE_CACHE), so that each command's modules start compiled,
 * not only those of the command that wrote the cache.
 */
export function preloadCommands(): void {
  for (const e of Object.values(COMMANDS)) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(`./commands/${e.module}.js`);
  }
}

export async function main(argv: string[]): Promise<void> {
  installSignalCleanup();
  const wanted = findCommand(argv);
  if (wanted === undefined && !argv.some((a) => ['-h', '--help', '-v', '--version'].includes(a))) {
    buildProgram(argv).outputHelp({ error: true });
    process.stderr.write(`Error: missing command 'kiln COMMAND'\n`);
    process.exit(EXIT.engine);
  }
  if (wanted !== undefined && !(wanted in COMMANDS)) {
    process.stderr.write(`Error: unrecognized command \`kiln ${wanted}\`\nTry 'kiln --help' for more information\n`);
    process.exit(EXIT.engine);
  }
  // `kiln images | head`: a closed pipe ends the command quietly, as it does for podman.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  const program = buildProgram(argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') process.exit(0);
      if (e.code === 'commander.help') {
        // a command group (image, system) without its subcommand: help went to stderr
        process.stderr.write(`Error: missing command 'kiln ${findCommand(argv) ?? ''} COMMAND'\n`);
        process.exit(EXIT.engine);
      }
      if (e.code === 'commander.unknownCommand') process.exit(EXIT.engine);
      process.exit(e.exitCode === 0 ? 0 : EXIT.engine);
    }
    fail(e);
  }
}

if (require.main === module) void main(process.argv.slice(2));
