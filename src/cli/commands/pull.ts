/**
 * `kiln pull [flags] IMAGE`: copies an image from a registry into the local store, printing
 * podman's progress lines to stderr ("Trying to pull …", "Getting image source signatures",
 * "Copying blob …", …) unless -q, and the image ID to stdout. IMAGE may carry `docker://`
 * (then a name without registry means docker.io); a short name is resolved through
 * containers-registries.conf(5), and each name is fetched from its registry's mirrors, then its
 * location (engine/pull.ts). The image is stored under the name asked for.
 */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { progressOutput } from '../progress-lines';
import { KilnError } from '../../errors';
import { pullImages } from '../../engine/pull';
import { hostOptionsFor, type RegistryFlags } from '../../registry/host-options';
import type { PlatformWanted } from '../../transports/docker';

interface PullFlags extends RegistryFlags {
  platform?: string;
  arch?: string;
  os?: string;
  variant?: string;
  quiet?: boolean;
  signaturePolicy?: string;
  'registries.d'?: string;
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
    .option('--signature-policy <file>', 'path to a signature-policy file (default /etc/containers/policy.json)')
    .option('--registries.d <dir>', 'directory of registries.d configuration (signature lookaside) files')
    .action(
      handler(async (ctx, image: string, o: PullFlags) => {
        const out = progressOutput(o.quiet);
        let id: string;
        try {
          id = await pullImages(ctx, {
            image,
            platform: platformOf(o),
            hostOptions: hostOptionsFor(o),
            ...(out.log ? { log: out.log } : {}),
            ...(out.progress ? { progress: out.progress } : {}),
            ...(o.signaturePolicy !== undefined ? { policyPath: o.signaturePolicy } : {}),
            ...(o['registries.d'] !== undefined ? { registriesDir: o['registries.d'] } : {}),
          });
        } finally {
          out.close();
        }
        write(id);
      }),
    );
}

export function register(program: Command): void {
  definePull(program.command('pull').description('Pull an image from a registry'));
}
