/**
 * Listing and looking up images: the data behind `kiln images`, `image exists`, `tag`, `untag`.
 * Summaries carry podman's `images --format json` fields (Id, RepoTags, Created in unix seconds …)
 * so templates written for podman work unchanged.
 */
import { KilnError } from '../errors';
import { isTaggedName, normalizeName, splitStoredName } from '../image/reference';
import type { ImageRecord } from '../store/images';
import type { EngineContext } from './context';

export interface ImageSummary {
  Id: string;
  ParentId: string;
  RepoTags: string[];
  RepoDigests: string[];
  Size: number;
  SharedSize: number;
  VirtualSize: number;
  Labels: Record<string, string> | null;
  Containers: number;
  Names: string[];
  Digest: string;
  History: string[];
  Created: number;
  CreatedAt: string;
}

/** "repository@digest" for each repository the image is named in and each manifest it came with. */
export function repoDigests(ctx: EngineContext, img: ImageRecord, digests = ctx.store.images.manifestDigests(img.id)): string[] {
  const repos = new Set(img.names.map((n) => splitStoredName(n).repository));
  return [...repos].flatMap((r) => digests.map((d) => `${r}@${d}`));
}

export function summarize(ctx: EngineContext, img: ImageRecord, containers: number, labels: Record<string, string> | null): ImageSummary {
  const digests = ctx.store.images.manifestDigests(img.id);
  return {
    Id: img.id,
    ParentId: '',
    RepoTags: img.names.filter(isTaggedName),
    RepoDigests: repoDigests(ctx, img, digests),
    Size: img.size,
    SharedSize: 0,
    VirtualSize: img.size,
    Labels: labels,
    Containers: containers,
    Names: img.names,
    // the first manifest it arrived with (a registry's, see transports/storage.ts)
    Digest: digests[0] ?? img.manifestDigest,
    History: img.namesHistory,
    Created: Math.floor(img.created / 1000),
    CreatedAt: new Date(img.created).toISOString().replace('.000Z', 'Z'),
  };
}

export interface ListOptions {
  /** podman's --filter: reference=, dangling=, id=, label=, before=, after=/since= */
  filters?: string[];
  /** podman's --sort: created (default, newest first), id, repository, tag, size */
  sort?: string;
}

export const SORT_KEYS = ['created', 'id', 'repository', 'tag', 'size'] as const;

function matchFilter(ctx: EngineContext, img: ImageRecord, f: string): boolean {
  const eq = f.indexOf('=');
  if (eq < 0) throw new KilnError('E_INVALID_ARGUMENT', `--filter ${JSON.stringify(f)}: want KEY=VALUE`);
  const key = f.slice(0, eq);
  const val = f.slice(eq + 1);
  switch (key) {
    case 'dangling':
      return (img.names.length === 0) === (val === 'true');
    case 'reference': {
      const re = new RegExp(`^${val.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '.')}(:.*)?$`);
      return img.names.some((n) => re.test(n) || re.test(n.replace(/^localhost\//, '')) || re.test(splitStoredName(n).repository.split('/').pop()!));
    }
    case 'id':
      return img.id.startsWith(val.replace(/^sha256:/, ''));
    case 'before':
      return img.created < ctx.store.images.resolve(val).created;
    case 'after':
    case 'since':
      return img.created > ctx.store.images.resolve(val).created;
    case 'label': {
      const labels = readLabels(ctx, img);
      const i = val.indexOf('=');
      return i < 0 ? val in labels : labels[val.slice(0, i)] === val.slice(i + 1);
    }
    default:
      throw new KilnError('E_INVALID_ARGUMENT', `--filter ${JSON.stringify(f)}: unsupported filter ${JSON.stringify(key)}`, {
        hint: 'supported: reference=, dangling=, id=, label=, before=, after=, since='
      });
  }
}

function readLabels(ctx: EngineContext, img: ImageRecord): Record<string, string> {
  const { readConfig } = require('./inspect') as typeof import('./inspect');
  return readConfig(ctx.store, img).config?.Labels ?? {};
}

/** Images matching every filter, newest first unless `sort` says otherwise. */
export function listImages(ctx: EngineContext, opts: ListOptions = {}): ImageRecord[] {
  let imgs = ctx.store.images.list();
  for (const f of opts.filters ?? []) imgs = imgs.filter((i) => matchFilter(ctx, i, f));
  const sort = opts.sort ?? 'created';
  if (!(SORT_KEYS as readonly string[]).includes(sort)) {
    throw new KilnError('E_INVALID_ARGUMENT', `--sort ${JSON.stringify(sort)}: invalid option`, { hint: `use one of ${SORT_KEYS.join(', ')}` });
  }
  return imgs;
}

export function imageExists(ctx: EngineContext, ref: string): boolean {
  return ctx.store.images.find(ref) !== undefined;
}

/** `kiln tag IMAGE NAME...`: every name (normalised) moves to the image. */
export function tagImage(ctx: EngineContext, ref: string, names: string[]): ImageRecord {
  const img = ctx.store.images.resolve(ref);
  const normalized = names.map(normalizeName);
  for (const n of normalized) ctx.store.images.addName(img.id, n);
  return ctx.store.images.get(img.id)!;
}

/** `kiln untag IMAGE [NAME...]`: removes the names, or all names when none are given. */
export function untagImage(ctx: EngineContext, ref: string, names: string[]): string[] {
  const img = ctx.store.images.resolve(ref);
  const targets = names.length === 0 ? img.names : names.map(normalizeName);
  for (const n of targets) {
    if (!ctx.store.images.removeName(img.id, n)) {
      throw new KilnError('E_IMAGE_UNKNOWN', `${n}: tag not known`, { hint: `image ${img.id.slice(0, 12)} has: ${img.names.join(', ') || 'no names'}` });
    }
  }
  return targets;
}
