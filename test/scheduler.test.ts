/**
 * src/build/scheduler: the DAG solver with fake ops (timers and counters, no containers).
 * Overlap is asserted from recorded start/end times (intervals intersect or not), never from
 * wall-clock thresholds.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { KilnError } from '../src/errors';
import { solve, type OpContext, type SolveEvent, type Vertex } from '../src/build/scheduler';

interface Span { name: string; start: number; end: number }

/** Records which ops ran, when, and with which signal. */
class Recorder {
  calls = new Map<string, number>();
  spans: Span[] = [];
  signals = new Map<string, AbortSignal>();
  running = 0;
  maxRunning = 0;

  /** A vertex whose op waits `ms` (or until aborted) and returns name(+inputs). */
  v(name: string, inputs: Vertex<string>[] = [], ms = 20, opts: { digest?: string; fail?: unknown; ignoreAbort?: boolean } = {}): Vertex<string> {
    return {
      digest: opts.digest ?? `sha256:${name}`,
      name,
      inputs,
      op: async (ins: string[], ctx: OpContext) => {
        this.calls.set(name, (this.calls.get(name) ?? 0) + 1);
        this.signals.set(name, ctx.signal);
        this.running++;
        this.maxRunning = Math.max(this.maxRunning, this.running);
        const start = performance.now();
        try {
          if (opts.ignoreAbort) await sleep(ms);
          else await sleep(ms, undefined, { signal: ctx.signal });
          if (opts.fail !== undefined) throw opts.fail;
          return ins.length ? `${name}(${ins.join(',')})` : name;
        } finally {
          this.running--;
          this.spans.push({ name, start, end: performance.now() });
        }
      },
    };
  }

  span(name: string): Span {
    const s = this.spans.find((x) => x.name === name);
    assert.ok(s, `${name} did not run`);
    return s;
  }
}

const overlap = (a: Span, b: Span): boolean => a.start < b.end && b.start < a.end;

test('diamond: a digest reached by two paths runs once and its result is shared', async () => {
  const r = new Recorder();
  const base = r.v('base');
  const left = r.v('left', [base]);
  const right = r.v('right', [base]);
  const top = r.v('top', [left, right]);
  assert.deepEqual(await solve([top]), ['top(left(base),right(base))']);
  assert.equal(r.calls.get('base'), 1);
  assert.equal(r.calls.size, 4);
});

test('separate vertex objects with one digest are deduplicated; the first one met is run', async () => {
  const r = new Recorder();
  const a1 = r.v('a1', [], 10, { digest: 'sha256:same' });
  const a2 = r.v('a2', [], 10, { digest: 'sha256:same' });
  const b = r.v('b', [a2]);
  assert.deepEqual(await solve([a1, b, a2]), ['a1', 'b(a1)', 'a1']);
  assert.equal(r.calls.get('a1'), 1);
  assert.equal(r.calls.get('a2'), undefined);
});

test('independent ops run in parallel by default', async () => {
  const r = new Recorder();
  const vs = ['p1', 'p2', 'p3', 'p4'].map((n) => r.v(n, [], 100));
  assert.deepEqual(await solve(vs), ['p1', 'p2', 'p3', 'p4']);
  assert.equal(r.maxRunning, 4);
  for (const a of r.spans) for (const b of r.spans) assert.ok(overlap(a, b), `${a.name} and ${b.name} should overlap`);
});

test('jobs: 1 serialises; jobs: 2 runs at most two at once', async () => {
  const r = new Recorder();
  const vs = ['s1', 's2', 's3', 's4'].map((n) => r.v(n, [], 30));
  await solve(vs, { jobs: 1 });
  assert.equal(r.maxRunning, 1);
  for (const a of r.spans) for (const b of r.spans) if (a !== b) assert.ok(!overlap(a, b), `${a.name} and ${b.name} overlap`);

  const r2 = new Recorder();
  await solve(['t1', 't2', 't3', 't4', 't5'].map((n) => r2.v(n, [], 30)), { jobs: 2 });
  assert.equal(r2.maxRunning, 2);
});

test('a vertex starts only after all its inputs are done, and as soon as they are', async () => {
  const r = new Recorder();
  const slow = r.v('slow', [], 120);
  const fast = r.v('fast', [], 10);
  const afterFast = r.v('afterFast', [fast], 10);
  const join = r.v('join', [slow, afterFast], 10);
  const events: string[] = [];
  await solve([join], { onEvent: (e) => events.push(`${e.type}:${e.vertex.name}`) });
  assert.ok(r.span('join').start >= r.span('slow').end);
  assert.ok(r.span('join').start >= r.span('afterFast').end);
  assert.ok(r.span('afterFast').start >= r.span('fast').end);
  // afterFast did not wait for the unrelated slow op
  assert.ok(overlap(r.span('afterFast'), r.span('slow')));
  assert.ok(events.indexOf('done:afterFast') < events.indexOf('done:slow'));
  assert.deepEqual(events.filter((e) => e.startsWith('start:')).length, 4);
});

