/**
 * What every step of a build shares: the store and the lease that keeps this build's layers
 * alive, the cache, the runtime, the build context, secrets, progress and cancellation. Built
 * once by build.ts; steps never open their own store or runtime.
 */
import type { Store } from '../store/store';
import type { Lease } from '../store/lease';
import type { OciRuntime } from '../runtime/types';
import type { BuildCache } from './cache';
import type { ProgressEvent, StepInfo } from './progress';
import type { StageState } from './state';

export interface SecretSource {
  /** a file on the host */
  src?: string;
  /** an environment variable of the kiln process */
  env?: string;
}

/** A finished stage as other stages see it (COPY --from, RUN --mount from=, FROM stage). */
export interface StageResult {
  index: number;
  state: StageState;
}

export interface BuildEnv {
  store: Store;
  lease: Lease;
  cache: BuildCache;
  runtime: () => OciRuntime;
  contextDir: string;
  /** relative path inside the context → ignored by .containerignore */
  ignored?: { ignores(relPath: string, isDir?: boolean): boolean; mayIncludeUnder(relDir: string): boolean };
  secrets: Record<string, SecretSource>;
  /** --ulimit values for RUN */
  ulimits?: { type: string; soft: number; hard: number }[];
  /** the default for RUN --network */
  network: 'host' | 'none';
  /** seconds: no layer entry is newer, created times are this (--timestamp, SOURCE_DATE_EPOCH) */
  timestamp?: number;
  progress(e: ProgressEvent): void;
  signal: AbortSignal;
  /** waits for stage `index` (a declared dependency of the asking stage) */
  stage(index: number): Promise<StageResult>;
  /** the image an external --from/FROM names, from the store (E_IMAGE_UNKNOWN if absent) */
  image(ref: string): StageState;
}

/** One step being run: where it is, for progress and errors. */
export interface StepCtx {
  info: StepInfo;
}

export function createdTime(env: BuildEnv): string {
  return env.timestamp !== undefined ? new Date(env.timestamp * 1000).toISOString() : new Date().toISOString();
}
