/**
 * Clean-up for container tests: conmon processes started for a sandbox's store (their command
 * lines name its runroot) are killed along with the runtime's containers; then the usual
 * sandbox teardown (build-e2e.ts) unmounts and removes everything.
 */
import * as fs from 'node:fs';
import type { Sandbox } from './env';
import { teardown } from './build-e2e';

/** Pids of live processes whose command line mentions `text`. */
export function processesMentioning(text: string): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    try {
      const argv = fs.readFileSync(`/proc/${d}/cmdline`, 'latin1');
      if (argv !== '' && argv.includes(text)) out.push(Number(d));
    } catch {
      /* gone */
    }
  }
  return out;
}

/** Kills the sandbox's conmons and containers, then tears the sandbox down. */
export function teardownContainers(sb: Sandbox | undefined): void {
  if (!sb) return;
  for (const pid of processesMentioning(sb.runroot)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  teardown(sb);
}
