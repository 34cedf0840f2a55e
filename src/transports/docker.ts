/**
 * `docker://HOST/REPO[:TAG|@DIGEST]` — an image in a registry (OCI distribution-spec).
 *
 * Source: the manifest by tag or digest (verified); an index resolves to the entry for
 * `platform` (default linux/<this machine's GOARCH>, any variant unless one is asked for), else
 * E_IMAGE_UNKNOWN listing the platforms the index has. getBlob streams the blob and fails at the
 * end of the stream if its size or digest is wrong (registry/blobs.ts openBlob).
 *
 * Destination (layerForm 'preserve', any manifest format): hasBlob is a HEAD (remembered); a
 * blob the repository lacks is then mounted from the first of `mountFrom` that holds it, as
 * podman does (a cross-repository mount: no bytes sent), and counts as present. putBlob uploads
 * and checks the digest; putImage PUTs the manifest under the tag (or digest) of the reference.
 * The registry has no transactions: blobs uploaded before a failure stay there unreferenced, and
 * the image becomes visible at the manifest PUT, which comes last. commit()/abort() only release
 * the connection pool.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { pipeline, Readable } from 'node:stream';
import type { BlobProgress, ProgressSink } from '../registry/progress';
import { KilnError } from '../errors';
import { MT, isIndexMediaType, type Descriptor, type Index } from '../image/oci';
import { parseName } from '../image/reference';
import { writeVerifiedTemp } from '../util/blobfile';
import type { Digest } from '../util/digest';
import { goArch } from '../image/platform';
import { RegistryClient, type RegistryHostOptions } from '../registry/client';
import { getManifest, putManifest } from '../registry/manifests';
import { blobExists, mountBlob, openBlob, readSmallBlob, uploadBlob } from '../registry/blobs';
import { checkIndex } from './oci-layout';
import type { ImageDestination, ImageReference, ImageSource, ManifestBlob, PutImageInput, SourceImage } from './types';

export interface PlatformWanted {
  os?: string;
  arch?: string;
  variant?: string;
}

export interface RegistryOptions {
  /**
   * Connection settings per registry host; default: TLS verified, no credentials. `ref` is the
   * repository (`docker.io/library/busybox`, `host:port/ns/repo`) for credential lookup.
   */
  hostOptions?: (host: string, ref: string) => RegistryHostOptions;
  platform?: PlatformWanted;
  /** Receives podman-style progress lines ("Copying blob sha256:…"). */
  log?: (line: string) => void;
  /**
   * Progress bars (a terminal): blob transfers draw a bar each instead of a "Copying blob"
   * line; `log` should then print through the same sink.
   */
  progress?: ProgressSink;
  /**
   * Pushing: repositories on the destination's registry (paths, e.g. "ns/other") that may hold
   * the image's blobs; hasBlob tries a cross-repository mount from each before reporting a blob
   * missing. A failed mount is not an error (the blob is then uploaded).
   */
  mountFrom?: string[];
}

const DEFAULT_HOST: RegistryHostOptions = { tlsVerify: true, insecureHttp: false };

const CONFIG_TYPES = new Set<string>([MT.ociConfig, MT.dockerConfig]);

/** The index entry for the wanted platform (see module comment). */
export function selectPlatform(index: Index, want: PlatformWanted, where: string): Descriptor {
  const osName = want.os ?? 'linux';
  const arch = want.arch ?? goArch();
  const hit = index.manifests.find(
    (d) => d.platform?.os === osName && d.platform.architecture === arch && (want.variant === undefined || d.platform.variant === want.variant),
  );
  if (hit) return hit;
  const have = index.manifests.map((d) => (d.platform ? [d.platform.os, d.platform.architecture, d.platform.variant].filter(Boolean).join('/') : 'unspecified'));
  const wanted = [osName, arch, want.variant].filter(Boolean).join('/');
  throw new KilnError('E_IMAGE_UNKNOWN', `${where}: no image for platform ${wanted} in the manifest list (have: ${have.join(', ') || 'none'})`, {
    hint: 'choose one with --platform OS/ARCH, --os, --arch or --variant',
  });
}

