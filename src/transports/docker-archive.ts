/**
 * `docker-archive:PATH[:NAME[:TAG]]` / `docker-archive:PATH:@N` — the `docker save` / `podman save`
 * format: a tar whose `manifest.json` is [{Config, RepoTags, Layers}], with the config and layer
 * tars as members named there, plus the legacy `repositories` file and per-layer `<id>/` dirs.
 *
 * Source: the archive is indexed in place (tarutil.TarArchive; gzip'd archives go through a temp
 * file), not extracted: GB archives need no extra disk, and only the members of the images asked
 * for are read. Every manifest.json field is validated (E_BAD_ARCHIVE naming archive and member).
 * Each image gets a Docker schema2 manifest (JSON.stringify, containers/image's field order):
 * config = sha256 of the config member; layers = sha256 and size of each layer member, typed
 * `…diff.tar`, or `…diff.tar.gzip` when the member starts with the gzip magic. (containers/image
 * instead labels every layer `…diff.tar.gzip` with the diffID as digest and decompresses in
 * GetBlob, so its manifest digest differs from ours; layer digests agree.) Members are hashed
 * once (lazily, per image, cached); a layer whose (decompressed) digest differs from the config's
 * rootfs.diff_ids entry, or a config whose `<hex>.json` name differs from its digest, is
 * E_DIGEST_MISMATCH — the only way corruption can be caught, as the digests come from the bytes.
 * With NAME, the image whose RepoTags contain it (normalised); with @N the N-th; else all images.
 *
 * Destination (layerForm 'uncompressed': layer blobs are plain tars whose digests are the diffIDs,
 * which putImage checks against the config): blobs are verified into a hidden staging dir next to
 * PATH; commit() writes, per image, `<hex>.tar` layers and `<hex>.json` config (containers/image's
 * and so podman 4's naming), legacy `<id>/{VERSION,json,layer.tar→../<hex>.tar}`, then
 * manifest.json (one entry per config; RepoTags merged) and `repositories` — deterministically
 * (mode 0444, mtime 0) into PATH.tmp-<rand>, fsync, rename. The members' contents are identical
 * to what `podman save` (4.3) writes for the same image, legacy ids included. RepoTags: the reference's NAME if given,
 * else the image's names, normalised like podman ("foo" → "localhost/foo:latest", image/reference.ts).
 */
import * as fs from 'node:fs';
import { Readable } from 'node:stream';
import { StagingDestination } from './staging';
import { trackTemp } from '../util/cleanup';
import { KilnError } from '../errors';
import { MT, layerCompression, type Descriptor } from '../image/oci';
import { chainIDs, hexOf, isDigest, sha256, type Digest } from '../util/digest';
import { hasExplicitDomain, normalizeName } from '../image/reference';
import { badArchive, checkPutManifest, MAX_JSON, parseJsonMember } from './oci-layout';
import { digestMember, requireParentDir, siblingTemp, TarArchive, writeTarFile, type PackEntry, type TarMember } from './tarutil';
import type { ImageDestination, ImageReference, ImageSource, ManifestBlob, PutImageInput, SourceImage } from './types';

interface Item {
  Config: string;
  RepoTags: string[];
  Layers: string[];
}

function checkManifestJson(v: unknown, where: string): Item[] {
  const bad = (why: string) => badArchive(where, 'manifest.json', why);
  if (!Array.isArray(v)) throw bad('must be a JSON array');
  return v.map((it: unknown, i): Item => {
    if (typeof it !== 'object' || it === null || Array.isArray(it)) throw bad(`item ${i}: not an object`);
    const o = it as Record<string, unknown>;
    if (typeof o['Config'] !== 'string' || o['Config'] === '') throw bad(`item ${i}: Config must be a non-empty string`);
    const tags = o['RepoTags'] ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) throw bad(`item ${i}: RepoTags must be an array of strings or null`);
    const layers = o['Layers'];
    if (!Array.isArray(layers) || layers.some((l) => typeof l !== 'string' || l === '')) throw bad(`item ${i}: Layers must be an array of non-empty strings`);
    if (o['Parent'] !== undefined && typeof o['Parent'] !== 'string') throw bad(`item ${i}: Parent must be a string`);
    if (o['LayerSources'] !== undefined && (typeof o['LayerSources'] !== 'object' || o['LayerSources'] === null)) throw bad(`item ${i}: LayerSources must be an object`);
    return { Config: o['Config'], RepoTags: tags as string[], Layers: layers as string[] };
  });
}

