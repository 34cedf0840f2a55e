/**
 * The typed form of a Containerfile: the contract between the three pure front-end passes
 * (parse.ts: text → RawInstruction with line ranges; instructions.ts: → Instruction, a tagged
 * union; stages.ts: → BuildPlan, an immutable stage DAG) and the executor. Nothing here does I/O.
 *
 * Words are kept unexpanded (`$VAR` as written): which variables are in scope depends on the
 * base image's ENV, known only when the executor runs the stage. The executor expands them
 * with expand.ts, for exactly the instructions the Dockerfile reference lists. Unexpanded words
 * keep their quotes and escapes (ENV `B="two words"` has the value `"two words"`): expandWord
 * removes them, also where there is no variable.
 */

/** Where an instruction came from; `line`/`endLine` are 1-based and inclusive. */
export interface Loc {
  file: string;
  line: number;
  endLine: number;
}

/** A here-document: `<<EOF` (expand = true), `<<'EOF'`/`<<"EOF"` (expand = false), `<<-EOF` (chomp = leading tabs removed). */
export interface Heredoc {
  name: string;
  /** the body, ending in "\n" unless empty; leading tabs already removed when chomp */
  content: string;
  expand: boolean;
  chomp: boolean;
}

export type CommandForm =
  /** JSON array form: run as is, no shell, no expansion */
  | { form: 'exec'; args: string[] }
  /**
   * shell form: `script` runs as SHELL + [script]. With heredocs, `script` is the command line
   * followed by the heredoc bodies and terminators, exactly as a shell would read them, except
   * when the command is a lone `<<EOF`: then `script` is the heredoc's body itself.
   */
  | { form: 'shell'; script: string; heredocs: Heredoc[] };

export type RunMount =
  | { type: 'bind'; target: string; source?: string; from?: string; fromResolved?: StageBase; rw: boolean }
  /** `id` absent = the target (BuildKit's default); mode/uid/gid absent = 0755, 0, 0 */
  | { type: 'cache'; target: string; id?: string; source?: string; from?: string; fromResolved?: StageBase; sharing: 'shared' | 'private' | 'locked'; mode?: number; uid?: number; gid?: number; readonly: boolean }
  | { type: 'tmpfs'; target: string; size?: number }
  | { type: 'secret'; id: string; target?: string; env?: string; required: boolean; mode: number; uid: number; gid: number };

export interface KeyValue {
  key: string;
  value: string;
}

export interface HealthcheckSpec {
  /** ["NONE"] disables; else ["CMD", ...args] or ["CMD-SHELL", script] as Docker stores it */
  test: string[];
  /** durations in nanoseconds, as in the image config; absent = not given */
  interval?: number;
  timeout?: number;
  startPeriod?: number;
  startInterval?: number;
  retries?: number;
}

interface Base {
  loc: Loc;
  /** the instruction's source text (continuation lines joined), for history and errors */
  original: string;
}

export interface CopySpec extends Base {
  kind: 'COPY' | 'ADD';
  /** source words, unexpanded; a heredoc source appears as its name in `heredocs` instead */
  sources: string[];
  heredocs: Heredoc[];
  dest: string;
  /** --from value as written (stage name, stage index or image reference), unexpanded */
  from?: string;
  /**
   * What --from (or a mount's from=) refers to, resolved by planBuild after expanding it with
   * the global ARGs; absent without --from and in instructions parsed outside a plan (ONBUILD
   * triggers of a base image).
   */
  fromResolved?: StageBase;
  chown?: string;
  chmod?: string;
  link: boolean;
  parents: boolean;
  excludes: string[];
  /** ADD only */
  checksum?: string;
  keepGitDir?: boolean;
}

export type Instruction =
  | (Base & { kind: 'RUN'; command: CommandForm; mounts: RunMount[]; network: 'default' | 'none' | 'host'; security?: 'sandbox' | 'insecure' })
  | (Base & { kind: 'CMD' | 'ENTRYPOINT'; command: CommandForm })
  | (Base & { kind: 'ENV'; pairs: KeyValue[] })
  | (Base & { kind: 'ARG'; args: { name: string; default?: string }[] })
  | (Base & { kind: 'LABEL'; pairs: KeyValue[] })
  | (Base & { kind: 'EXPOSE'; ports: string[] })
  | (Base & { kind: 'VOLUME'; paths: string[] })
  | (Base & { kind: 'USER'; user: string })
  | (Base & { kind: 'WORKDIR'; path: string })
  | (Base & { kind: 'SHELL'; shell: string[] })
  | (Base & { kind: 'STOPSIGNAL'; signal: string })
  | (Base & { kind: 'HEALTHCHECK'; healthcheck: HealthcheckSpec })
  /** trigger: the instruction text after ONBUILD, stored as-is in the image config's OnBuild */
  | (Base & { kind: 'ONBUILD'; trigger: string })
  | (Base & { kind: 'MAINTAINER'; name: string })
  | CopySpec;

export type StageBase =
  | { kind: 'scratch' }
  /** an earlier stage of this Containerfile */
  | { kind: 'stage'; index: number }
  /** an image reference, ARGs already expanded */
  | { kind: 'image'; ref: string };

export interface Stage {
  index: number;
  /** the `AS name`, lower-cased */
  name?: string;
  loc: Loc;
  base: StageBase;
  /** --platform, expanded */
  platform?: string;
  instructions: Instruction[];
  /**
   * Stages this one needs before it can run (its base, COPY --from, RUN --mount from=),
   * as indexes, sorted, without duplicates.
   */
  deps: number[];
  /** image references (not stages) used by COPY --from / --mount from=, expanded */
  imageDeps: string[];
}

export interface BuildPlan {
  /** `# syntax=` value if present (recorded, not acted on) */
  syntax?: string;
  escape: '\\' | '`';
  /** ARGs declared before the first FROM, with their effective values (build args applied) */
  globalArgs: Record<string, string>;
  stages: Stage[];
  /** index of the stage that is the result (--target or the last) */
  target: number;
  /** stages needed for target, in an order where deps come first */
  needed: number[];
  /** --build-arg names that no ARG in a needed stage or the global scope declared (a warning in docker; listed for the caller) */
  unusedBuildArgs: string[];
}

export interface PlanOptions {
  /** --build-arg and --build-arg-file values; a value of undefined means "take it from the environment" was already resolved by the caller */
  buildArgs: Record<string, string>;
  target?: string;
  /** values of the predefined platform ARGs (TARGETPLATFORM, TARGETOS, TARGETARCH, TARGETVARIANT, BUILDPLATFORM, BUILDOS, BUILDARCH, BUILDVARIANT) */
  platformArgs: Record<string, string>;
}
