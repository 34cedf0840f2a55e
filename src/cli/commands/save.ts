/** `kiln save [-o FILE] [--format …] IMAGE...`: without -o the archive goes to standard output. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { handler } from '../output';
import { saveImages, type SaveFormat } from '../../engine/transfer';
import { KilnError } from '../../errors';
import { trackTemp } from '../../util/cleanup';

const FORMATS: SaveFormat[] = ['docker-archive', 'oci-archive', 'oci-dir', 'docker-dir'];

export function defineSave(cmd: Command): Command {
  return cmd
    .argument('<images...>', 'images to save')
    .option('-o, --output <file>', 'Write to a specified file (default: stdout, which must be redirected)')
    .option('--format <format>', `Save image to ${FORMATS.join(', ')}`, 'docker-archive')
    .option('-m, --multi-image-archive', 'Interpret additional arguments as images not tags and create a multi-image-archive (only for docker-archive)')
    .option('-q, --quiet', 'Suppress the output')
    .option('--compress', 'Compress tarball image layers when saving to a directory using the docker-dir format')
    .action(
      handler(async (ctx, images: string[], o: { output?: string; format: string }) => {
        if (!FORMATS.includes(o.format as SaveFormat)) {
          throw new KilnError('E_INVALID_ARGUMENT', `--format ${JSON.stringify(o.format)}: unknown format`, { hint: `use one of ${FORMATS.join(', ')}` });
        }
        const format = o.format as SaveFormat;
        if (o.output) {
          await saveImages(ctx, { images, format, output: o.output });
          return;
        }
        if (format === 'oci-dir' || format === 'docker-dir') throw new KilnError('E_INVALID_ARGUMENT', `--format ${format} needs --output DIR`);
        if (process.stdout.isTTY) throw new KilnError('E_INVALID_ARGUMENT', 'refusing to save to terminal. Use -o flag or redirect');
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-save-'));
        trackTemp(dir);
        try {
          const file = path.join(dir, 'archive.tar');
          await saveImages(ctx, { images, format, output: file });
          await pipeline(fs.createReadStream(file), process.stdout);
        } finally {
          fs.rmSync(dir, { recursive: true, force: true });
        }
      }),
    );
}

export function register(program: Command): void {
  defineSave(program.command('save').description('Save image(s) to an archive'));
}
