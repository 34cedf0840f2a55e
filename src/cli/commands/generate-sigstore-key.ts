/**
 * `kiln generate-sigstore-key --output-prefix PREFIX [--passphrase-file F]` (skopeo's command):
 * a key pair for `kiln push --sign-by-sigstore-private-key` and policy.json's sigstoreSigned.
 * Without --passphrase-file the passphrase is asked twice on the terminal.
 */
import type { Command } from 'commander';
import { KilnError } from '../../errors';
import { fail } from '../output';
import { generateSigstoreKey } from '../../engine/sigstore-key';
import { promptPassphrase, readPassphraseFile } from '../../signature/passphrase';

export function register(program: Command): void {
  program
    .command('generate-sigstore-key')
    .description('Generate a sigstore public/private key pair')
    .requiredOption('--output-prefix <prefix>', 'write the keys to PREFIX.pub and PREFIX.private')
    .option('--passphrase-file <path>', 'read a passphrase for the private key from PATH')
    .action(async (o: { outputPrefix: string; passphraseFile?: string }) => {
      try {
        let pass: Buffer;
        if (o.passphraseFile !== undefined) pass = readPassphraseFile(o.passphraseFile, '--passphrase-file');
        else {
          pass = await promptPassphrase('Enter a passphrase: ', '--passphrase-file');
          const again = await promptPassphrase('Confirm passphrase: ', '--passphrase-file');
          if (!pass.equals(again)) throw new KilnError('E_INVALID_ARGUMENT', 'passphrases do not match');
        }
        const w = generateSigstoreKey({ outputPrefix: o.outputPrefix, passphrase: pass });
        process.stdout.write(`Key written to "${w.privateKey}" and "${w.publicKey}"\n`);
      } catch (e) {
        fail(e);
      }
    });
}
