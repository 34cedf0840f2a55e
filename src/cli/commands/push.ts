/**
 * `kiln push IMAGE DESTINATION`: to oci:, oci-archive:, docker-archive:, dir: or a registry
 * (docker://HOST/REPO[:TAG]). Registry pushes print podman's progress lines to stderr unless -q.
 * With --sign-by-sigstore-private-key the pushed manifest is signed (signature/sign.ts).
 */
import type { Command } from 'commander';
import { handler } from '../output';
import { progressOutput } from '../progress-lines';
import { pushImage } from '../../engine/transfer';
import { hostOptionsFor, type RegistryFlags } from '../../registry/host-options';
import { KilnError } from '../../errors';
import { getPassphrase } from '../../signature/passphrase';

interface PushFlags extends RegistryFlags {
  quiet?: boolean;
  signBySigstorePrivateKey?: string;
  signPassphraseFile?: string;
  'registries.d'?: string;
}

export function definePush(cmd: Command): Command {
  return cmd
    .argument('<image>', 'image to push')
    .argument('<destination>', 'docker://REGISTRY/REPO[:TAG], oci:DIR[:TAG], oci-archive:PATH, docker-archive:PATH or dir:PATH')
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates when contacting registries (default true)')
    .option('--cert-dir <dir>', 'use certificates (*.crt) at the specified path to access the registry')
    .option('--authfile <file>', 'path of the authentication file')
    .option('--creds <user:pass>', 'use USERNAME[:PASSWORD] for accessing the registry')
    .option('--sign-by-sigstore-private-key <path>', 'sign the image using a sigstore private key at PATH')
    .option('--sign-passphrase-file <path>', 'read a passphrase for signing an image from PATH')
    .option('--registries.d <dir>', 'use registry configuration files in DIR (e.g., for sigstore attachments)')
    .option('-q, --quiet', 'Suppress output information when pushing images')
    .action(
      handler(async (ctx, image: string, destination: string, o: PushFlags) => {
        const key = o.signBySigstorePrivateKey;
        if (key === undefined && o.signPassphraseFile !== undefined) {
          throw new KilnError('E_INVALID_ARGUMENT', '--sign-passphrase-file is only meaningful with --sign-by-sigstore-private-key');
        }
        const sign = key === undefined ? undefined : {
          keyPath: key,
          passphrase: await getPassphrase(o.signPassphraseFile, '--sign-passphrase-file'),
          ...(o['registries.d'] !== undefined ? { registriesDir: o['registries.d'] } : {}),
        };
        const out = progressOutput(o.quiet);
        try {
          await pushImage(ctx, {
            image,
            destination,
            registry: { hostOptions: hostOptionsFor(o), ...(out.log ? { log: out.log } : {}), ...(out.progress ? { progress: out.progress } : {}) },
            ...(sign ? { sign } : {}),
          });
        } finally {
          out.close();
        }
      }),
    );
}

export function register(program: Command): void {
  definePush(program.command('push').description('Push an image to a specified destination'));
}
