/**
 * Shared CLI plumbing: exit codes, error printing (podman's "Error: …" on stderr, plus our
 * hint), and the engine context built from the global options. Successful commands write only
 * their result to stdout and nothing to stderr.
 */
import type { Command } from 'commander';
import { asKilnError } from '../errors';
import type { EngineContext } from '../engine/context';

export const EXIT = { ok: 0, engine: 125, cannotInvoke: 126, notFound: 127 } as const;

/** Exit-code exceptions a command may raise to end with a specific code and message. */
export class ExitError extends Error {
  constructor(readonly exitCode: number, message?: string) {
    super(message ?? '');
  }
}

export function printError(e: unknown): void {
  const k = asKilnError(e);
  process.stderr.write(`Error: ${k.message}\n`);
  if (k.hint) process.stderr.write(`Hint: ${k.hint}\n`);
  if (process.env.KILN_DEBUG && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
}

export function fail(e: unknown): never {
  if (e instanceof ExitError) {
    if (e.message) process.stderr.write(`Error: ${e.message}\n`);
    process.exit(e.exitCode);
  }
  printError(e);
  process.exit(EXIT.engine);
}

/** The engine context for the command being run, from the root program's global options. */
export function contextFor(cmd: Command): EngineContext {
  let root: Command = cmd;
  while (root.parent) root = root.parent;
  const g = root.opts<{ root?: string; runroot?: string }>();
  // Loaded here, not at the top: `kiln --version` and `--help` must not load the store.
  const { EngineContext: Ctx } = require('../engine/context') as typeof import('../engine/context');
  return new Ctx({ root: g.root, runroot: g.runroot });
}

/**
 * Wraps a command handler: builds the context, runs the handler, closes the store, and turns
 * errors into podman's output and exit codes.
 */
export function handler<A extends unknown[]>(fn: (ctx: EngineContext, ...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    const cmd = args[args.length - 1] as Command;
    const ctx = contextFor(cmd);
    try {
      await fn(ctx, ...args);
    } catch (e) {
      await finish(ctx);
      fail(e);
    }
    await finish(ctx);
  };
}

async function finish(ctx: EngineContext): Promise<void> {
  ctx.close();
  await (require('../util/pool') as typeof import('../util/pool')).closePool();
}

export function write(s: string): void {
  if (s.length === 0) return;
  process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
}

/** commander's accumulator for a repeatable flag (`-e A -e B` → ['A', 'B']). */
export const collect = (v: string, prev: string[]): string[] => [...prev, v];