/** `src` piped through the bar's meter; the bar ends with the stream ("done" or "failed"). */
function metered(src: Readable, bar: BlobProgress): Readable {
  pipeline(src, bar.meter, (e) => bar.done(e ? 'failed' : 'done'));
  return bar.meter;
}

/**
 * One image of a registry source. `topLevel` is the manifest the reference named (an index,
 * or the same manifest when there is no index): signatures sign that digest.
 */
export class RegistryImage implements SourceImage {
  constructor(
    readonly client: RegistryClient,
    readonly repo: string,
    private readonly m: ManifestBlob,
    readonly names: string[],
    private readonly log: (line: string) => void,
    readonly topLevel: ManifestBlob,
    private readonly progress?: ProgressSink,
  ) {}
  /** Small blobs already read whole (readSmall), served from memory by getBlob. */
  private readonly small = new Map<Digest, Buffer>();

  async manifest(): Promise<ManifestBlob> {
    return this.m;
  }

  /**
   * A small blob (the config) read whole and verified, and kept: the copy's getBlob of the
   * same blob then does not fetch it again (a pull reads the config before the layers).
   */
  async readSmall(desc: Descriptor, what: string): Promise<Buffer> {
    let b = this.small.get(desc.digest);
    if (b === undefined) {
      b = await readSmallBlob(this.client, this.repo, desc, what);
      this.small.set(desc.digest, b);
    }
    return b;
  }

  async getBlob(desc: Descriptor): Promise<Readable> {
    const kind = CONFIG_TYPES.has(desc.mediaType) ? 'config' : 'blob';
    const kept = this.small.get(desc.digest);
    const open = async () => (kept !== undefined ? Readable.from([kept]) : openBlob(this.client, this.repo, desc, 'size'));
    // SourceImage's contract: the caller verifies the digest (destinations hash what they store)
    if (!this.progress) {
      this.log(`Copying ${kind} ${desc.digest}`);
      return open();
    }
    return metered(await open(), this.progress.blob(kind, desc.digest, desc.size));
  }
}

class RegistrySource implements ImageSource {
  constructor(private readonly ref: DockerReference, private readonly client: RegistryClient) {}
  async images(): Promise<SourceImage[]> {
    const { repo, tag, digest } = this.ref;
    const top = await getManifest(this.client, repo, digest ?? tag);
    let m = top;
    if (isIndexMediaType(m.mediaType)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(m.bytes.toString('utf8'));
      } catch (e) {
        throw new KilnError('E_BAD_MANIFEST', `${this.ref.toString()}: index is not JSON: ${(e as Error).message}`);
      }
      let index: Index;
      try {
        index = checkIndex(parsed, this.ref.toString(), `index ${m.digest}`);
      } catch (e) {
        throw new KilnError('E_BAD_MANIFEST', (e as Error).message, { cause: e, hint: (e as KilnError).hint });
      }
      const d = selectPlatform(index, this.ref.opts.platform ?? {}, this.ref.toString());
      m = await getManifest(this.client, repo, d.digest);
      if (isIndexMediaType(m.mediaType)) throw new KilnError('E_UNSUPPORTED', `${this.ref.toString()}: nested manifest lists are not supported`);
    }
    const names = digest === undefined ? [this.ref.displayName] : [];
    return [new RegistryImage(this.client, repo, m, names, this.ref.opts.log ?? (() => undefined), top, this.ref.opts.progress)];
  }
  close(): Promise<void> {
    return this.client.close();
  }
}

export class RegistryDestination implements ImageDestination {
  /** The manifests PUT so far, in order (push signs them afterwards). */
  readonly pushed: ManifestBlob[] = [];
  readonly layerForm = 'preserve' as const;
  readonly manifestFormat = 'any' as const;
  private readonly known = new Set<string>();

  constructor(private readonly ref: DockerReference, private readonly client: RegistryClient) {}

  async hasBlob(digest: Digest): Promise<boolean> {
    if (this.known.has(digest)) return true;
    const has = (await blobExists(this.client, this.ref.repo, digest)) || (await this.mount(digest));
    if (has) this.known.add(digest);
    return has;
  }

  /** Mounts the blob from the first of opts.mountFrom that has it; false when none does or may. */
  private async mount(digest: Digest): Promise<boolean> {
    for (const from of this.ref.opts.mountFrom ?? []) {
      if (await mountBlob(this.client, this.ref.repo, digest, from).catch(() => false)) return true;
    }
    return false;
  }

