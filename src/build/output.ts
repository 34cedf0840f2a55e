/**
 * --output: besides the image in the store, the final root filesystem as a directory
 * (type=local,dest=DIR) or a tar file (type=tar,dest=FILE, `-` for standard output). Both are
 * read from a read-only mount of the image's top layer, so whiteouts are already applied.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { KilnError } from '../errors';
import { writeLayerTar } from '../layer/diff';
import type { Store } from '../store/store';
import type { ImageRecord } from '../store/images';
import { selfOwner } from '../util/proc';

export interface OutputSpec {
  type: 'local' | 'tar';
  dest: string;
}

/** Parses `type=local,dest=DIR`, `type=tar,dest=FILE`, or a bare path (type=local, as buildah's -o DIR). */
export function parseOutput(v: string): OutputSpec {
  if (!v.includes('=')) return { type: v === '-' ? 'tar' : 'local', dest: v };
  const kv: Record<string, string> = {};
  for (const part of v.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) throw new KilnError('E_INVALID_ARGUMENT', `--output ${v}: expected key=value, got ${JSON.stringify(part)}`);
    kv[part.slice(0, i).trim()] = part.slice(i + 1);
  }
  const type = kv.type ?? 'local';
  if (type !== 'local' && type !== 'tar') throw new KilnError('E_INVALID_ARGUMENT', `--output ${v}: type must be local or tar`);
  if (!kv.dest) throw new KilnError('E_INVALID_ARGUMENT', `--output ${v}: dest= is required`);
  return { type, dest: kv.dest };
}

export async function exportOutputs(store: Store, image: ImageRecord, outputs: OutputSpec[]): Promise<void> {
  const holder = selfOwner();
  let root: string;
  const top = image.topLayer;
  if (top === null) root = store.tempDir('empty-root');
  else {
    await store.layers.ensureChain(top);
    root = store.mounts.mount(top, holder);
  }
  try {
    for (const o of outputs) {
      if (o.type === 'local') {
        fs.mkdirSync(o.dest, { recursive: true });
        const r = spawnSync('cp', ['-a', `${root}/.`, path.resolve(o.dest)], { encoding: 'utf8' });
        if (r.status !== 0) throw new KilnError('E_IO', `--output ${o.dest}: cp: ${r.stderr.trim()}`);
      } else {
        const out = o.dest === '-' ? process.stdout : fs.createWriteStream(`${o.dest}.tmp-${process.pid}`, { flags: 'wx' });
        await writeLayerTar(root, out);
        if (out !== process.stdout) {
          await new Promise<void>((res, rej) => (out as fs.WriteStream).close((e) => (e ? rej(e) : res())));
          fs.renameSync(`${o.dest}.tmp-${process.pid}`, o.dest);
        }
      }
    }
  } finally {
    if (top === null) fs.rmSync(root, { recursive: true, force: true });
    else store.mounts.unmount(top, holder);
  }
}
