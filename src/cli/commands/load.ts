/** `kiln load [-i FILE]`: prints "Loaded image: NAME" per image (the ID when it has no name). */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { handler, write } from '../output';
import { loadImages } from '../../engine/transfer';
import { KilnError } from '../../errors';
import { trackTemp } from '../../util/cleanup';

export function defineLoad(cmd: Command): Command {
  return cmd
    .option('-i, --input <file>', 'Read from specified archive file (default: stdin)')
    .option('-q, --quiet', 'Suppress the output')
    .action(
      handler(async (ctx, o: { input?: string; quiet?: boolean }) => {
        let input = o.input;
        let spool: string | undefined;
        if (!input || input === '-') {
          if (process.stdin.isTTY) throw new KilnError('E_INVALID_ARGUMENT', 'cannot read from terminal, use command-line redirection or the --input flag');
          spool = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-load-'));
          trackTemp(spool);
          input = path.join(spool, 'archive.tar');
          await pipeline(process.stdin, fs.createWriteStream(input));
        }
        try {
          const imgs = await loadImages(ctx, { input });
          // podman: a line per name the archive gave, or the ID of an unnamed image
          if (!o.quiet) write(imgs.flatMap((i) => (i.names.length ? i.names : [`sha256:${i.id}`]).map((n) => `Loaded image: ${n}`)).join('\n'));
        } finally {
          if (spool) fs.rmSync(spool, { recursive: true, force: true });
        }
      }),
    );
}

export function register(program: Command): void {
  defineLoad(program.command('load').description('Load image(s) from a tar archive'));
}