  async putBlob(stream: Readable, expected: { digest?: Digest; size?: number; mediaType: string }): Promise<{ digest: Digest; size: number }> {
    const what = `${expected.mediaType} ${expected.digest ?? ''} for ${this.ref.toString()}`;
    const kind = CONFIG_TYPES.has(expected.mediaType) ? 'config' : 'blob';
    const progress = this.ref.opts.progress;
    if (progress && expected.size !== undefined) stream = metered(stream, progress.blob(kind, expected.digest ?? '', expected.size));
    else this.ref.opts.log?.(`Copying ${kind} ${expected.digest ?? ''}`.trimEnd());
    if (expected.digest !== undefined && expected.size !== undefined) {
      await uploadBlob(this.client, this.ref.repo, stream, expected.digest, expected.size, what);
      this.known.add(expected.digest);
      return { digest: expected.digest, size: expected.size };
    }
    // The registry needs the digest up front: spool to a temp file first.
    const dir = fs.mkdtempSync(`${os.tmpdir()}/kiln-push-`);
    try {
      const t = await writeVerifiedTemp(stream, dir, { ...expected, what });
      await uploadBlob(this.client, this.ref.repo, fs.createReadStream(t.tmpPath), t.digest, t.size, what, () => fs.createReadStream(t.tmpPath));
      this.known.add(t.digest);
      return { digest: t.digest, size: t.size };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  async putImage(img: PutImageInput): Promise<void> {
    this.ref.opts.log?.('Writing manifest to image destination');
    const target = this.ref.digest ?? this.ref.tag;
    if (this.ref.digest !== undefined && this.ref.digest !== img.manifest.digest) {
      throw new KilnError('E_DIGEST_MISMATCH', `${this.ref.toString()}: the manifest to push has digest ${img.manifest.digest}, not the one the reference names`);
    }
    await putManifest(this.client, this.ref.repo, target, img.manifest);
    this.pushed.push(img.manifest);
  }

  commit(): Promise<void> {
    return this.client.close();
  }
  abort(): Promise<void> {
    return this.client.close();
  }
}

/** A parsed `docker://` reference; `opts` carries connection settings and the platform wanted. */
export class DockerReference implements ImageReference {
  // types.ts does not list 'docker' yet; the value is what callers compare against.
  readonly transport = 'docker' as const;
  /** the registry as named ("docker.io", "host:port") */
  readonly domain: string;
  readonly repo: string;
  readonly tag: string;
  readonly digest: Digest | undefined;

  /** `name` is the part after `docker://`; a name without a registry means docker.io. */
  constructor(name: string, readonly opts: RegistryOptions = {}) {
    const r = parseName(name, 'docker.io');
    this.domain = r.domain;
    this.repo = r.path;
    this.tag = r.tag ?? 'latest';
    this.digest = r.digest as Digest | undefined;
  }

  /** The host the API is spoken to: Docker Hub's API lives at registry-1.docker.io. */
  get host(): string {
    return this.domain === 'docker.io' ? 'registry-1.docker.io' : this.domain;
  }

  /** The name as stored locally ("docker.io/library/busybox:latest"). */
  get displayName(): string {
    return this.digest !== undefined ? `${this.domain}/${this.repo}@${this.digest}` : `${this.domain}/${this.repo}:${this.tag}`;
  }

  toString(): string {
    return `docker://${this.displayName}`;
  }

  /** The same reference with some options replaced. */
  withOptions(opts: Partial<RegistryOptions>): DockerReference {
    return new DockerReference(this.displayName, { ...this.opts, ...opts });
  }

  /** A client for this reference's registry with its host options; the caller closes it. */
  client(): RegistryClient {
    return new RegistryClient(this.host, (this.opts.hostOptions ?? (() => DEFAULT_HOST))(this.host, `${this.domain}/${this.repo}`));
  }

  async newSource(): Promise<ImageSource> {
    return new RegistrySource(this, this.client());
  }

  async newDestination(): Promise<ImageDestination> {
    return new RegistryDestination(this, this.client());
  }
}
