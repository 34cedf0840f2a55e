/**
 * `kiln push IMAGE DESTINATION`: to oci:, oci-archive:, docker-archive:, dir: or a registry
 * (docker://HOST/REPO[:TAG]). Registry pushes print podman's progress lines to stderr unless -q.
 */
import type { Command } from 'commander';
import { handler } from '../output';
import { pushImage } from '../../engine/transfer';
import { hostOptionsFor, type RegistryFlags } from '../../registry/host-options';

export function definePush(cmd: Command): Command {
  return cmd
    .argument('<image>', 'image to push')
    .argument('<destination>', 'docker://REGISTRY/REPO[:TAG], oci:DIR[:TAG], oci-archive:PATH, docker-archive:PATH or dir:PATH')
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates when contacting registries (default true)')
    .option('--cert-dir <dir>', 'use certificates (*.crt) at the specified path to access the registry')
    .option('--authfile <file>', 'path of the authentication file')
    .option('--creds <user:pass>', 'use USERNAME[:PASSWORD] for accessing the registry')
    .option('-q, --quiet', 'Suppress output information when pushing images')
    .action(
      handler((ctx, image: string, destination: string, o: RegistryFlags & { quiet?: boolean }) =>
        pushImage(ctx, {
          image,
          destination,
          registry: { hostOptions: hostOptionsFor(o), ...(o.quiet ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }) },
        }),
      ),
    );
}

export function register(program: Command): void {
  definePush(program.command('push').description('Push an image to a specified destination'));
}
