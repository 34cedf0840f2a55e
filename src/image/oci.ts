/**
 * OCI image-spec and Docker schema2 shapes kiln reads and writes, and their media types.
 * Manifests and configs are stored as the exact bytes received; these types describe what is
 * parsed out of them, never what is re-serialised (re-serialising would change digests).
 */
import type { Digest } from '../util/digest';

export const MT = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayer: 'application/vnd.oci.image.layer.v1.tar',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociLayerZstd: 'application/vnd.oci.image.layer.v1.tar+zstd',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayer: 'application/vnd.docker.image.rootfs.diff.tar',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

export type Compression = 'none' | 'gzip' | 'zstd';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: { architecture: string; os: string; variant?: string };
}

export interface Manifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface Index {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
  annotations?: Record<string, string>;
}

export interface HistoryEntry {
  created?: string;
  created_by?: string;
  author?: string;
  comment?: string;
  empty_layer?: boolean;
}

export interface ImageConfig {
  created?: string;
  author?: string;
  architecture: string;
  os: string;
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    /** Docker format only (dropped from OCI configs, as buildah does) */
    Healthcheck?: { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; StartInterval?: number; Retries?: number };
    OnBuild?: string[] | null;
    Shell?: string[];
  };
  rootfs: { type: 'layers'; diff_ids: Digest[] };
  history?: HistoryEntry[];
}

export const REF_NAME_ANNOTATION = 'org.opencontainers.image.ref.name';

/** Layer compression implied by a layer media type; undefined for non-layer types. */
export function layerCompression(mediaType: string): Compression | undefined {
  switch (mediaType) {
    case MT.ociLayer:
    case MT.dockerLayer:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar':
      return 'none';
    case MT.ociLayerGzip:
    case MT.dockerLayerGzip:
    case 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip':
      return 'gzip';
    case MT.ociLayerZstd:
      return 'zstd';
    default:
      return undefined;
  }
}

export function isIndexMediaType(mt: string | undefined): boolean {
  return mt === MT.ociIndex || mt === MT.dockerManifestList;
}