test('the first failure: no new ops start, running ops are aborted, the original error rejects', async () => {
  const r = new Recorder();
  const boom = new Error('boom');
  const failing = r.v('failing', [], 20, { fail: boom });
  const longRunning = r.v('long', [], 5000);
  const after = r.v('after', [failing], 10);
  const queued = r.v('queued', [], 10);
  const events: SolveEvent<string>[] = [];
  const started = performance.now();
  // jobs: 2 → 'queued' is still waiting for a slot when 'failing' fails
  await assert.rejects(solve([longRunning, after, queued], { jobs: 2, onEvent: (e) => events.push(e) }), (e: unknown) => e === boom);
  assert.ok(performance.now() - started < 4000, 'the long op was aborted rather than waited for');
  assert.equal(r.calls.get('after'), undefined);
  assert.equal(r.calls.get('queued'), undefined);
  assert.equal(r.signals.get('long')?.aborted, true);
  // solve waited for the aborted op to settle
  assert.ok(r.spans.some((s) => s.name === 'long'));
  assert.equal(r.running, 0);
  const errs = events.filter((e) => e.type === 'error').map((e) => e.vertex.name);
  assert.deepEqual(errs.sort(), ['failing', 'long']);
});

test('solve waits for running ops that ignore the abort before rejecting', async () => {
  const r = new Recorder();
  const boom = new KilnError('E_RUN_FAILED', 'RUN false: exit status 1');
  const stubborn = r.v('stubborn', [], 150, { ignoreAbort: true });
  const failing = r.v('failing', [], 10, { fail: boom });
  await assert.rejects(solve([stubborn, failing]), (e: unknown) => e === boom);
  assert.equal(r.running, 0, 'the stubborn op had settled when solve rejected');
  assert.equal(r.signals.get('stubborn')?.aborted, true);
});

test('an op that throws synchronously fails the solve with that error', async () => {
  const boom = new Error('sync');
  const v: Vertex<number> = { digest: 'd', inputs: [], op: () => { throw boom; } };
  await assert.rejects(solve([v]), (e: unknown) => e === boom);
});

test('cycles are detected before any op runs and name the cycle', async () => {
  const r = new Recorder();
  const a = r.v('a');
  const b = r.v('b', [a]);
  const c = r.v('c', [b]);
  (a as unknown as { inputs: Vertex<string>[] }).inputs = [c];
  const top = r.v('top', [c]);
  await assert.rejects(solve([top]), (e: unknown) => {
    assert.ok(e instanceof KilnError);
    assert.equal(e.code, 'E_INTERNAL');
    assert.match(e.message, /cycle/);
    for (const n of ['a', 'b', 'c']) assert.match(e.message, new RegExp(`\\b${n}\\b`));
    assert.doesNotMatch(e.message, /top/);
    return true;
  });
  assert.equal(r.calls.size, 0);
  const self = r.v('self');
  (self as unknown as { inputs: Vertex<string>[] }).inputs = [self];
  await assert.rejects(solve([self]), /cycle: self -> self/);
});

test('external abort cancels like a failure: E_BUILD "build cancelled", or the signal reason', async () => {
  const r = new Recorder();
  const ac = new AbortController();
  const first = r.v('first', [], 5000);
  const second = r.v('second', [first]);
  setTimeout(() => ac.abort(), 30);
  await assert.rejects(solve([second], { signal: ac.signal }), (e: unknown) => {
    assert.ok(e instanceof KilnError);
    assert.equal(e.code, 'E_BUILD');
    assert.match(e.message, /build cancelled/);
    return true;
  });
  assert.equal(r.signals.get('first')?.aborted, true);
  assert.equal(r.calls.get('second'), undefined);

  const why = new Error('interrupted');
  const ac2 = new AbortController();
  setTimeout(() => ac2.abort(why), 30);
  await assert.rejects(solve([r.v('x', [], 5000)], { signal: ac2.signal }), (e: unknown) => e === why);

  const r3 = new Recorder();
  await assert.rejects(solve([r3.v('never')], { signal: AbortSignal.abort() }), /build cancelled/);
  assert.equal(r3.calls.size, 0);
});

test('cache: known digests are not run, nor their inputs; new results are added', async () => {
  const r = new Recorder();
  const base = r.v('base');
  const mid = r.v('mid', [base]);
  const top = r.v('top', [mid]);
  const cache = new Map([['sha256:mid', 'MID']]);
  const events: string[] = [];
  assert.deepEqual(await solve([top], { cache, onEvent: (e) => events.push(`${e.type}:${e.vertex.name}`) }), ['top(MID)']);
  assert.deepEqual([...r.calls.keys()], ['top']);
  assert.deepEqual(events, ['cached:mid', 'start:top', 'done:top']);
  assert.equal(cache.get('sha256:top'), 'top(MID)');
});

test('edge cases: no targets, repeated inputs, bad jobs', async () => {
  assert.deepEqual(await solve([]), []);
  const r = new Recorder();
  const a = r.v('a');
  assert.deepEqual(await solve([r.v('b', [a, a])]), ['b(a,a)']);
  await assert.rejects(solve([a], { jobs: 0 }), (e: unknown) => e instanceof KilnError && e.code === 'E_INVALID_ARGUMENT');
  await assert.rejects(solve([a], { jobs: 1.5 }), /jobs/);
});

test('a throwing event listener fails the solve with what it threw', async () => {
  const r = new Recorder();
  const oops = new Error('listener bug');
  const a = r.v('a');
  const b = r.v('b', [a]);
  await assert.rejects(solve([b], { onEvent: (e) => { if (e.type === 'done') throw oops; } }), (e: unknown) => e === oops);
  assert.equal(r.calls.get('b'), undefined);
});
