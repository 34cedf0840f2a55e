/** Piscina entry point: extract a layer blob (src/layer/extract.ts) and reply with a WorkerReply. */
import { extractBlob, type ExtractRequest, type ExtractResult } from '../src/layer/extract';
import { toWire } from '../src/errors';
import type { WorkerReply } from '../src/util/pool';

export default async function (req: ExtractRequest): Promise<WorkerReply<ExtractResult>> {
  try {
    return { ok: true, value: await extractBlob(req) };
  } catch (e) {
    return { ok: false, error: toWire(e) };
  }
}
