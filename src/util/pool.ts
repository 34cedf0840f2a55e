/**
 * The process's Piscina worker pool for CPU-heavy work (hashing, decompression, tar), created
 * on first use. Tasks are named by a worker entry point under workers/. Errors cross the worker
 * boundary as WireError objects ({code, message, hint}) and are rebuilt as KilnErrors here,
 * since structured cloning drops custom classes.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { Piscina as PiscinaT } from 'piscina';
import { KilnError, type WireError } from '../errors';
import { packageRoot } from '../paths';

let pool: PiscinaT | undefined;

function getPool(): PiscinaT {
  if (pool === undefined) {
    const { Piscina } = require('piscina') as typeof import('piscina');
    pool = new Piscina({
      maxThreads: Math.max(1, os.availableParallelism()),
      idleTimeout: 200,
    });
  }
  return pool;
}

export type WorkerReply<T> = { ok: true; value: T } | { ok: false; error: WireError };

/** Runs `workers/<name>.js` with `arg`; the worker replies with a WorkerReply. */
export async function runInWorker<A, T>(name: string, arg: A): Promise<T> {
  const filename = path.join(packageRoot(), 'dist', 'workers', `${name}.js`);
  const reply = (await getPool().run(arg, { filename })) as WorkerReply<T>;
  if (!reply.ok) throw KilnError.fromWire(reply.error);
  return reply.value;
}

/** Stops the pool's threads (so a CLI process can exit promptly). */
export async function closePool(): Promise<void> {
  const p = pool;
  pool = undefined;
  if (p) await p.destroy();
}