/** The digest a member name promises ("<hex>.json", "<hex>.tar", "blobs/sha256/<hex>"), if any. */
function nameDigest(name: string): Digest | undefined {
  const m = /^(?:blobs\/sha256\/)?([a-f0-9]{64})(?:\.json|\.tar)?$/.exec(name);
  return m ? `sha256:${m[1]}` : undefined;
}

type Hashed = Awaited<ReturnType<typeof digestMember>>;

class ArchiveImage implements SourceImage {
  private built: Promise<{ manifest: ManifestBlob; config: Buffer; layers: Map<Digest, TarMember> }> | undefined;
  constructor(
    private readonly archive: TarArchive,
    private readonly item: Item,
    private readonly ordinal: number,
    private readonly hashOf: (m: TarMember) => Promise<Hashed>,
  ) {}
  get names(): string[] {
    return this.item.RepoTags;
  }

  private member(name: string): TarMember {
    const m = this.archive.lookup(name);
    if (m === undefined) throw badArchive(this.archive.where, name, `missing from the archive (named by manifest.json item ${this.ordinal})`);
    return m;
  }

  private async build() {
    const where = this.archive.where;
    const { Config, Layers } = this.item;
    const config = await this.archive.read(this.member(Config), MAX_JSON);
    const configDigest = sha256(config);
    const promised = nameDigest(Config);
    if (promised !== undefined && promised !== configDigest) {
      throw new KilnError('E_DIGEST_MISMATCH', `${where}: ${Config}: content digest is ${configDigest}, not the ${promised} its name says`);
    }
    const cfg = parseJsonMember(config, where, Config) as { rootfs?: { diff_ids?: unknown } } | null;
    const diffIDs = cfg?.rootfs?.diff_ids;
    if (!Array.isArray(diffIDs) || !diffIDs.every(isDigest)) throw badArchive(where, Config, 'rootfs.diff_ids must be an array of sha256 digests');
    if (diffIDs.length !== Layers.length) {
      throw badArchive(where, 'manifest.json', `item ${this.ordinal}: ${Layers.length} layers, but ${Config} lists ${diffIDs.length} diff_ids`);
    }
    const layers = new Map<Digest, TarMember>();
    const descs: Descriptor[] = [];
    for (const [i, name] of Layers.entries()) {
      const m = this.member(name);
      const h = await this.hashOf(m);
      if (h.zstd) throw new KilnError('E_UNSUPPORTED', `${where}: ${name}: zstd-compressed layers are not supported in docker archives`);
      const diffID = h.uncompressedDigest ?? h.digest;
      if (diffID !== diffIDs[i]) {
        throw new KilnError('E_DIGEST_MISMATCH', `${where}: ${name}: layer ${i} has diffID ${diffID}, but ${Config} says ${diffIDs[i]}`);
      }
      layers.set(h.digest, m);
      descs.push({ mediaType: h.gzip ? MT.dockerLayerGzip : MT.dockerLayer, size: h.size, digest: h.digest });
    }
    const obj = {
      schemaVersion: 2,
      mediaType: MT.dockerManifest,
      config: { mediaType: MT.dockerConfig, size: config.length, digest: configDigest },
      layers: descs,
    };
    const bytes = Buffer.from(JSON.stringify(obj));
    return { manifest: { bytes, mediaType: MT.dockerManifest, digest: sha256(bytes) }, config, layers };
  }

  private data() {
    this.built ??= this.build();
    return this.built;
  }
  async manifest(): Promise<ManifestBlob> {
    return (await this.data()).manifest;
  }
  async getBlob(desc: Descriptor): Promise<Readable> {
    const d = await this.data();
    if (desc.digest === d.manifest.digest) return Readable.from([d.manifest.bytes]);
    if (desc.digest === sha256(d.config)) return Readable.from([d.config]);
    const m = d.layers.get(desc.digest);
    if (m === undefined) throw new KilnError('E_BLOB_UNKNOWN', `${this.archive.where}: no blob ${desc.digest} in image ${this.ordinal}`);
    return this.archive.stream(m);
  }
}

class DockerArchiveSource implements ImageSource {
  private readonly hashes = new Map<string, Promise<Hashed>>();
  constructor(private readonly archive: TarArchive, private readonly sel: { name?: string; index?: number }) {}

