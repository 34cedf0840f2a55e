/**
 * The passphrase of a signing key: from --sign-passphrase-file (its first line, as
 * containers/image reads it), else asked on the terminal without echo. Without a file and
 * without a terminal it is an error naming the flag, rather than a hang on stdin.
 */
import * as fs from 'node:fs';
import { KilnError } from '../errors';

export function readPassphraseFile(file: string, flag: string): Buffer {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new KilnError('E_INVALID_ARGUMENT', `${flag} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const nl = text.indexOf('\n');
  return Buffer.from((nl < 0 ? text : text.slice(0, nl)).replace(/\r$/, ''), 'utf8');
}

/** Prompts on the controlling terminal (stdin must be a TTY), echo off. */
export async function promptPassphrase(prompt: string, flag: string): Promise<Buffer> {
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new KilnError('E_INVALID_ARGUMENT', `a passphrase is needed and stdin is not a terminal: use ${flag} FILE`);
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  const chars: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const onData = (d: Buffer) => {
        for (const ch of d.toString('utf8')) {
          if (ch === '\r' || ch === '\n') return done(resolve);
          if (ch === '\u0003') return done(() => reject(new KilnError('E_INVALID_ARGUMENT', 'passphrase entry interrupted')));
          if (ch === '\u007f' || ch === '\b') chars.pop();
          else chars.push(ch);
        }
      };
      const done = (f: () => void) => {
        stdin.off('data', onData);
        f();
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
    process.stderr.write('\n');
  }
  return Buffer.from(chars.join(''), 'utf8');
}

/** The passphrase from `file` if given, else from the terminal. */
export async function getPassphrase(file: string | undefined, flag: string, prompt = 'Key Passphrase: '): Promise<Buffer> {
  return file !== undefined ? readPassphraseFile(file, flag) : promptPassphrase(prompt, flag);
}
