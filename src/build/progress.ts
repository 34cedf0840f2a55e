/**
 * Build progress: the events the executor reports and the renderers that turn them into what
 * `kiln build --progress=MODE` prints. Renderers only write to the stream they are given and
 * never throw for odd event orders (a step may end without having started, output may come for
 * a step never announced); the caller must not write to that stream between `event()` calls
 * and `close()` except through `message` events (the tty view redraws over its own lines).
 */
import { StringDecoder } from 'node:string_decoder';
import { KilnError } from '../errors';
import { PlainProgress } from './progress-plain';
import { TtyProgress, type Clock } from './progress-tty';

/**
 * Which step an event is about. `stage` and `step` are 1-based, as printed; `steps` counts the
 * steps of that stage (its FROM included, as buildah counts).
 */
export interface StepInfo {
  stage: number;
  /** stages in the build; plain output prefixes `[stage/stages]` only when this is > 1 */
  stages?: number;
  /** the stage's `AS name`, shown by the tty view instead of `stage-N` */
  stageName?: string;
  step: number;
  steps: number;
  /** 1-based position among all steps of the build, and their count (the tty header's x/y) */
  globalStep?: number;
  totalSteps?: number;
  /** the instruction as the user should see it, e.g. "RUN make" */
  text: string;
}

export type ProgressEvent =
  | ({ type: 'step-start' } & StepInfo)
  /** `id`: the cached layer/image used (printed as `--> Using cache <id>`) */
  | ({ type: 'step-cached'; id?: string } & StepInfo)
  | ({ type: 'step-done'; ms: number } & StepInfo)
  | ({ type: 'step-error'; message: string; ms?: number } & StepInfo)
  /** raw bytes from a RUN; chunk boundaries are arbitrary (mid-line, mid-character) */
  | { type: 'output'; stage: number; step: number; stream: 'stdout' | 'stderr'; data: Buffer }
  /** a line of its own, e.g. "COMMIT name", "--> abc123", "Successfully tagged ..." */
  | { type: 'message'; text: string }
  /** why a step could not use the cache; shown by plain and tty only when verbose */
  | { type: 'cache-miss-reason'; stage: number; step: number; reason: string };

/** A renderer. `close()` flushes what is held back and ends the display; later events are ignored. */
export interface Progress {
  event(e: ProgressEvent): void;
  close(): void;
}

export type ProgressMode = 'auto' | 'tty' | 'plain' | 'json' | 'quiet';
export const PROGRESS_MODES: readonly ProgressMode[] = ['auto', 'tty', 'plain', 'json', 'quiet'];

export interface ProgressOptions {
  /** terminal width for the tty view; default: the stream's `columns`, process.stdout's, or 80 */
  columns?: number;
  /** terminal height; the live view shows only its last rows when taller */
  rows?: number;
  /** time source and timers for the tty view's redraws (tests inject a fake one) */
  clock?: Clock;
  /** show cache-miss reasons in plain and tty output */
  verbose?: boolean;
  /** ANSI colours in the tty view; default: unless NO_COLOR is set */
  color?: boolean;
}

/** Checks a `--progress` value. */
export function parseProgressMode(s: string): ProgressMode {
  if ((PROGRESS_MODES as readonly string[]).includes(s)) return s as ProgressMode;
  throw new KilnError('E_INVALID_ARGUMENT', `--progress: unknown mode "${s}"`, { hint: `use one of ${PROGRESS_MODES.join(', ')}` });
}

/** The renderer for `mode`; 'auto' is the tty view on a terminal, plain lines otherwise. */
export function createProgress(mode: ProgressMode, out: NodeJS.WritableStream, isTTY: boolean, opts: ProgressOptions = {}): Progress {
  switch (mode) {
    case 'auto':
      return createProgress(isTTY ? 'tty' : 'plain', out, isTTY, opts);
    case 'tty': {
      const stream = out as { columns?: number; rows?: number };
      return new TtyProgress(out, {
        columns: () => opts.columns || stream.columns || process.stdout.columns || 80,
        rows: () => opts.rows ?? stream.rows ?? (isTTY ? process.stdout.rows : undefined),
        color: opts.color ?? !process.env['NO_COLOR'],
        verbose: opts.verbose ?? false,
        ...(opts.clock ? { clock: opts.clock } : {}),
      });
    }
    case 'plain':
      return new PlainProgress(out, { verbose: opts.verbose ?? false });
    case 'json':
      return new JsonProgress(out);
    case 'quiet':
      return new QuietProgress();
    default:
      return parseProgressMode(mode as string) as never;
  }
}

/** `-q`: prints nothing; the caller prints the image ID itself. */
export class QuietProgress implements Progress {
  event(): void {}
  close(): void {}
}

/**
 * One JSON object per line per event, fields as in ProgressEvent; output `data` is a UTF-8
 * string (a character split across chunks is carried to the step's next output event, and
 * what is left is sent when the step ends or on close).
 */
export class JsonProgress implements Progress {
  private readonly decoders = new Map<string, StringDecoder>();
  private closed = false;

  constructor(private readonly out: NodeJS.WritableStream) {}

  event(e: ProgressEvent): void {
    if (this.closed) return;
    if (e.type === 'output') {
      const k = `${e.stage}/${e.step}/${e.stream}`;
      let d = this.decoders.get(k);
      if (!d) this.decoders.set(k, (d = new StringDecoder('utf8')));
      const data = d.write(e.data);
      if (data !== '') this.line({ ...e, data });
      return;
    }
    if (e.type === 'step-done' || e.type === 'step-error' || e.type === 'step-cached') {
      for (const stream of ['stdout', 'stderr'] as const) this.endDecoder(e.stage, e.step, stream);
    }
    this.line(e);
  }

  close(): void {
    if (this.closed) return;
    for (const k of [...this.decoders.keys()]) {
      const [stage, step, stream] = k.split('/') as [string, string, 'stdout' | 'stderr'];
      this.endDecoder(Number(stage), Number(step), stream);
    }
    this.closed = true;
  }

  private endDecoder(stage: number, step: number, stream: 'stdout' | 'stderr'): void {
    const k = `${stage}/${step}/${stream}`;
    const d = this.decoders.get(k);
    if (!d) return;
    this.decoders.delete(k);
    const data = d.end();
    if (data !== '') this.line({ type: 'output', stage, step, stream, data });
  }

  private line(o: object): void {
    this.out.write(JSON.stringify(o) + '\n');
  }
}

