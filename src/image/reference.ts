/**
 * Image names as podman writes them: [domain/]path[:tag][@digest]. A name without a domain is
 * normalised to "localhost/<path>" when it is created (import, tag, load without a domain), and
 * "docker.io/x" to "docker.io/library/x". Lookups of short names also match any stored name
 * whose path ends with it (podman's local short-name resolution).
 */
import { KilnError } from '../errors';

export interface NamedRef {
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
}

const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DOMAIN = /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*(?::[0-9]+)?$|^\[[0-9a-fA-F:]+\](?::[0-9]+)?$/;
const DIGEST = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-fA-F0-9]{32,}$/;

function bad(s: string, why: string): KilnError {
  return new KilnError('E_INVALID_REFERENCE', `invalid image name ${JSON.stringify(s)}: ${why}`, {
    hint: 'names look like [registry/]path[:tag], e.g. localhost/app:1.0',
  });
}

/** Parses a name; `defaultDomain` applies when it has no domain part. Throws E_INVALID_REFERENCE. */
export function parseName(s: string, defaultDomain = 'localhost'): NamedRef {
  if (s.length === 0 || s.length > 255 * 2) throw bad(s, 'empty or too long');
  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw bad(s, `bad digest ${JSON.stringify(digest)}`);
  }
  let tag: string | undefined;
  const lastColon = rest.lastIndexOf(':');
  if (lastColon > rest.lastIndexOf('/')) {
    tag = rest.slice(lastColon + 1);
    rest = rest.slice(0, lastColon);
    if (!TAG.test(tag)) throw bad(s, `bad tag ${JSON.stringify(tag)}`);
  }
  const parts = rest.split('/');
  let domain = defaultDomain;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    if (!DOMAIN.test(first)) throw bad(s, `bad registry ${JSON.stringify(first)}`);
    domain = first;
    parts.shift();
  }
  if (parts.length === 0 || parts.some((p) => !PATH_COMPONENT.test(p))) {
    throw bad(s, 'repository names must be lowercase letters, digits and separators (. _ __ -)');
  }
  if (domain === 'docker.io' && parts.length === 1) parts.unshift('library');
  const ref: NamedRef = { domain, path: parts.join('/') };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

export function repository(r: NamedRef): string {
  return `${r.domain}/${r.path}`;
}

/** "domain/path:tag", with tag defaulting to latest (a digest reference keeps no tag). */
export function formatName(r: NamedRef): string {
  if (r.digest !== undefined && r.tag === undefined) return `${repository(r)}@${r.digest}`;
  return `${repository(r)}:${r.tag ?? 'latest'}`;
}

/** Normalises a user-given name for storing: adds localhost/ and :latest. */
export function normalizeName(s: string): string {
  const r = parseName(s);
  if (r.digest !== undefined) throw bad(s, 'a digest cannot be used as a tag');
  return formatName(r);
}

/** Whether `s` had an explicit domain (so short-name matching must not apply). */
export function hasExplicitDomain(s: string): boolean {
  const slash = s.indexOf('/');
  if (slash < 0) return false;
  const first = s.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/**
 * Which of an image's stored names a user's reference means: the normalised name itself, or,
 * for a reference without a registry, the first name ending in "/path:tag" (podman's short-name
 * match). Undefined when it names none of them (e.g. it is an ID).
 */
export function pickName(names: readonly string[], ref: string): string | undefined {
  let n: string;
  try {
    n = normalizeName(ref);
  } catch {
    return undefined;
  }
  if (names.includes(n)) return n;
  if (hasExplicitDomain(ref)) return undefined;
  const suffix = `/${ref.includes(':') ? ref : `${ref}:latest`}`;
  return names.find((x) => x.endsWith(suffix));
}

/**
 * A name as the store keeps it: "domain/path:tag", or "domain/path@digest" for an image pulled
 * by digest (as podman keeps it: the image is listed as repository, tag <none>, and found by
 * repository@digest).
 */
export function storedName(s: string): string {
  return formatName(parseName(s));
}

/** Whether a stored name carries a tag (RepoTags), not a digest. */
export function isTaggedName(name: string): boolean {
  return !name.includes('@');
}

/** Splits a stored name "domain/path:tag" into repository and tag, as the images table shows them. */
export function splitStoredName(name: string): { repository: string; tag: string } {
  const at = name.indexOf('@');
  if (at >= 0) return { repository: name.slice(0, at), tag: '<none>' };
  const i = name.lastIndexOf(':');
  if (i > name.lastIndexOf('/')) return { repository: name.slice(0, i), tag: name.slice(i + 1) };
  return { repository: name, tag: '<none>' };
}
