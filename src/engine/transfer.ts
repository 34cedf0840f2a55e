/**
 * save, load and push: moving images between the store and the file transports through the
 * one copy pipeline (transports/copy.ts). Each destination is committed only after every image
 * was copied, and aborted (leaving nothing) on any error.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError, withContext } from '../errors';
import { pickName } from '../image/reference';
import type { ImageRecord } from '../store/images';
import { copyImage } from '../transports/copy';
import { parseImageReference } from '../transports/parse';
import { StorageReference } from '../transports/storage';
import { TarArchive } from '../transports/tarutil';
import { DockerArchiveReference } from '../transports/docker-archive';
import { OciArchiveReference } from '../transports/oci-archive';
import { OciLayoutReference } from '../transports/oci-layout';
import { DirReference } from '../transports/dir';
import type { DockerReference, RegistryDestination, RegistryOptions } from '../transports/docker';
import type { SignOptions } from '../signature/sign';
import type { ImageDestination, ImageReference, SourceImage } from '../transports/types';
import type { EngineContext } from './context';

export type SaveFormat = 'docker-archive' | 'oci-archive' | 'oci-dir' | 'docker-dir';

/**
 * The destination for `save -o PATH`, built from the path itself (not by parsing
 * "transport:PATH", which would split a path at a colon).
 */
function saveReference(format: SaveFormat, output: string): ImageReference {
  if (output.includes(':')) throw new KilnError('E_INVALID_ARGUMENT', `--output ${JSON.stringify(output)}: invalid filename (should not contain ':')`);
  switch (format) {
    case 'docker-archive':
      return new DockerArchiveReference(output);
    case 'oci-archive':
      return new OciArchiveReference(output);
    case 'oci-dir':
      return new OciLayoutReference(output);
    case 'docker-dir':
      return new DirReference(output);
  }
}

export interface SaveOptions {
  images: string[];
  format: SaveFormat;
  output: string;
}

/** The name a user's reference picked out of an image's names (none when given by ID). */
function nameFor(img: ImageRecord, ref: string): string[] {
  const n = pickName(img.names, ref);
  return n === undefined ? [] : [n];
}


/** `before` runs per image ahead of copyImage (a registry push uploads layers in parallel there). */
async function copyAll(
  ctx: EngineContext,
  imgs: { img: ImageRecord; names: string[] }[],
  dest: ImageDestination,
  destName: string,
  before?: (src: SourceImage, what: string) => Promise<void>,
): Promise<void> {
  try {
    const src = await StorageReference.forImages(ctx.store, imgs.map((i) => i.img)).newSource();
    try {
      const sources = await src.images();
      for (const [i, s] of sources.entries()) {
        const what = `${imgs[i]!.names[0] ?? imgs[i]!.img.id.slice(0, 12)} → ${destName}`;
        if (before) await before(s, what).catch((e: unknown) => Promise.reject(withContext(e, what)));
        await copyImage(s, dest, imgs[i]!.names, what);
      }
    } finally {
      await src.close();
    }
    await dest.commit();
  } catch (e) {
    await dest.abort().catch(() => undefined);
    throw e;
  }
}

export async function saveImages(ctx: EngineContext, opts: SaveOptions): Promise<void> {
  if (opts.images.length === 0) throw new KilnError('E_INVALID_ARGUMENT', 'save: at least one image must be given');
  if (opts.format === 'docker-dir' && opts.images.length > 1) throw new KilnError('E_INVALID_ARGUMENT', 'save: --format docker-dir holds one image only');
  const imgs = opts.images.map((r) => {
    const img = ctx.store.images.resolve(r);
    return { img, names: nameFor(img, r) };
  });
  const destRef = saveReference(opts.format, opts.output);
  await copyAll(ctx, imgs, await destRef.newDestination(), destRef.toString());
}

export interface PushOptions {
  image: string;
  destination: string;
  /** Connection settings and progress output for a `docker://` destination. */
  registry?: RegistryOptions;
  /** Sign the pushed manifest (docker:// only): --sign-by-sigstore-private-key and its passphrase. */
  sign?: SignOptions;
}

/**
 * Pushes one stored image. To a registry (`docker://`), layers the registry lacks are mounted
 * from another repository of it that the image is named in, else uploaded PARALLEL_BLOBS at a
 * time, then the config, then the manifest (the image appears only then); progress lines go to
 * `opts.registry.log`.
 */
