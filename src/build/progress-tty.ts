/**
 * `--progress=tty`: a live view in the manner of BuildKit's. A header
 * `[+] Building 3.2s (4/9)`, one line per step ` => [builder 2/5] RUN make    1.3s` (time
 * right-aligned; `CACHED`/`ERROR` before the label), the last few output lines of running steps
 * dimmed under them, and `message` events as lines of their own, in order of appearance.
 *
 * The view is redrawn in place (cursor up `ESC[nA`, erase line `ESC[2K`, erase below `ESC[J`)
 * at most once per `interval` ms, and every `interval` ms while a step runs so times advance.
 * Every line is cut to the terminal width; when the view is taller than the terminal only its
 * last rows are drawn. `close()` replaces the live view with the final state, printed once in
 * full, followed by the output of failed steps.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Progress, ProgressEvent, StepInfo } from './progress';

/** Time and timers, injectable so tests need not sleep. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface TtyOptions {
  columns: () => number;
  rows: () => number | undefined;
  color: boolean;
  verbose: boolean;
  clock?: Clock;
  /** output lines shown under a running step (default 6) */
  logLines?: number;
  /** least time between redraws, ms (default 100) */
  interval?: number;
}

interface StepView {
  info: StepInfo;
  status: 'running' | 'done' | 'cached' | 'error';
  start: number;
  ms?: number;
  /** finished output lines, sanitised, the last ERROR_LOG_LINES only */
  logs: string[];
  /** the line being written (after the last newline) */
  partial: string;
  decoder: StringDecoder;
}

type Entry = { step: StepView } | { message: string };

const ERROR_LOG_LINES = 20;

export class TtyProgress implements Progress {
  private readonly clock: Clock;
  private readonly entries: Entry[] = [];
  private readonly steps = new Map<string, StepView>();
  private readonly logLines: number;
  private readonly interval: number;
  /** lines of the live view now on screen, above the cursor */
  private drawn = 0;
  private timer: unknown = null;
  private lastDraw = -Infinity;
  private t0: number | undefined;
  private totalSteps = 0;
  private closed = false;

  constructor(private readonly out: NodeJS.WritableStream, private readonly opts: TtyOptions) {
    this.clock = opts.clock ?? realClock;
    this.logLines = opts.logLines ?? 6;
    this.interval = opts.interval ?? 100;
  }

  event(e: ProgressEvent): void {
    if (this.closed) return;
    const now = this.clock.now();
    this.t0 ??= now;
    switch (e.type) {
      case 'step-start':
        this.view(e, now).status = 'running';
        break;
      case 'step-cached': {
        const v = this.view(e, now);
        v.status = 'cached';
        v.ms = 0;
        break;
      }
      case 'step-done': {
        const v = this.view(e, now);
        this.endOutput(v);
        v.status = 'done';
        v.ms = e.ms;
        break;
      }
      case 'step-error': {
        const v = this.view(e, now);
        this.endOutput(v);
        v.status = 'error';
        v.ms = e.ms ?? now - v.start;
        break;
      }
      case 'output': {
        const v = this.steps.get(`${e.stage}/${e.step}`);
        if (v) this.addOutput(v, v.decoder.write(e.data));
        break;
      }
      case 'message':
        this.entries.push({ message: e.text });
        break;
      case 'cache-miss-reason': {
        const v = this.steps.get(`${e.stage}/${e.step}`);
        if (v && this.opts.verbose) this.pushLog(v, `cache miss: ${e.reason}`);
        break;
      }
    }
    this.schedule();
  }

  /** Redraws the live view now. */
  flush(): void {
    if (this.closed) return;
    this.out.write(this.redraw(this.frame(false)));
    this.lastDraw = this.clock.now();
  }

  /** Prints the final state in full (nothing when nothing was ever shown). */
  close(): void {
    if (this.closed) return;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.closed = true;
    if (this.entries.length === 0 && this.drawn === 0) return;
    for (const v of this.steps.values()) this.endOutput(v);
    let text = this.redraw(this.frame(true));
    for (const v of this.steps.values()) {
      if (v.status !== 'error') continue;
      text += `------\n > ${label(v.info)} ${v.info.text}:\n`;
      for (const l of v.logs) text += l + '\n';
      text += '------\n';
    }
    this.out.write(text);
    this.drawn = 0;
  }

