/**
 * HashCounter (util/hash-counter.ts): the digest must equal Node's own sha256 whatever the sizes
 * and chunking (the first MiB is hashed on the JS thread, the rest on the thread pool in
 * batches, with backpressure), the stream must not end before the last batch is hashed, and
 * oversize input must fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashCounter } from '../src/util/hash-counter';
import { isKilnError } from '../src/errors';

function chunks(total: number, size: number): Buffer[] {
  const data = randomBytes(total);
  const out: Buffer[] = [];
  for (let o = 0; o < total; o += size) out.push(data.subarray(o, Math.min(total, o + size)));
  return out;
}

async function run(parts: Buffer[], maxSize?: number, slowSink = false): Promise<{ digest: string; size: number; passed: number }> {
  const c = new HashCounter(maxSize, 'test blob');
  let passed = 0;
  const sink = new Writable({
    highWaterMark: 1,
    write(chunk: Buffer, _e, done) {
      passed += chunk.length;
      if (slowSink) setImmediate(done);
      else done();
    },
  });
  await pipeline(Readable.from(parts), c, sink);
  return { digest: c.digest(), size: c.size, passed };
}

const want = (parts: Buffer[]) => `sha256:${createHash('sha256').update(Buffer.concat(parts)).digest('hex')}`;

test('HashCounter: the digest is sha256 of everything, for sizes around the thread-pool thresholds', async () => {
  for (const [total, size] of [[0, 1], [1, 1], [1 << 20, 65536], [(1 << 20) + 1, 65536], [3 << 20, 1000], [(25 << 20) + 7, 1 << 16], [9 << 20, 5 << 20]] as const) {
    const parts = total === 0 ? [] : chunks(total, size);
    const r = await run(parts);
    assert.equal(r.digest, want(parts), `${total} bytes in ${size}-byte chunks`);
    assert.equal(r.size, total);
    assert.equal(r.passed, total, 'every byte is passed on');
  }
});

test('HashCounter: a slow consumer and many small chunks (backpressure on both sides)', async () => {
  const parts = chunks(12 << 20, 4096);
  const r = await run(parts, undefined, true);
  assert.equal(r.digest, want(parts));
});

test('HashCounter: more than maxSize fails with E_SIZE_MISMATCH naming the blob', async () => {
  await assert.rejects(run(chunks(3 << 20, 65536), 2 << 20), (e: unknown) => isKilnError(e) && e.code === 'E_SIZE_MISMATCH' && /test blob/.test(e.message));
});

test('HashCounter: digest() before the stream finished is an error, not a wrong digest', async () => {
  const c = new HashCounter();
  c.write(randomBytes(3 << 20));
  assert.throws(() => c.digest(), /before the stream finished/);
  c.destroy();
});