export async function pushImage(ctx: EngineContext, opts: PushOptions): Promise<void> {
  const img = ctx.store.images.resolve(opts.image);
  const destRef = parseImageReference(opts.destination, opts.registry ? { registry: opts.registry } : {});
  if (destRef.transport === 'kiln-storage') throw new KilnError('E_INVALID_ARGUMENT', `push: ${opts.destination} names the local store; use \`kiln tag\``);
  const names = nameFor(img, opts.image);
  if (destRef.transport !== 'docker') {
    if (opts.sign) throw new KilnError('E_INVALID_ARGUMENT', `push: --sign-by-sigstore-private-key needs a docker:// destination; ${destRef.toString()} cannot store sigstore signatures`);
    await copyAll(ctx, [{ img, names }], await destRef.newDestination(), destRef.toString());
    return;
  }
  // loaded here: save, load and pushes to other transports need neither the registry client
  // (undici) nor the signing code (@sigstore)
  const { copyLayersParallel, mountSources } = require('../registry/parallel') as typeof import('../registry/parallel');
  const signing = opts.sign ? (require('../signature/sign') as typeof import('../signature/sign')) : undefined;
  const log = opts.registry?.log;
  log?.('Getting image source signatures');
  const dockerRef = destRef as DockerReference;
  // the key is decrypted before anything is pushed: a wrong passphrase pushes nothing
  const signer = signing && opts.sign ? signing.loadSigner(opts.sign, dockerRef) : undefined;
  const mountFrom = mountSources(img.names, dockerRef.domain, dockerRef.repo);
  const dest = await (mountFrom.length > 0 ? dockerRef.withOptions({ mountFrom }) : dockerRef).newDestination();
  await copyAll(ctx, [{ img, names }], dest, destRef.toString(), (src, what) => copyLayersParallel(src, dest, what, log));
  log?.('Storing signatures');
  if (signing && signer) {
    const m = (dest as RegistryDestination).pushed[0]!;
    await signing.signPushed(signer, dockerRef, { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length });
  }
}

/**
 * Picks the transport for `kiln load -i PATH` by looking at what PATH holds. An archive is
 * indexed (and, if gzip'd, decompressed) once: the reference's source reuses it.
 */
export async function detectArchive(p: string): Promise<ImageReference> {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch (e) {
    throw new KilnError('E_INVALID_ARGUMENT', `load: cannot read ${p}: ${(e as NodeJS.ErrnoException).code}`);
  }
  if (st.isDirectory()) {
    if (fs.existsSync(path.join(p, 'oci-layout'))) return new OciLayoutReference(p);
    if (fs.existsSync(path.join(p, 'version')) && fs.existsSync(path.join(p, 'manifest.json'))) return new DirReference(p);
    throw new KilnError('E_BAD_ARCHIVE', `load: directory ${p} is neither an OCI layout (no oci-layout file) nor a dir: image (no version file)`);
  }
  const tar = await TarArchive.open(p, p);
  if (tar.lookup('oci-layout')) return new OciArchiveReference(p, undefined, tar);
  if (tar.lookup('manifest.json')) return new DockerArchiveReference(p, {}, tar);
  await tar.close();
  throw new KilnError('E_BAD_ARCHIVE', `load: ${p} is neither an OCI archive (no oci-layout member) nor a docker archive (no manifest.json member)`);
}

export interface LoadOptions {
  /** archive file or directory; '-' is handled by the CLI (stdin is spooled to a temp file) */
  input: string;
}

/** Loads every image of an archive; returns each image's ID and the names the archive gave it. */
export async function loadImages(ctx: EngineContext, opts: LoadOptions): Promise<{ id: string; names: string[] }[]> {
  const ref = await detectArchive(opts.input);
  const src = await ref.newSource();
  const dest = await StorageReference.anyNames(ctx.store).newDestination();
  try {
    const imgs = await src.images();
    if (imgs.length === 0) throw new KilnError('E_BAD_ARCHIVE', `load: ${opts.input} holds no image`);
    for (const [i, img] of imgs.entries()) await copyImage(img, dest, img.names, `image ${i + 1} of ${ref.toString()}`);
    await dest.commit();
    return dest.loaded;
  } catch (e) {
    await dest.abort().catch(() => undefined);
    throw e;
  } finally {
    await src.close();
  }
}