  private schedule(): void {
    if (this.closed || this.timer !== null) return;
    const delay = Math.max(0, this.lastDraw + this.interval - this.clock.now());
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      this.flush();
      if ([...this.steps.values()].some((v) => v.status === 'running')) this.schedule();
    }, delay);
  }

  private view(e: StepInfo, now: number): StepView {
    const k = `${e.stage}/${e.step}`;
    let v = this.steps.get(k);
    if (!v) {
      v = { info: e, status: 'running', start: now, logs: [], partial: '', decoder: new StringDecoder('utf8') };
      this.steps.set(k, v);
      this.entries.push({ step: v });
    } else {
      v.info = e;
    }
    if (e.totalSteps !== undefined) this.totalSteps = Math.max(this.totalSteps, e.totalSteps);
    return v;
  }

  private addOutput(v: StepView, text: string): void {
    const parts = (v.partial + text).split('\n');
    v.partial = parts.pop()!;
    for (const p of parts) this.pushLog(v, p);
  }

  private endOutput(v: StepView): void {
    this.addOutput(v, v.decoder.end());
    if (v.partial !== '') this.pushLog(v, v.partial);
    v.partial = '';
  }

  private pushLog(v: StepView, line: string): void {
    v.logs.push(sanitize(line));
    if (v.logs.length > ERROR_LOG_LINES) v.logs.splice(0, v.logs.length - ERROR_LOG_LINES);
  }

  /** The lines of the view, already cut to the width (colour codes added after cutting). */
  private frame(final: boolean): string[] {
    const now = this.clock.now();
    const width = Math.max(1, this.opts.columns());
    const views = [...this.steps.values()];
    const finished = views.filter((v) => v.status === 'done' || v.status === 'cached').length;
    const total = Math.max(this.totalSteps, views.length);
    const failed = views.some((v) => v.status === 'error');
    const elapsed = this.t0 === undefined ? 0 : now - this.t0;
    const head = `[+] Building ${secs(elapsed)} (${finished}/${total})${final && !failed ? ' FINISHED' : ''}`;
    const lines = [fit(head, '', width)];
    for (const en of this.entries) {
      if ('message' in en) {
        lines.push(fit(sanitize(en.message), '', width));
        continue;
      }
      const v = en.step;
      const tag = v.status === 'cached' ? 'CACHED ' : v.status === 'error' ? 'ERROR ' : '';
      const ms = v.status === 'running' ? now - v.start : v.ms ?? 0;
      const line = fit(` => ${tag}${label(v.info)} ${sanitize(v.info.text)}`, secs(ms), width);
      lines.push(this.paint(line, v.status === 'error' ? '31' : v.status === 'running' ? '' : '34'));
      if (final || v.status !== 'running') continue;
      const logs = v.partial === '' ? v.logs : [...v.logs, sanitize(v.partial)];
      for (const l of logs.slice(-this.logLines)) lines.push(this.paint(fit(` => => # ${l}`, '', width), '2'));
    }
    const rows = final ? undefined : this.opts.rows();
    if (rows !== undefined && rows > 1 && lines.length > rows - 1) {
      // keep the header and the newest lines; one row stays free for the cursor
      return [lines[0]!, ...lines.slice(lines.length - (rows - 2))];
    }
    return lines;
  }

  private paint(s: string, sgr: string): string {
    return this.opts.color && sgr !== '' ? `\x1b[${sgr}m${s}\x1b[0m` : s;
  }

  /** Text that replaces the view on screen with `lines`. */
  private redraw(lines: string[]): string {
    let s = this.drawn > 0 ? `\x1b[${this.drawn}A` : '';
    for (const l of lines) s += `\x1b[2K${l}\n`;
    if (lines.length < this.drawn) s += '\x1b[J';
    this.drawn = lines.length;
    return s;
  }
}

/** `[2/5]`, or `[name 2/5]` / `[stage-1 2/5]` when the build has several stages or names them. */
export function label(e: StepInfo): string {
  const multi = (e.stages ?? 1) > 1 || e.stageName !== undefined || e.stage > 1;
  return multi ? `[${e.stageName ?? `stage-${e.stage - 1}`} ${e.step}/${e.steps}]` : `[${e.step}/${e.steps}]`;
}

function secs(ms: number): string {
  return `${(Math.max(0, ms) / 1000).toFixed(1)}s`;
}

/**
 * What a terminal would show of one output line: the text after the last carriage return
 * (progress bars redraw with \r), escape sequences and other control characters removed,
 * tabs as spaces.
 */
export function sanitize(line: string): string {
  const l = line.endsWith('\r') ? line.slice(0, -1) : line;
  const afterCr = l.slice(l.lastIndexOf('\r') + 1);
  return afterCr
    .replace(/\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]/g, '')
    .replace(/\t/g, ' ')
    .replace(/[\x00-\x1f\x7f-\x9f]/g, '');
}

/** Terminal cells a code point takes: 0 for combining marks, 2 for wide (CJK, emoji), else 1. */
function cells(cp: number, ch: string): number {
  if (/\p{Mn}|\p{Me}|\u200b|\u200d/u.test(ch)) return 0;
  if (
    (cp >= 0x1100 && cp <= 0x115f) || (cp >= 0x2e80 && cp <= 0xa4cf) || (cp >= 0xac00 && cp <= 0xd7a3) ||
    (cp >= 0xf900 && cp <= 0xfaff) || (cp >= 0xfe30 && cp <= 0xfe4f) || (cp >= 0xff00 && cp <= 0xff60) ||
    (cp >= 0xffe0 && cp <= 0xffe6) || (cp >= 0x1f300 && cp <= 0x1faff) || (cp >= 0x20000 && cp <= 0x3fffd)
  ) return 2;
  return 1;
}

/** Terminal cells taken by `s` (no escape sequences in it). */
export function textWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += cells(ch.codePointAt(0)!, ch);
  return w;
}

/** `s` cut to at most `width` cells. */
export function truncate(s: string, width: number): string {
  let w = 0;
  let out = '';
  for (const ch of s) {
    const c = cells(ch.codePointAt(0)!, ch);
    if (w + c > width) break;
    w += c;
    out += ch;
  }
  return out;
}

/**
 * One line of at most `width` cells: `left`, then `right` flush with the right edge after at
 * least one space; `left` is cut to make room, and `right` is dropped when even it does not fit.
 */
export function fit(left: string, right: string, width: number): string {
  if (right === '') return truncate(left, width);
  const rw = textWidth(right);
  if (rw + 2 > width) return truncate(left, width);
  const l = truncate(left, width - rw - 1);
  return l + ' '.repeat(width - textWidth(l) - rw) + right;
}
