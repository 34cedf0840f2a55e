/** The flags `kiln run` and `kiln create` share (podman's names), and their CreateOptions. */
import { Option, type Command } from 'commander';
import type { CreateOptions } from '../../container/create';
import { KilnError } from '../../errors';
import { collect } from '../output';

function int(flag: string) {
  return (v: string) => {
    if (!/^-?\d+$/.test(v)) throw new KilnError('E_INVALID_ARGUMENT', `${flag} ${JSON.stringify(v)}: must be an integer`);
    return Number(v);
  };
}

export interface CreateFlags {
  name?: string;
  entrypoint?: string;
  env: string[];
  envFile: string[];
  workdir?: string;
  user?: string;
  hostname?: string;
  tty?: boolean;
  interactive?: boolean;
  rm?: boolean;
  volume: string[];
  mount: string[];
  tmpfs: string[];
  readOnly?: boolean;
  capAdd: string[];
  capDrop: string[];
  privileged?: boolean;
  securityOpt: string[];
  memory?: string;
  cpus?: string;
  pidsLimit?: number;
  network?: string;
  net?: string;
  init?: boolean;
  stopSignal?: string;
  stopTimeout?: number;
  label: string[];
  pull: string;
  tlsVerify?: boolean | string;
  certDir?: string;
  authfile?: string;
  creds?: string;
  signaturePolicy?: string;
  quiet?: boolean;
}

export function defineCreateFlags(cmd: Command): Command {
  return cmd
    .argument('<image>', 'image to create the container from')
    .argument('[command...]', 'command and arguments (default: the image\'s)')
    .passThroughOptions()
    .option('--name <name>', 'Assign a name to the container')
    .option('--entrypoint <cmd>', 'Overwrite the default ENTRYPOINT of the image (a string or a JSON array)')
    .option('-e, --env <env>', 'Set environment variables in container', collect, [])
    .option('--env-file <file>', 'Read in a file of environment variables', collect, [])
    .option('-w, --workdir <dir>', 'Working directory inside the container')
    .option('-u, --user <user>', 'Username or UID (format: <name|uid>[:<group|gid>])')
    .option('-h, --hostname <name>', 'Set container hostname')
    .option('-t, --tty', 'Allocate a pseudo-TTY for container')
    .option('-i, --interactive', 'Keep STDIN open even if not attached')
    .option('--rm', 'Remove container (and pod if created) after exit')
    .option('-v, --volume <volume>', 'Bind mount a volume into the container', collect, [])
    .option('--mount <mount>', 'Attach a filesystem mount to the container', collect, [])
    .option('--tmpfs <tmpfs>', 'Mount a temporary filesystem (tmpfs) into a container', collect, [])
    .option('--read-only', 'Make containers root filesystem read-only')
    .option('--cap-add <cap>', 'Add capabilities to the container', collect, [])
    .option('--cap-drop <cap>', 'Drop capabilities from the container', collect, [])
    .option('--privileged', 'Give extended privileges to container')
    .option('--security-opt <opt>', 'Security Options', collect, [])
    .option('-m, --memory <limit>', 'Memory limit (format: <number>[<unit>], where unit = b, k, m or g)')
    .option('--cpus <n>', 'Number of CPUs. The default is 0.000 which means no limit')
    .option('--pids-limit <n>', 'Tune container pids limit (set -1 for unlimited)', int('--pids-limit'))
    .option('--network <mode>', 'Connect a container to a network (none, host)')
    .addOption(new Option('--net <mode>').hideHelp())
    .option('--init', 'Run an init binary inside the container that forwards signals and reaps processes')
    .option('--stop-signal <signal>', 'Signal to stop a container. Default is SIGTERM')
    .option('--stop-timeout <seconds>', 'Timeout (in seconds) that containers stopped by user command have to exit. If exceeded, the container will be forcibly stopped via SIGKILL.', int('--stop-timeout'))
    .option('-l, --label <label>', 'Set metadata on container', collect, [])
    .option('--pull <policy>', 'Pull image policy (always, missing, never, newer)', 'missing')
    .option('--tls-verify [bool]', 'Require HTTPS and verify certificates when contacting registries')
    .option('--cert-dir <dir>', 'Use certificates at the specified path to access the registry')
    .option('--authfile <file>', 'Path of the authentication file')
    .option('--creds <user:pass>', 'Credentials (USERNAME:PASSWORD) to use for authenticating to a registry')
    .option('--signature-policy <file>', 'Path to a signature-policy file')
    .option('-q, --quiet', 'Suppress output information when pulling images');
}

/**
 * Pulls the image when --pull asks (missing by default, as podman); progress lines on stderr
 * unless -q.
 */
export async function pullForCreate(ctx: import('../../engine/context').EngineContext, image: string, o: CreateFlags): Promise<void> {
  const policy = o.pull;
  if (!['missing', 'never', 'always', 'newer'].includes(policy)) throw new KilnError('E_INVALID_ARGUMENT', `--pull ${JSON.stringify(policy)}: expected always, missing, never or newer`);
  if (policy === 'never' || (policy === 'missing' && ctx.store.images.find(image))) return;
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { hostOptionsFor } = require('../../registry/host-options') as typeof import('../../registry/host-options');
  const { ensureImage } = require('../../container/create') as typeof import('../../container/create');
  /* eslint-enable @typescript-eslint/no-require-imports */
  await ensureImage(ctx, image, policy as 'missing' | 'never' | 'always' | 'newer', {
    platform: {},
    hostOptions: hostOptionsFor(o),
    ...(o.quiet ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
    ...(o.signaturePolicy !== undefined ? { policyPath: o.signaturePolicy } : {}),
  });
}

export function createOptions(image: string, command: string[], o: CreateFlags, argv: string[]): CreateOptions {
  const net = o.network ?? o.net;
  return {
    image,
    command,
    ...(o.name !== undefined ? { name: o.name } : {}),
    ...(o.entrypoint !== undefined ? { entrypoint: o.entrypoint } : {}),
    env: o.env,
    envFiles: o.envFile,
    ...(o.workdir !== undefined ? { workdir: o.workdir } : {}),
    ...(o.user !== undefined ? { user: o.user } : {}),
    ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
    tty: o.tty ?? false,
    interactive: o.interactive ?? false,
    rm: o.rm ?? false,
    volumes: o.volume,
    mounts: o.mount,
    tmpfs: o.tmpfs,
    readOnly: o.readOnly ?? false,
    capAdd: o.capAdd,
    capDrop: o.capDrop,
    privileged: o.privileged ?? false,
    securityOpts: o.securityOpt,
    ...(o.memory !== undefined ? { memory: o.memory } : {}),
    ...(o.cpus !== undefined ? { cpus: o.cpus } : {}),
    ...(o.pidsLimit !== undefined ? { pidsLimit: o.pidsLimit } : {}),
    ...(net !== undefined ? { network: net } : {}),
    init: o.init ?? false,
    ...(o.stopSignal !== undefined ? { stopSignal: o.stopSignal } : {}),
    ...(o.stopTimeout !== undefined ? { stopTimeout: o.stopTimeout } : {}),
    labels: o.label,
    createCommand: ['kiln', ...argv],
  };
}
