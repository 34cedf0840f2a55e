/**
 * Copies images from a Source to a Destination, verifying every blob against the digest that
 * names it (the destination verifies what it is given; when a layer must be decompressed for
 * the destination, the compressed bytes are hashed here on the way through).
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { KilnError, withContext } from '../errors';
import { sha256, type Digest } from '../util/digest';
import { HashCounter, checkExpected } from '../util/blobfile';
import { decompressStream } from '../layer/decompress';
import { MT, layerCompression, type Descriptor, type Manifest } from '../image/oci';
import { parseConfig, parseManifest } from '../image/manifest';
import type { ImageDestination, SourceImage } from './types';

export interface CopyResult {
  manifestDigest: Digest;
  configDigest: Digest;
}

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Reads and verifies a small blob (config) from a source. */
export async function readVerified(src: SourceImage, d: Descriptor, what: string): Promise<Buffer> {
  const buf = await readAll(await src.getBlob(d));
  checkExpected({ digest: sha256(buf), size: buf.length }, { digest: d.digest, size: d.size, what });
  return buf;
}

type ManifestFormat = 'oci' | 'docker';

function manifestFormatOf(m: Manifest, mediaType: string): ManifestFormat {
  return (m.mediaType ?? mediaType) === MT.dockerManifest || m.config.mediaType === MT.dockerConfig ? 'docker' : 'oci';
}

const TO_OCI: Record<string, string> = { [MT.dockerConfig]: MT.ociConfig, [MT.dockerLayer]: MT.ociLayer, [MT.dockerLayerGzip]: MT.ociLayerGzip };
const TO_DOCKER: Record<string, string> = { [MT.ociConfig]: MT.dockerConfig, [MT.ociLayer]: MT.dockerLayer, [MT.ociLayerGzip]: MT.dockerLayerGzip };

/**
 * The same image as an OCI or Docker schema2 manifest, as podman converts on save/push: the
 * config and layer bytes stay; only media types (and so the manifest digest) change.
 */
function convertManifest(m: Manifest, layers: Descriptor[], to: ManifestFormat, what: string): Manifest {
  const map = to === 'oci' ? TO_OCI : TO_DOCKER;
  const conv = (d: Descriptor, w: string): Descriptor => {
    const mt = map[d.mediaType] ?? (Object.values(map).includes(d.mediaType) ? d.mediaType : undefined);
    if (mt === undefined) throw new KilnError('E_UNSUPPORTED', `${what}: ${w} of media type ${d.mediaType} has no ${to === 'oci' ? 'OCI' : 'Docker schema2'} equivalent`);
    return { mediaType: mt, digest: d.digest, size: d.size };
  };
  const out: Manifest = {
    schemaVersion: 2,
    mediaType: to === 'oci' ? MT.ociManifest : MT.dockerManifest,
    config: conv(m.config, 'the config'),
    layers: layers.map((l, i) => conv(l, `layer ${i + 1}`)),
  };
  if (to === 'oci' && m.annotations) out.annotations = m.annotations;
  return out;
}

/** Sizes of layers this module decompressed into a destination, so a shared layer is written once. */
const uncompressedSizes = new WeakMap<ImageDestination, Map<Digest, number>>();

function uncompressedType(mt: string): string {
  return mt.startsWith('application/vnd.docker.') ? MT.dockerLayer : MT.ociLayer;
}

/**
 * Copies one image. `names` are what the destination records (load/save pass the source's or
 * the store's names). Blobs the destination has are skipped.
 */
export async function copyImage(src: SourceImage, dest: ImageDestination, names: string[], what: string): Promise<CopyResult> {
  try {
    return await copyImageInner(src, dest, names, what);
  } catch (e) {
    // Say which image of which source failed; destinations only know digests.
    throw withContext(e, what);
  }
}

async function copyImageInner(src: SourceImage, dest: ImageDestination, names: string[], what: string): Promise<CopyResult> {
  const mblob = await src.manifest();
  checkExpected({ digest: sha256(mblob.bytes), size: mblob.bytes.length }, { digest: mblob.digest, what: `${what}: manifest` });
  const manifest = parseManifest(mblob, what);
  const configBytes = await readVerified(src, manifest.config, `${what}: config`);
  const config = parseConfig(configBytes, what);
  if (config.rootfs.diff_ids.length !== manifest.layers.length) {
    throw new KilnError('E_BAD_MANIFEST', `${what}: manifest lists ${manifest.layers.length} layers but the config has ${config.rootfs.diff_ids.length} diff_ids`);
  }
  if (!(await dest.hasBlob(manifest.config.digest))) {
    await dest.putBlob(Readable.from([configBytes]), { digest: manifest.config.digest, size: manifest.config.size, mediaType: manifest.config.mediaType });
  }
  let rewritten = false;
  const layers: Descriptor[] = [];
  for (const [i, l] of manifest.layers.entries()) {
    const comp = layerCompression(l.mediaType);
    if (comp === undefined) throw new KilnError('E_UNSUPPORTED', `${what}: layer ${i + 1} has unsupported media type ${l.mediaType}`);
    const lw = `${what}: layer ${i + 1} (${l.digest})`;
    if (dest.layerForm === 'preserve' || comp === 'none') {
      if (!(await dest.hasBlob(l.digest))) await dest.putBlob(await src.getBlob(l), { digest: l.digest, size: l.size, mediaType: l.mediaType });
      layers.push(l);
      continue;
    }
    const diffID = config.rootfs.diff_ids[i]!;
    rewritten = true;
    const known = uncompressedSizes.get(dest) ?? new Map<Digest, number>();
    uncompressedSizes.set(dest, known);
    let size = known.get(diffID);
    if (size === undefined || !(await dest.hasBlob(diffID))) {
      const compressed = new HashCounter(l.size, lw);
      const raw = await src.getBlob(l);
      const hashing = pipeline(raw, compressed);
      const plain = await decompressStream(compressed);
      const [, put] = await Promise.all([hashing, dest.putBlob(plain, { digest: diffID, mediaType: uncompressedType(l.mediaType) })]);
      checkExpected({ digest: compressed.digest(), size: compressed.size }, { digest: l.digest, size: l.size, what: lw });
      size = put.size;
      known.set(diffID, size);
    }
    layers.push({ mediaType: uncompressedType(l.mediaType), digest: diffID, size });
  }
  let out = mblob;
  const current = manifestFormatOf(manifest, mblob.mediaType);
  const wanted = dest.manifestFormat === 'any' ? current : dest.manifestFormat;
  if (rewritten || wanted !== current) {
    const m2 = wanted === current
      ? { ...manifest, layers: layers.map((d) => ({ mediaType: d.mediaType, digest: d.digest, size: d.size })) }
      : convertManifest(manifest, layers, wanted, what);
    const bytes = Buffer.from(JSON.stringify(m2));
    out = { bytes, mediaType: wanted === current ? mblob.mediaType : m2.mediaType!, digest: sha256(bytes) };
  }
  await dest.putImage({ manifest: out, names });
  return { manifestDigest: out.digest, configDigest: manifest.config.digest };
}