  async images(): Promise<SourceImage[]> {
    const where = this.archive.where;
    const mj = this.archive.lookup('manifest.json');
    if (mj === undefined) throw badArchive(where, 'manifest.json', 'missing (legacy archives without manifest.json are not supported)');
    const items = checkManifestJson(parseJsonMember(await this.archive.read(mj, MAX_JSON), where, 'manifest.json'), where);
    const hashOf = (m: TarMember) => {
      let p = this.hashes.get(m.name);
      if (p === undefined) this.hashes.set(m.name, (p = digestMember(this.archive, m)));
      return p;
    };
    const all = items.map((it, i) => new ArchiveImage(this.archive, it, i, hashOf));
    const { name, index } = this.sel;
    if (index !== undefined) {
      if (index >= all.length) throw new KilnError('E_IMAGE_UNKNOWN', `${where}: no image @${index}: the archive has ${all.length}`);
      return [all[index]!];
    }
    if (name === undefined) return all;
    const want = normalizeName(name);
    const norm = (t: string) => {
      try {
        return normalizeName(t);
      } catch {
        return t;
      }
    };
    // Exact (normalised) match first; a short name also matches any registry's ("foo:1" ~ docker.io/library/foo:1).
    const suffix = hasExplicitDomain(name) ? undefined : `/${want.slice('localhost/'.length)}`;
    const hit =
      all.find((img) => img.names.some((t) => norm(t) === want)) ??
      (suffix === undefined ? undefined : all.find((img) => img.names.some((t) => norm(t).endsWith(suffix))));
    if (hit === undefined) {
      const have = items.flatMap((it) => it.RepoTags);
      throw new KilnError('E_IMAGE_UNKNOWN', `${where}: no image tagged ${want} in the archive (available: ${have.join(', ') || 'none'})`);
    }
    return [hit];
  }

  close(): Promise<void> {
    return this.archive.close();
  }
}

