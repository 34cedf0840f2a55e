/**
 * Where a registry command's progress goes: nothing with -q; on a terminal, bars per blob
 * (registry/progress.ts) with the other lines printed above them; otherwise podman's plain
 * lines on stderr. `close()` must be called when the command ends, also on error.
 */
import { terminalProgress, type ProgressSink } from '../registry/progress';

export interface ProgressOutput {
  log?: (line: string) => void;
  progress?: ProgressSink;
  close(): void;
}

export function progressOutput(quiet: boolean | undefined): ProgressOutput {
  if (quiet) return { close: () => undefined };
  if (process.stderr.isTTY) {
    const progress = terminalProgress(process.stderr);
    return { log: (line) => progress.log(line), progress, close: () => progress.close() };
  }
  return { log: (line) => process.stderr.write(`${line}\n`), close: () => undefined };
}
