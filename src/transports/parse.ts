/**
 * Parses an image reference string into an ImageReference.
 *
 *   oci:DIR[:NAME]              OCI layout directory (NAME = the ref.name annotation)
 *   oci-archive:PATH[:NAME]     tar of an OCI layout
 *   docker-archive:PATH[:REF]   docker save format; REF is NAME[:TAG] or @INDEX (reading only)
 *   dir:PATH                    containers/image directory transport (PATH may contain ':')
 *   containers-storage:REST, kiln-storage:REST → opts.localStore(REST)
 *   docker://NAME               a registry image (transports/docker.ts); NAME without a registry is docker.io
 *   docker-daemon:…             E_UNSUPPORTED
 *   anything else               → opts.localStore(s) (a local image name or ID)
 *
 * Path/name splitting follows containers/image on Linux (oci/internal.SplitPathAndImage and
 * docker/archive.ParseReference): the path ends at the FIRST ':' — paths cannot contain a colon —
 * and everything after it is the name, which may itself contain ':' and '/'
 * ("oci:/a/b:example.com/x:1" → dir "/a/b", name "example.com/x:1"). OCI names must match the
 * image-spec ref.name grammar. An empty path, an invalid name, or a reference with no local
 * store to resolve it is E_INVALID_REFERENCE naming the reference.
 */
import { KilnError } from '../errors';
import { DirReference } from './dir';
import { DockerArchiveReference } from './docker-archive';
import type { RegistryOptions } from './docker';
import { OciArchiveReference } from './oci-archive';
import { OciLayoutReference } from './oci-layout';
import type { ImageReference } from './types';

export interface ParseOptions {
  /** Resolves local-store references (names, IDs, `containers-storage:` references). */
  localStore?: (name: string) => ImageReference;
  /** Connection settings, platform and progress output for `docker://` references. */
  registry?: RegistryOptions;
}

// image-spec annotations.md: ref.name grammar (as containers/image's oci/internal validates it).
const OCI_COMPONENT = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*';
const OCI_REF_NAME = new RegExp(`^${OCI_COMPONENT}(?:/${OCI_COMPONENT})*$`);

function invalid(ref: string, why: string): KilnError {
  return new KilnError('E_INVALID_REFERENCE', `invalid image reference ${JSON.stringify(ref)}: ${why}`);
}

/** Splits "PATH[:NAME]" at the first colon; an empty NAME means none. */
function splitPath(ref: string, rest: string): { path: string; name?: string } {
  const i = rest.indexOf(':');
  const p = i < 0 ? rest : rest.slice(0, i);
  const name = i < 0 ? '' : rest.slice(i + 1);
  if (p === '') throw invalid(ref, 'empty path');
  return name === '' ? { path: p } : { path: p, name };
}

function ociName(ref: string, name: string | undefined): string | undefined {
  if (name !== undefined && !OCI_REF_NAME.test(name)) throw invalid(ref, `${JSON.stringify(name)} is not a valid OCI ref.name`);
  return name;
}

function local(s: string, rest: string, opts: ParseOptions): ImageReference {
  if (!opts.localStore) throw invalid(s, 'not a file transport reference and no local image store is available here');
  if (rest === '') throw invalid(s, 'empty image name');
  return opts.localStore(rest);
}

export function parseImageReference(s: string, opts: ParseOptions = {}): ImageReference {
  if (s.startsWith('docker://')) {
    const name = s.slice('docker://'.length);
    if (name === '') throw invalid(s, 'empty image name');
    // loaded here: the registry client (undici) is not needed by any other transport
    const { DockerReference } = require('./docker') as typeof import('./docker');
    return new DockerReference(name, opts.registry);
  }
  if (s.startsWith('docker-daemon:')) {
    throw new KilnError('E_UNSUPPORTED', `${s}: the docker-daemon: transport is not supported`, {
      hint: 'use docker://, oci:, oci-archive:, docker-archive: or dir: references',
    });
  }
  const colon = s.indexOf(':');
  const transport = colon < 0 ? '' : s.slice(0, colon);
  const rest = s.slice(colon + 1);
  switch (transport) {
    case 'oci': {
      const { path, name } = splitPath(s, rest);
      return new OciLayoutReference(path, ociName(s, name));
    }
    case 'oci-archive': {
      const { path, name } = splitPath(s, rest);
      return new OciArchiveReference(path, ociName(s, name));
    }
    case 'docker-archive': {
      const { path, name } = splitPath(s, rest);
      if (name === undefined) return new DockerArchiveReference(path);
      if (name.startsWith('@')) {
        if (!/^@\d+$/.test(name)) throw invalid(s, `${JSON.stringify(name)} is not an @index`);
        return new DockerArchiveReference(path, { index: Number(name.slice(1)) });
      }
      try {
        return new DockerArchiveReference(path, { name });
      } catch (e) {
        throw invalid(s, e instanceof Error ? e.message : String(e));
      }
    }
    case 'dir':
      if (rest === '') throw invalid(s, 'empty path');
      return new DirReference(rest);
    case 'containers-storage':
    case 'kiln-storage':
      return local(s, rest, opts);
    default:
      return local(s, s, opts);
  }
}
