/**
 * Builds small synthetic OCI images in memory for transport tests: each layer is a tar made with
 * tar-stream (fixed mtime/uid, so digests are stable), optionally gzip'd; the config lists the
 * layers' diff_ids; the manifest is an OCI image manifest serialised with JSON.stringify.
 * `putSynthetic` feeds such an image into any ImageDestination the way the copier would
 * (config and layers via putBlob with expected digest and size, then putImage).
 */
import { Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import * as tarStream from 'tar-stream';
import { MT } from '../../src/image/oci';
import { sha256, type Digest } from '../../src/util/digest';
import type { ImageDestination, ManifestBlob } from '../../src/transports/types';

export interface SyntheticLayer {
  bytes: Buffer;
  digest: Digest;
  size: number;
  diffID: Digest;
  mediaType: string;
}

export interface SyntheticImage {
  manifest: ManifestBlob;
  config: { bytes: Buffer; digest: Digest; size: number; mediaType: string };
  layers: SyntheticLayer[];
  diffIDs: Digest[];
  /** Every blob (config and layers) by digest. */
  blobs: Map<Digest, Buffer>;
}

export interface BuildOptions {
  /** One entry per layer: path → content. Default: one layer with etc/hello.txt. */
  layers?: Record<string, string>[];
  gzip?: boolean;
  /** Goes into the config (and so changes every digest), to make distinct images. */
  label?: string;
}

export async function makeTar(files: Record<string, string>): Promise<Buffer> {
  const pack = tarStream.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
  })();
  const fixed = { mtime: new Date(1_600_000_000_000), uid: 0, gid: 0, uname: '', gname: '' };
  const dirs = new Set<string>();
  for (const [name, content] of Object.entries(files)) {
    const parts = name.split('/').slice(0, -1);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      if (dirs.has(d)) continue;
      dirs.add(d);
      await new Promise<void>((res, rej) => pack.entry({ ...fixed, name: `${d}/`, type: 'directory', mode: 0o755 }, (e) => (e ? rej(e) : res())));
    }
    const data = Buffer.from(content);
    await new Promise<void>((res, rej) => pack.entry({ ...fixed, name, type: 'file', mode: 0o644, size: data.length }, data, (e) => (e ? rej(e) : res())));
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function buildImage(opts: BuildOptions = {}): Promise<SyntheticImage> {
  const specs = opts.layers ?? [{ 'etc/hello.txt': 'hello from kiln\n' }];
  const layers: SyntheticLayer[] = [];
  for (const files of specs) {
    const tar = await makeTar(files);
    const bytes = opts.gzip ? zlib.gzipSync(tar) : tar;
    layers.push({ bytes, digest: sha256(bytes), size: bytes.length, diffID: sha256(tar), mediaType: opts.gzip ? MT.ociLayerGzip : MT.ociLayer });
  }
  const diffIDs = layers.map((l) => l.diffID);
  const cfg = {
    created: '2024-01-01T00:00:00Z',
    architecture: 'amd64',
    os: 'linux',
    config: { Cmd: ['/bin/sh'], Labels: { 'test.label': opts.label ?? 'default' } },
    rootfs: { type: 'layers', diff_ids: diffIDs },
    history: layers.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'synthetic' })),
  };
  const configBytes = Buffer.from(JSON.stringify(cfg));
  const config = { bytes: configBytes, digest: sha256(configBytes), size: configBytes.length, mediaType: MT.ociConfig };
  const m = {
    schemaVersion: 2,
    mediaType: MT.ociManifest,
    config: { mediaType: MT.ociConfig, digest: config.digest, size: config.size },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const mbytes = Buffer.from(JSON.stringify(m));
  const blobs = new Map<Digest, Buffer>([[config.digest, configBytes], ...layers.map((l): [Digest, Buffer] => [l.digest, l.bytes])]);
  return { manifest: { bytes: mbytes, mediaType: MT.ociManifest, digest: sha256(mbytes) }, config, layers, diffIDs, blobs };
}

/** Puts an image's blobs (skipping ones the destination has) and the image itself. */
export async function putSynthetic(dest: ImageDestination, img: SyntheticImage, names: string[] = []): Promise<void> {
  const c = img.config;
  if (!(await dest.hasBlob(c.digest))) await dest.putBlob(Readable.from([c.bytes]), { digest: c.digest, size: c.size, mediaType: c.mediaType });
  for (const l of img.layers) {
    if (!(await dest.hasBlob(l.digest))) await dest.putBlob(Readable.from([l.bytes]), { digest: l.digest, size: l.size, mediaType: l.mediaType });
  }
  await dest.putImage({ manifest: img.manifest, names });
}

export async function readAll(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks);
}
