/**
 * Per-blob progress bars on a terminal for pull and push, in the shape podman prints them:
 *
 *   Copying blob 3f4d90098f5b [=========>----------] 10.0MiB / 20.0MiB
 *   Copying blob 3f4d90098f5b done
 *   Copying blob 9a1b0c2d3e4f skipped: already exists
 *
 * The renderer owns the bottom lines of the terminal: bars of running transfers are redrawn in
 * place (at most every REDRAW_MS), finished ones and ordinary log lines are printed above them.
 * Without a terminal the caller keeps podman's plain lines instead (CLI decides).
 */
import { Transform, type TransformCallback } from 'node:stream';

const REDRAW_MS = 100;
const WIDTH = 20;

export interface BlobProgress {
  /** counts bytes passing through: pipe the blob's stream through it */
  readonly meter: Transform;
  /** the transfer ended (successfully or not): its line is printed finally */
  done(note?: string): void;
}

export interface ProgressSink {
  /** prints a line above the bars */
  log(line: string): void;
  blob(kind: 'blob' | 'config', digest: string, size: number): BlobProgress;
  /** prints what is left (bars of transfers never finished are dropped) */
  close(): void;
}

export function humanBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v}${units[i]}` : `${v.toFixed(1)}${units[i]}`;
}

/** The bar line for `done` of `size` bytes. */
export function barLine(label: string, done: number, size: number): string {
  const frac = size > 0 ? Math.min(1, done / size) : 0;
  const fill = Math.round(frac * WIDTH);
  const bar = fill >= WIDTH ? '='.repeat(WIDTH) : `${'='.repeat(Math.max(0, fill - 1))}${fill > 0 ? '>' : ''}${'-'.repeat(WIDTH - fill)}`;
  return `${label} [${bar}] ${humanBytes(done)} / ${humanBytes(size)}`;
}

interface Bar {
  label: string;
  size: number;
  done: number;
}

/** A renderer writing ANSI cursor movements to `out` (a TTY). */
export function terminalProgress(out: NodeJS.WritableStream): ProgressSink {
  const bars: Bar[] = [];
  let drawn = 0;
  let timer: NodeJS.Timeout | undefined;

  const erase = (): string => (drawn > 0 ? `\x1b[${drawn}A\x1b[J` : '');
  const draw = (): string => {
    drawn = bars.length;
    return bars.map((b) => `${barLine(b.label, b.done, b.size)}\n`).join('');
  };
  const redraw = () => {
    timer = undefined;
    out.write(erase() + draw());
  };
  const schedule = () => {
    timer ??= setTimeout(redraw, REDRAW_MS);
  };
  const above = (line: string) => {
    out.write(`${erase()}${line}\n${draw()}`);
  };
  return {
    log: above,
    blob(kind, digest, size) {
      const b: Bar = { label: `Copying ${kind} ${digest.replace(/^sha256:/, '').slice(0, 12)}`, size, done: 0 };
      bars.push(b);
      out.write(erase() + draw());
      let finished = false;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, cb: TransformCallback) {
          b.done += chunk.length;
          schedule();
          cb(null, chunk);
        },
      });
      return {
        meter,
        done(note = 'done') {
          if (finished) return;
          finished = true;
          bars.splice(bars.indexOf(b), 1);
          above(`${b.label} ${note}`);
        },
      };
    },
    close() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      bars.length = 0;
      out.write(erase());
      drawn = 0;
    },
  };
}
