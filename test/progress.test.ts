/**
 * src/build/progress*: each renderer fed event sequences, writing to an in-memory stream.
 * Expected plain lines follow buildah's output (`[1/2] STEP 1/3: FROM ...`, `--> Using cache
 * <id>`); the tty view is driven by a fake clock, so no test sleeps.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { KilnError } from '../src/errors';
import { createProgress, parseProgressMode, type ProgressEvent, type StepInfo } from '../src/build/progress';
import { fit, sanitize, textWidth, truncate, TtyProgress, type Clock } from '../src/build/progress-tty';

class Sink extends Writable {
  chunks: Buffer[] = [];
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.chunks.push(Buffer.from(chunk));
    cb();
  }
  get text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** Timers that fire only when the test advances time. */
class FakeClock implements Clock {
  t = 0;
  private timers: { id: number; at: number; fn: () => void }[] = [];
  private nextId = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ id, at: this.t + ms, fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== h);
  }
  get pending(): number {
    return this.timers.length;
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = due.at;
      due.fn();
    }
    this.t = end;
  }
}

const step = (stage: number, stepNo: number, steps: number, text: string, more: Partial<StepInfo> = {}): StepInfo => ({ stage, step: stepNo, steps, text, ...more });
const out = (stage: number, stepNo: number, data: string | Buffer): ProgressEvent => ({ type: 'output', stage, step: stepNo, stream: 'stdout', data: Buffer.isBuffer(data) ? data : Buffer.from(data) });
// eslint-disable-next-line no-control-regex
const stripAnsi = (s: string): string => s.replace(/\x1b\[[0-9;]*[A-Za-z]/g, '');

// ---------------------------------------------------------------- plain

test('plain: single-stage steps are numbered like buildah, cached steps say so, output passes through', () => {
  const sink = new Sink();
  const p = createProgress('plain', sink, false);
  p.event({ type: 'step-start', ...step(1, 1, 3, 'FROM localhost/busybox') });
  p.event({ type: 'step-done', ...step(1, 1, 3, 'FROM localhost/busybox'), ms: 3 });
  p.event({ type: 'step-cached', ...step(1, 2, 3, 'COPY . /app'), id: '8f2a1c' });
  p.event({ type: 'step-start', ...step(1, 3, 3, 'RUN make') });
  p.event(out(1, 3, 'cc -o app app.c\n'));
  p.event(out(1, 3, 'done\n'));
  p.event({ type: 'step-done', ...step(1, 3, 3, 'RUN make'), ms: 1200 });
  p.event({ type: 'message', text: 'COMMIT hello' });
  p.event({ type: 'message', text: '--> 4d5e6f' });
  p.close();
  assert.equal(
    sink.text,
    'STEP 1/3: FROM localhost/busybox\nSTEP 2/3: COPY . /app\n--> Using cache 8f2a1c\nSTEP 3/3: RUN make\ncc -o app app.c\ndone\nCOMMIT hello\n--> 4d5e6f\n',
  );
});

test('plain: multi-stage steps carry [stage/stages]; a step is announced once', () => {
  const sink = new Sink();
  const p = createProgress('auto', sink, false);
  const s1 = step(1, 1, 2, 'FROM busybox AS build', { stages: 2, stageName: 'build' });
  p.event({ type: 'step-start', ...s1 });
  p.event({ type: 'step-cached', ...s1, id: 'aaa' });
  p.event({ type: 'step-start', ...step(2, 2, 2, 'COPY --from=build /x /x', { stages: 2 }) });
  p.close();
  assert.equal(sink.text, '[1/2] STEP 1/2: FROM busybox AS build\n--> Using cache aaa\n[2/2] STEP 2/2: COPY --from=build /x /x\n');
});

test('plain: a lone running step streams partial lines at once; the line is ended when the step ends', () => {
  const sink = new Sink();
  const p = createProgress('plain', sink, false);
  p.event({ type: 'step-start', ...step(1, 2, 2, 'RUN printf') });
  p.event(out(1, 2, 'Continue? '));
  assert.ok(sink.text.endsWith('Continue? '), 'partial output is not held back');
  p.event(out(1, 2, 'yes'));
  p.event({ type: 'step-done', ...step(1, 2, 2, 'RUN printf'), ms: 1 });
  p.event({ type: 'message', text: '--> abc' });
  p.close();
  assert.equal(sink.text, 'STEP 2/2: RUN printf\nContinue? yes\n--> abc\n');
});

test('plain: output of parallel stages stays line-atomic', () => {
  const sink = new Sink();
  const p = createProgress('plain', sink, false);
  p.event({ type: 'step-start', ...step(1, 2, 2, 'RUN a', { stages: 3 }) });
  p.event({ type: 'step-start', ...step(2, 2, 2, 'RUN b', { stages: 3 }) });
  const afterHeaders = sink.text.length;
  const chunks: [number, string][] = [
    [1, 'alpha-'], [2, 'bravo-'], [1, 'one\nalpha-t'], [2, 'one\nbravo-two\nbra'], [1, 'wo\n'], [2, 'vo-three'],
  ];
  for (const [stage, data] of chunks) {
    p.event(out(stage, 2, data));
    assert.ok(sink.text.length === afterHeaders || sink.text.endsWith('\n'), `a partial line was written after ${JSON.stringify(data)}`);
  }
  p.event({ type: 'step-done', ...step(2, 2, 2, 'RUN b', { stages: 3 }), ms: 5 });
  p.event({ type: 'step-done', ...step(1, 2, 2, 'RUN a', { stages: 3 }), ms: 5 });
  p.close();
  const lines = sink.text.slice(afterHeaders).split('\n');
  assert.deepEqual(lines, ['alpha-one', 'bravo-one', 'bravo-two', 'alpha-two', 'bravo-three', '']);
});

test('plain: a partial line written while alone is ended before another step writes', () => {
  const sink = new Sink();
  const p = createProgress('plain', sink, false);
  p.event({ type: 'step-start', ...step(1, 2, 2, 'RUN a', { stages: 2 }) });
  p.event(out(1, 2, 'progress: 10%'));
  p.event({ type: 'step-start', ...step(2, 2, 2, 'RUN b', { stages: 2 }) });
  p.event(out(2, 2, 'hello from b\n'));
  p.close();
  assert.equal(sink.text, '[1/2] STEP 2/2: RUN a\nprogress: 10%\n[2/2] STEP 2/2: RUN b\nhello from b\n');
});

test('plain: cache-miss reasons only when verbose', () => {
  const quietSink = new Sink();
  const a = createProgress('plain', quietSink, false);
  a.event({ type: 'cache-miss-reason', stage: 1, step: 2, reason: 'COPY source changed: app.c' });
  a.close();
  assert.equal(quietSink.text, '');
  const sink = new Sink();
  const b = createProgress('plain', sink, false, { verbose: true });
  b.event({ type: 'cache-miss-reason', stage: 1, step: 2, reason: 'COPY source changed: app.c' });
  b.close();
  assert.equal(sink.text, '--> Cache miss: COPY source changed: app.c\n');
});

// ---------------------------------------------------------------- json

test('json: one parseable object per event; output data is UTF-8 text even when a character is split', () => {
  const sink = new Sink();
  const p = createProgress('json', sink, true);
  const cafe = Buffer.from('café\n');
  p.event({ type: 'step-start', ...step(1, 2, 2, 'RUN echo café') });
  p.event(out(1, 2, cafe.subarray(0, 4))); // "caf" + first byte of "é"
  p.event(out(1, 2, cafe.subarray(4)));
  p.event({ type: 'step-error', ...step(1, 2, 2, 'RUN echo café'), message: 'exit status 1' });
  p.event({ type: 'message', text: '--> 123' });
  p.close();
  const lines = sink.text.trimEnd().split('\n');
  const objs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(objs.map((o) => o['type']), ['step-start', 'output', 'output', 'step-error', 'message']);
  assert.equal(objs.filter((o) => o['type'] === 'output').map((o) => o['data']).join(''), 'café\n');
  assert.deepEqual(objs[0], { type: 'step-start', stage: 1, step: 2, steps: 2, text: 'RUN echo café' });
  assert.equal(objs[3]!['message'], 'exit status 1');
});

// ---------------------------------------------------------------- quiet and the factory

test('quiet prints nothing', () => {
  const sink = new Sink();
  const p = createProgress('quiet', sink, true);
  p.event({ type: 'step-start', ...step(1, 1, 1, 'FROM x') });
  p.event(out(1, 1, 'noise\n'));
  p.event({ type: 'message', text: 'COMMIT x' });
  p.close();
  assert.equal(sink.chunks.length, 0);
});

test('auto picks tty on a terminal and plain otherwise; bad modes are E_INVALID_ARGUMENT', () => {
  const a = new Sink();
  const tty = createProgress('auto', a, true, { clock: new FakeClock(), color: false, columns: 60 });
  assert.ok(tty instanceof TtyProgress);
  tty.event({ type: 'step-start', ...step(1, 1, 1, 'FROM x') });
  tty.close();
  assert.match(a.text, /^\x1b\[2K\[\+\] Building/);
  assert.equal(parseProgressMode('json'), 'json');
  assert.throws(() => parseProgressMode('fancy'), (e: unknown) => e instanceof KilnError && e.code === 'E_INVALID_ARGUMENT' && /--progress/.test(e.message));
});

// ---------------------------------------------------------------- tty

function ttyRig(columns = 50, rows?: number) {
  const clock = new FakeClock();
  const sink = new Sink();
  const p = createProgress('tty', sink, true, { clock, columns, color: false, ...(rows ? { rows } : {}) }) as TtyProgress;
  const draws = () => (sink.text.match(/\[\+\] Building/g) ?? []).length;
  return { clock, sink, p, draws };
}

test('tty: header with elapsed time and count, steps with right-aligned times, logs of running steps', () => {
  const { clock, sink, p } = ttyRig(50);
  const from = step(1, 1, 3, 'FROM localhost/busybox', { totalSteps: 3 });
  const run = step(1, 2, 3, 'RUN make', { totalSteps: 3 });
  p.event({ type: 'step-start', ...from });
  clock.advance(300);
  p.event({ type: 'step-done', ...from, ms: 300 });
  p.event({ type: 'step-start', ...run });
  p.event(out(1, 2, 'compiling a.c\ncompiling b.c\nlinking'));
  clock.advance(1000);
  sink.chunks.length = 0;
  p.flush();
  const frame = sink.text;
  assert.match(frame, /^\x1b\[\d+A/, 'the redraw starts by moving up over the previous view');
  const lines = stripAnsi(frame).split('\n').slice(0, -1);
  assert.deepEqual(lines, [
    '[+] Building 1.3s (1/3)',
    ' => [1/3] FROM localhost/busybox              0.3s',
    ' => [2/3] RUN make                            1.0s',
    ' => => # compiling a.c',
    ' => => # compiling b.c',
    ' => => # linking',
  ]);
  for (const l of lines.slice(1, 3)) assert.equal(l.length, 50);
  assert.equal((frame.match(/\x1b\[2K/g) ?? []).length, 6, 'every line is erased before it is drawn');
});

test('tty: redraws at most every 100 ms, keeps ticking while a step runs, and erases what it drew before', () => {
  const { clock, sink, p, draws } = ttyRig();
  p.event({ type: 'step-start', ...step(1, 1, 2, 'RUN sleep 1') });
  clock.advance(0);
  assert.equal(draws(), 1);
  assert.doesNotMatch(sink.text, /\x1b\[\d+A/, 'nothing to move over on the first draw');
  for (let i = 0; i < 5; i++) {
    clock.advance(10);
    p.event(out(1, 1, `line ${i}\n`));
  }
  assert.equal(draws(), 1, 'no redraw within 100 ms of the last');
  clock.advance(50);
  assert.equal(draws(), 2);
  assert.match(sink.text, /\x1b\[2A/, 'moved up over the two lines drawn first');
  clock.advance(1000);
  assert.equal(draws(), 12, 'ticks every 100 ms while running so the time advances');
  assert.match(stripAnsi(sink.text), /\[\+\] Building 1\.1s/);
  p.event({ type: 'step-done', ...step(1, 1, 2, 'RUN sleep 1'), ms: 1100 });
  clock.advance(1000);
  assert.equal(draws(), 13, 'idle: no more redraws');
  assert.equal(clock.pending, 0);
});

test('tty: a shorter frame erases the rest of the old one', () => {
  const { clock, sink, p } = ttyRig();
  p.event({ type: 'step-start', ...step(1, 1, 1, 'RUN x') });
  p.event(out(1, 1, 'a\nb\nc\n'));
  p.flush();
  clock.advance(500);
  p.event({ type: 'step-done', ...step(1, 1, 1, 'RUN x'), ms: 500 });
  sink.chunks.length = 0;
  p.flush();
  assert.match(sink.text, /^\x1b\[5A/);
  assert.ok(sink.text.endsWith('\x1b[J'), 'the three log lines below are erased');
});

test('tty: close prints the final state once, then the output of failed steps', () => {
  const { clock, sink, p, draws } = ttyRig(60);
  const a = step(1, 2, 2, 'RUN make', { stages: 2, stageName: 'builder' });
  const b = step(2, 2, 2, 'RUN false', { stages: 2 });
  p.event({ type: 'step-cached', ...step(1, 1, 2, 'FROM busybox AS builder', { stages: 2, stageName: 'builder' }) });
  p.event({ type: 'step-start', ...a });
  p.event({ type: 'step-start', ...b });
  p.event(out(2, 2, 'something went wrong\nreally'));
  clock.advance(2000);
  p.event({ type: 'step-error', ...b, message: 'exit status 1' });
  p.event({ type: 'step-done', ...a, ms: 1500 });
  p.event({ type: 'message', text: 'COMMIT img' });
  sink.chunks.length = 0;
  p.close();
  assert.equal(draws(), 1);
  const text = stripAnsi(sink.text);
  assert.deepEqual(text.split('\n'), [
    '[+] Building 2.0s (2/3)',
    ' => CACHED [builder 1/2] FROM busybox AS builder        0.0s',
    ' => [builder 2/2] RUN make                              1.5s',
    ' => ERROR [stage-1 2/2] RUN false                       2.0s',
    'COMMIT img',
    '------',
    ' > [stage-1 2/2] RUN false:',
    'something went wrong',
    'really',
    '------',
    '',
  ]);
  p.event({ type: 'message', text: 'after close' });
  clock.advance(1000);
  assert.doesNotMatch(sink.text, /after close/);
});

test('tty: lines are cut to the width; control sequences in output cannot break the layout', () => {
  const { sink, p } = ttyRig(24);
  p.event({ type: 'step-start', ...step(1, 1, 1, 'RUN a very long command line that goes on and on') });
  p.event(out(1, 1, '\x1b[31mred\x1b[0m\ttab\n50%\r100%\r\nx' + 'y'.repeat(40)));
  p.flush();
  const lines = stripAnsi(sink.text).split('\n').slice(0, -1);
  for (const l of lines) assert.ok(textWidth(l) <= 24, `too wide: ${JSON.stringify(l)}`);
  assert.equal(lines[1], ' => [1/1] RUN a ver 0.0s');
  assert.equal(lines[2], ' => => # red tab');
  assert.equal(lines[3], ' => => # 100%');
  assert.equal(lines[4], ' => => # xyyyyyyyyyyyyyy');
  // narrower than the time: the time goes, the text is cut
  const tiny = ttyRig(5);
  tiny.p.event({ type: 'step-start', ...step(1, 1, 1, 'RUN x') });
  tiny.p.flush();
  for (const l of stripAnsi(tiny.sink.text).split('\n')) assert.ok(l.length <= 5);
});

test('tty: a view taller than the terminal shows the header and its newest lines', () => {
  const { sink, p } = ttyRig(40, 5);
  for (let i = 1; i <= 6; i++) p.event({ type: 'step-cached', ...step(1, i, 6, `RUN step${i}`) });
  p.flush();
  const lines = stripAnsi(sink.text).split('\n').slice(0, -1);
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^\[\+\] Building/);
  assert.match(lines[3]!, /RUN step6/);
  assert.match(lines[1]!, /RUN step4/);
});

test('text helpers: width counts wide characters, truncate and fit respect it', () => {
  assert.equal(textWidth('日本語'), 6);
  assert.equal(textWidth('e\u0301'), 1);
  assert.equal(truncate('日本語', 5), '日本');
  assert.equal(fit('ab', '1.0s', 10), 'ab    1.0s');
  assert.equal(sanitize('10%\r50%\r'), '50%');
  assert.equal(sanitize('\x1b]0;title\x07ok\x1b[1;2Hz'), 'okz');
});
