/**
 * Temporary paths to remove if the process is interrupted (Ctrl-C, SIGTERM, SIGHUP): staging
 * dirs of destinations, decompressed copies of archives, spooled standard input, the store's
 * work dir. Code that creates such a path calls trackTemp(); normal completion removes it as
 * usual (or renames it into place) and a later rm of a vanished path is harmless, so nothing is
 * ever untracked. The CLI installs the handlers; a library user may call removeTracked() itself.
 */
import * as fs from 'node:fs';

const tracked = new Set<string>();

export function trackTemp(p: string): void {
  tracked.add(p);
}

export function removeTracked(): void {
  for (const p of tracked) {
    try {
      fs.rmSync(p, { recursive: true, force: true });
    } catch {
      /* best effort while exiting */
    }
  }
  tracked.clear();
}

let interrupt: ((exitCode: number) => void) | undefined;

/**
 * Lets a long operation (a build) stop itself cleanly on the first SIGINT/SIGTERM/SIGHUP: `fn`
 * gets the exit code to end with and must make the operation fail soon; a second signal
 * exits at once. Returns the function that removes the hook.
 */
export function onInterrupt(fn: (exitCode: number) => void): () => void {
  interrupt = fn;
  return () => {
    if (interrupt === fn) interrupt = undefined;
  };
}

/** On SIGINT/SIGTERM/SIGHUP: remove tracked paths and exit with 128 + the signal number. */
export function installSignalCleanup(): void {
  for (const [sig, code] of [['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]] as const) {
    process.on(sig, () => {
      const hook = interrupt;
      if (hook) {
        interrupt = undefined;
        hook(code);
        return;
      }
      removeTracked();
      process.exit(code);
    });
  }
}