/** Go's json.Marshal: sorted top-level keys, compact, and <, >, &, U+2028/9 escaped. */
function goJson(o: Record<string, unknown>): string {
  const sorted = Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return JSON.stringify(sorted).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Legacy per-layer ids and `json` files, computed as containers/image's writeLegacyMetadata does. */
function legacyLayers(layers: Digest[], config: Record<string, unknown>): { id: string; json: string }[] {
  const out: { id: string; json: string }[] = [];
  const chains = chainIDs(layers);
  layers.forEach((_, i) => {
    const lc: Record<string, unknown> = {};
    if (i > 0) lc['parent'] = out[i - 1]!.id;
    if (i === layers.length - 1) {
      for (const k of ['architecture', 'config', 'container', 'container_config', 'created', 'docker_version', 'os']) lc[k] = config[k] ?? null;
    }
    const id = hexOf(sha256(goJson({ ...lc, layer_id: chains[i] })));
    out.push({ id, json: goJson({ ...lc, id }) });
  });
  return out;
}

interface PendingImage {
  config: Digest;
  layers: Digest[];
  repoTags: string[];
  legacy: { id: string; json: string }[];
}

class DockerArchiveDestination extends StagingDestination implements ImageDestination {
  readonly layerForm = 'uncompressed' as const;
  readonly manifestFormat = 'any' as const;
  private readonly images: PendingImage[] = [];
  constructor(private readonly file: string, private readonly name: string | undefined, private readonly where: string, private readonly staging: string) {
    super(staging, where);
  }

  async putImage(img: PutImageInput): Promise<void> {
    const m = checkPutManifest(img.manifest, this.where);
    for (const d of [m.config, ...m.layers]) {
      if (!this.staged.has(d.digest)) throw new KilnError('E_BLOB_UNKNOWN', `${this.where}: blob ${d.digest} of manifest ${img.manifest.digest} was not stored`);
    }
    for (const l of m.layers) {
      if (layerCompression(l.mediaType) !== 'none') throw new KilnError('E_INVALID_ARGUMENT', `${this.where}: docker archives store uncompressed layers; got ${l.mediaType} for ${l.digest}`);
    }
    const config = await fs.promises.readFile(this.staged.path(m.config.digest));
    let cfg: Record<string, unknown> & { rootfs?: { diff_ids?: unknown } };
    try {
      cfg = JSON.parse(config.toString('utf8'));
    } catch (e) {
      throw new KilnError('E_BAD_MANIFEST', `${this.where}: config ${m.config.digest}: invalid JSON: ${(e as Error).message}`);
    }
    const layers = m.layers.map((l) => l.digest);
    const diffIDs = cfg.rootfs?.diff_ids;
    if (!Array.isArray(diffIDs) || diffIDs.length !== layers.length || diffIDs.some((d, i) => d !== layers[i])) {
      throw new KilnError('E_BAD_MANIFEST', `${this.where}: layer digests of ${img.manifest.digest} are not the config's rootfs.diff_ids (docker archives need uncompressed layers)`);
    }
    const repoTags = this.name !== undefined ? [this.name] : img.names.map(normalizeName);
    const same = this.images.find((p) => p.config === m.config.digest);
    if (same) {
      for (const t of repoTags) if (!same.repoTags.includes(t)) same.repoTags.push(t);
      return;
    }
    this.images.push({ config: m.config.digest, layers, repoTags: [...new Set(repoTags)], legacy: legacyLayers(layers, cfg) });
  }

  async commit(): Promise<void> {
    try {
      const entries: PackEntry[] = [];
      const sent = new Set<string>();
      const file = (name: string, source: { file: string } | { data: Buffer }) => {
        if (!sent.has(name)) entries.push({ name, type: 'file', mode: 0o444, ...source });
        sent.add(name);
      };
      const repositories: Record<string, Record<string, string>> = {};
      for (const img of this.images) {
        for (const l of img.layers) file(`${hexOf(l)}.tar`, { file: this.staged.path(l) });
        file(`${hexOf(img.config)}.json`, { file: this.staged.path(img.config) });
        img.legacy.forEach(({ id, json }, i) => {
          if (sent.has(`${id}/VERSION`)) return;
          entries.push({ name: `${id}/layer.tar`, type: 'symlink', linkname: `../${hexOf(img.layers[i]!)}.tar` });
          file(`${id}/VERSION`, { data: Buffer.from('1.0') });
          file(`${id}/json`, { data: Buffer.from(json) });
        });
        const top = img.legacy[img.legacy.length - 1];
        for (const t of top ? img.repoTags : []) {
          const c = t.lastIndexOf(':');
          (repositories[t.slice(0, c)] ??= {})[t.slice(c + 1)] = top!.id;
        }
      }
      const manifest = this.images.map((i) => ({ Config: `${hexOf(i.config)}.json`, RepoTags: i.repoTags, Layers: i.layers.map((l) => `${hexOf(l)}.tar`) }));
      const repoSorted = Object.fromEntries(Object.entries(repositories).sort(([a], [b]) => (a < b ? -1 : 1)));
      file('manifest.json', { data: Buffer.from(JSON.stringify(manifest)) });
      file('repositories', { data: Buffer.from(JSON.stringify(repoSorted)) });
      await writeTarFile(this.file, entries);
    } catch (e) {
      throw e instanceof KilnError ? e : new KilnError('E_TRANSPORT', `${this.where}: ${(e as Error).message}`, { cause: e });
    } finally {
      await fs.promises.rm(this.staging, { recursive: true, force: true });
    }
  }

  async abort(): Promise<void> {
    await fs.promises.rm(this.staging, { recursive: true, force: true });
  }
}

/**
 * `docker-archive:PATH[:NAME[:TAG]]` or `docker-archive:PATH:@N`. `name` is normalised (what a
 * destination writes as RepoTags); reading matches RepoTags by `givenName` (see the source).
 */
export class DockerArchiveReference implements ImageReference {
  readonly transport = 'docker-archive' as const;
  readonly name: string | undefined;
  readonly index: number | undefined;
  private readonly givenName: string | undefined;
  /** `opened`: the archive already indexed by the caller (load's detection), used by the first newSource(). */
  constructor(readonly file: string, sel: { name?: string; index?: number } = {}, private opened?: TarArchive) {
    this.name = sel.name === undefined ? undefined : normalizeName(sel.name);
    this.givenName = sel.name;
    this.index = sel.index;
  }
  toString(): string {
    const sel = this.name !== undefined ? `:${this.name}` : this.index !== undefined ? `:@${this.index}` : '';
    return `docker-archive:${this.file}${sel}`;
  }
  async newSource(): Promise<ImageSource> {
    const sel = this.givenName !== undefined ? { name: this.givenName } : this.index !== undefined ? { index: this.index } : {};
    const tar = this.opened ?? (await TarArchive.open(this.file, this.toString()));
    this.opened = undefined;
    return new DockerArchiveSource(tar, sel);
  }
  async newDestination(): Promise<ImageDestination> {
    if (this.index !== undefined) throw new KilnError('E_INVALID_REFERENCE', `${this.toString()}: an @index can only be used to read from an archive`);
    const st = await fs.promises.stat(this.file).catch(() => undefined);
    if (st?.isDirectory()) throw new KilnError('E_TRANSPORT', `${this.toString()}: ${this.file} is a directory`);
    await requireParentDir(this.file, this.toString());
    const staging = siblingTemp(this.file, 'staging');
    trackTemp(staging);
    await fs.promises.mkdir(staging);
    return new DockerArchiveDestination(this.file, this.name, this.toString(), staging);
  }
}
