/**
 * A docker-archive (the `docker save` / `podman save -m` layout) holding COUNT images that
 * share one tiny base layer but have distinct configs (a label and the created time differ),
 * tagged localhost/bench/img-N:latest. Deterministic: same COUNT, same bytes.
 *
 * Each image also has its own one-file top layer. Without it all COUNT images would have
 * the same top layer, and podman 4.3's `images` then compares every image with every other
 * one to find parents and children (O(n^2) config reads): 3.5 minutes for one
 * `podman images` of 1000 images on the reference machine, which would measure that
 * corner case and not listing.
 *
 *   node dist/bench/make-archive.js OUT.tar [COUNT=1000]
 */
import { createHash } from 'node:crypto';
import { createWriteStream, promises as fsp } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';

const EPOCH = new Date(0);

function sha256hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

/** An uncompressed layer tar with a single small file. */
async function tinyLayer(name: string, content: string): Promise<Buffer> {
  const pack = tar.pack();
  pack.entry({ name, mode: 0o644, uid: 0, gid: 0, mtime: EPOCH }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}

export function benchTag(i: number): string {
  return `localhost/bench/img-${i}:latest`;
}

export async function makeBenchArchive(outPath: string, count = 1000): Promise<void> {
  const base = await tinyLayer('bench.txt', 'kiln bench layer\n');
  const baseHex = sha256hex(base);
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(outPath));
  const add = (name: string, data: Buffer | string): Promise<void> =>
    new Promise((resolve, reject) => {
      pack.entry({ name, mode: 0o644, uid: 0, gid: 0, mtime: EPOCH }, data, (err) => (err ? reject(err) : resolve()));
    });
  const addDir = (name: string): Promise<void> =>
    new Promise((resolve, reject) => {
      pack.entry({ name, type: 'directory', mode: 0o755, uid: 0, gid: 0, mtime: EPOCH }, (err) => (err ? reject(err) : resolve()));
    });

  try {
    await addDir(baseHex);
    await add(`${baseHex}/layer.tar`, base);
    const manifest: Array<{ Config: string; RepoTags: string[]; Layers: string[] }> = [];
    for (let i = 0; i < count; i++) {
      const top = await tinyLayer('bench-id', `${i}\n`);
      const topHex = sha256hex(top);
      await addDir(topHex);
      await add(`${topHex}/layer.tar`, top);
      const created = new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString();
      const config = Buffer.from(JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        created,
        config: { Cmd: ['/bin/sh'], Labels: { 'io.kiln.bench.index': String(i) } },
        rootfs: { type: 'layers', diff_ids: [`sha256:${baseHex}`, `sha256:${topHex}`] },
        history: [
          { created: EPOCH.toISOString(), created_by: 'kiln bench base layer' },
          { created, created_by: `kiln bench image ${i}` },
        ],
      }));
      const configName = `${sha256hex(config)}.json`;
      await add(configName, config);
      manifest.push({ Config: configName, RepoTags: [benchTag(i)], Layers: [`${baseHex}/layer.tar`, `${topHex}/layer.tar`] });
    }
    await add('manifest.json', JSON.stringify(manifest));
    pack.finalize();
    await done;
  } catch (err) {
    pack.destroy();
    await done.catch(() => undefined);
    await fsp.rm(outPath, { force: true });
    throw err;
  }
}

if (require.main === module) {
  const [out, n] = process.argv.slice(2);
  const count = n === undefined ? 1000 : Number(n);
  if (!out || !Number.isInteger(count) || count < 1) {
    process.stderr.write('usage: node dist/bench/make-archive.js OUT.tar [COUNT]\n');
    process.exit(2);
  }
  makeBenchArchive(out, count).catch((err: unknown) => {
    process.stderr.write(`make-archive: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
