/**
 * `--progress=plain`: buildah's line format. `STEP n/m: INSTR` (with a `[stage/stages] `
 * prefix in multi-stage builds), `--> Using cache <id>` for cached steps, RUN output passed
 * through byte for byte with no prefix, and `message` events as lines of their own.
 *
 * Output and line atomicity: while a step is the only one running its output is written as it
 * comes (partial lines too, so prompts and progress bars show). While several steps run at
 * once, each step's output is held back up to its last newline so lines from different steps
 * never mix within a line; a step's unfinished last line is written, with a newline, when the
 * step ends. Any line the renderer prints itself first ends an unfinished output line.
 */
import type { Progress, ProgressEvent, StepInfo } from './progress';

export class PlainProgress implements Progress {
  /** steps started and not ended, by "stage/step" */
  private readonly active = new Set<string>();
  /** steps whose STEP line was printed */
  private readonly headed = new Set<string>();
  /** output held back: bytes after a step's last newline, while steps run in parallel */
  private readonly pending = new Map<string, Buffer>();
  /** the step whose unterminated output line is on screen, if any */
  private openLine: string | null = null;
  private closed = false;

  constructor(private readonly out: NodeJS.WritableStream, private readonly opts: { verbose: boolean }) {}

  event(e: ProgressEvent): void {
    if (this.closed) return;
    switch (e.type) {
      case 'step-start':
        this.header(e);
        this.active.add(key(e));
        break;
      case 'step-cached':
        this.header(e);
        this.endStep(key(e));
        this.line(e.id ? `--> Using cache ${e.id}` : '--> Using cache');
        break;
      case 'step-done':
      case 'step-error':
        // the error itself is reported by the caller, once
        this.endStep(key(e));
        break;
      case 'output':
        this.output(key(e), e.data);
        break;
      case 'message':
        this.line(e.text);
        break;
      case 'cache-miss-reason':
        if (this.opts.verbose) this.line(`--> Cache miss: ${e.reason}`);
        break;
    }
  }

  close(): void {
    if (this.closed) return;
    for (const k of [...this.pending.keys()]) this.endStep(k);
    this.endOpenLine();
    this.closed = true;
  }

  private header(e: StepInfo): void {
    const k = key(e);
    if (this.headed.has(k)) return;
    this.headed.add(k);
    const prefix = (e.stages ?? 1) > 1 ? `[${e.stage}/${e.stages}] ` : '';
    this.line(`${prefix}STEP ${e.step}/${e.steps}: ${e.text}`);
  }

  private output(k: string, data: Buffer): void {
    if (data.length === 0) return;
    const alone = [...this.active].every((a) => a === k);
    const held = this.pending.get(k);
    if (alone && (this.openLine === null || this.openLine === k)) {
      this.pending.delete(k);
      const all = held ? Buffer.concat([held, data]) : data;
      this.out.write(all);
      this.openLine = all[all.length - 1] === 0x0a ? null : k;
      return;
    }
    const buf = held ? Buffer.concat([held, data]) : data;
    const nl = buf.lastIndexOf(0x0a);
    if (nl < 0) {
      this.pending.set(k, buf);
      return;
    }
    // Another step's unfinished line is on screen (it ran alone until now): end it first.
    if (this.openLine !== k) this.endOpenLine();
    this.out.write(buf.subarray(0, nl + 1));
    this.openLine = null;
    if (nl + 1 < buf.length) this.pending.set(k, buf.subarray(nl + 1));
    else this.pending.delete(k);
  }

  /** The step ended: its held-back partial line is written and terminated. */
  private endStep(k: string): void {
    this.active.delete(k);
    const held = this.pending.get(k);
    this.pending.delete(k);
    if (held) {
      if (this.openLine !== k) this.endOpenLine();
      this.out.write(Buffer.concat([held, Buffer.from('\n')]));
      this.openLine = null;
    } else if (this.openLine === k) {
      this.endOpenLine();
    }
  }

  private endOpenLine(): void {
    if (this.openLine === null) return;
    this.out.write('\n');
    this.openLine = null;
  }

  private line(text: string): void {
    this.endOpenLine();
    this.out.write(text + '\n');
  }
}

function key(e: { stage: number; step: number }): string {
  return `${e.stage}/${e.step}`;
}
