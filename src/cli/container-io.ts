/**
 * The terminal side of the commands that stream a container's process (run, start -a, attach,
 * exec): with a terminal and stdin, kiln's stdin is put in raw mode for the call (keys go to the
 * container, not to kiln's line discipline) and restored after; stdin is paused afterwards so
 * the process can exit; a process that could not be started ends the command with podman's
 * exit code (127 not found, 126 not executable, 125 other) after the error; a non-zero exit
 * code of the process becomes kiln's.
 */
import { ExitError, printError } from './output';
import { RuntimeStartError } from '../runtime/types';

export async function withContainerIO(o: { raw: boolean; stdin: boolean }, fn: () => Promise<number | undefined>): Promise<void> {
  const raw = o.raw && o.stdin && process.stdin.isTTY === true;
  if (raw) process.stdin.setRawMode(true);
  let code: number | undefined;
  try {
    code = await fn();
  } catch (e) {
    if (e instanceof RuntimeStartError) {
      printError(e);
      throw new ExitError(e.exitCode);
    }
    throw e;
  } finally {
    if (raw) process.stdin.setRawMode(false);
    if (o.stdin) process.stdin.pause();
  }
  if (code !== undefined && code !== 0) throw new ExitError(code);
}
