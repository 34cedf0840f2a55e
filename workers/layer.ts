/**
 * Piscina entry point for layer work (src/layer/extract.ts). The task names which operation;
 * the reply is a WorkerReply, errors as {code, message, hint} (see src/util/pool.ts).
 */
import { extractBlob, ingestTar, type ExtractRequest, type IngestRequest } from '../src/layer/extract';
import { toWire } from '../src/errors';
import type { WorkerReply } from '../src/util/pool';

export type LayerTask = ({ op: 'extract' } & ExtractRequest) | ({ op: 'ingest' } & IngestRequest);

export default async function (task: LayerTask): Promise<WorkerReply<unknown>> {
  try {
    return { ok: true, value: task.op === 'extract' ? await extractBlob(task) : await ingestTar(task) };
  } catch (e) {
    return { ok: false, error: toWire(e) };
  }
}
