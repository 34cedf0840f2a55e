/**
 * `kiln pull [flags] IMAGE`: copies an image from a registry into the local store, printing
 * podman's progress lines to stderr ("Trying to pull …", "Getting image source signatures",
 * "Copying blob …", …) unless -q, and the image ID to stdout. IMAGE may carry `docker://`
 * (then a name without registry means docker.io); a short name is resolved through
 * containers-registries.conf(5) (aliases, unqualified-search registries) and its candidates are
 * tried in order. A registry's [[registry]] location rewrite applies; the image is stored under
 * the name asked for.
 */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { KilnError } from '../../errors';
import { hostOptionsFor, type RegistryFlags } from '../../registry/host-options';
import { registryForPull, resolveShortName } from '../../registry/registries-conf';
import { pullImage } from '../../registry/pull';
import { DockerReference, type PlatformWanted } from '../../transports/docker';

interface PullFlags extends RegistryFlags {
  platform?: string;
  arch?: string;
  os?: string;
  variant?: string;
  quiet?: boolean;
}

function platformOf(o: PullFlags): PlatformWanted {
  const p: PlatformWanted = {};
  if (o.platform !== undefined) {
    const parts = o.platform.split('/');
    if (parts.length < 2 || parts.length > 3 || parts.some((x) => x === '')) {
      throw new KilnError('E_INVALID_ARGUMENT', `--platform ${JSON.stringify(o.platform)}: want OS/ARCH[/VARIANT], e.g. linux/amd64`);
    }
    p.os = parts[0]!;
    p.arch = parts[1]!;
    if (parts[2] !== undefined) p.variant = parts[2];
  }
  if (o.os !== undefined) p.os = o.os;
  if (o.arch !== undefined) p.arch = o.arch;
  if (o.variant !== undefined) p.variant = o.variant;
  return p;
}

/** The fully qualified names to try for IMAGE, in order. */
function candidates(image: string): string[] {
  if (image.startsWith('docker://')) {
    const rest = image.slice('docker://'.length);
    if (rest === '') throw new KilnError('E_INVALID_REFERENCE', `invalid image reference ${JSON.stringify(image)}: empty image name`);
    return [rest];
  }
  return resolveShortName(image);
}

export function definePull(cmd: Command): Command {
  return cmd
    .argument('<image>', 'image to pull: [docker://][REGISTRY/]NAME[:TAG|@DIGEST]')
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates when contacting registries (default true)')
    .option('--cert-dir <dir>', 'use certificates (*.crt) at the specified path to access the registry')
    .option('--authfile <file>', 'path of the authentication file')
    .option('--creds <user:pass>', 'use USERNAME[:PASSWORD] for accessing the registry')
    .option('--platform <os/arch>', 'pull the image for this platform')
    .option('--arch <arch>', 'use ARCH instead of the architecture of the machine for choosing images')
    .option('--os <os>', 'use OS instead of the running OS for choosing images')
    .option('--variant <variant>', 'use VARIANT instead of the running architecture variant for choosing images')
    .option('-q, --quiet', 'suppress output information when pulling images')
    .action(
      handler(async (ctx, image: string, o: PullFlags) => {
        const platform = platformOf(o);
        const log = o.quiet ? undefined : (line: string) => process.stderr.write(`${line}\n`);
        const hostOptions = hostOptionsFor(o);
        const names = candidates(image);
        let last: unknown;
        for (const name of names) {
          const asked = new DockerReference(name);
          log?.(`Trying to pull ${asked.displayName}...`);
          const conf = registryForPull(asked.displayName);
          const from = conf.location === asked.displayName ? asked : new DockerReference(conf.location);
          const ref = new DockerReference(from.displayName, { hostOptions, platform, ...(log ? { log } : {}) });
          try {
            write(await pullImage(ctx, ref, asked.digest === undefined ? asked.displayName : undefined));
            return;
          } catch (e) {
            last = e;
            if (names.length > 1) log?.(`Error: ${e instanceof Error ? e.message : String(e)}`);
          }
        }
        throw last;
      }),
    );
}

export function register(program: Command): void {
  definePull(program.command('pull').description('Pull an image from a registry'));
}
