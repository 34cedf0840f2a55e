/**
 * sha256 of a file's bytes, streamed in 1 MiB chunks. Run on the worker pool (workers/layer.ts,
 * op 'digest') for big files, so hashing them never holds the scheduler's event loop.
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';

export async function sha256File(p: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of fs.createReadStream(p, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest('hex');
}
