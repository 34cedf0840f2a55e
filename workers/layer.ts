/**
 * Piscina entry point for layer work (src/layer/extract.ts, src/layer/pack.ts), file digests
 * (src/util/file-digest.ts) and blob diffIDs (src/layer/diffid.ts). The task names
 * which operation; the reply is a WorkerReply, errors as {code, message, hint} (see
 * src/util/pool.ts).
 */
import { extractBlob, ingestTar, type ExtractRequest, type IngestRequest } from '../src/layer/extract';
import { packDir, type PackRequest } from '../src/layer/pack';
import { blobDiffIDOfFile } from '../src/layer/diffid';
import { sha256File } from '../src/util/file-digest';
import { toWire } from '../src/errors';
import type { WorkerReply } from '../src/util/pool';

export type LayerTask = ({ op: 'extract' } & ExtractRequest) | ({ op: 'ingest' } & IngestRequest) | ({ op: 'pack' } & PackRequest) | { op: 'digest'; path: string }
  | { op: 'diffid'; blobPath: string; what: string };

export default async function (task: LayerTask): Promise<WorkerReply<unknown>> {
  try {
    const value =
      task.op === 'extract' ? await extractBlob(task)
      : task.op === 'ingest' ? await ingestTar(task)
      : task.op === 'digest' ? await sha256File(task.path)
      : task.op === 'diffid' ? await blobDiffIDOfFile(task)
      : await packDir(task);
    return { ok: true, value };
  } catch (e) {
    return { ok: false, error: toWire(e) };
  }
}
