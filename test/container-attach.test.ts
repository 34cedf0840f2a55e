/**
 * The attach client (src/container/attach.ts) against a real conmon 2.1.6 and runc: a container
 * created under conmon (test/helpers/conmon.ts), attached before `runc start` so nothing is
 * lost. Shows: stdout and stderr arrive separated, stdin reaches the container and its end
 * closes the container's stdin, each 'data' event of the SEQPACKET socket is exactly one
 * packet (also under backpressure), the exit file and the k8s-file log, attach paths longer
 * than sun_path, detach and re-attach with --leave-stdin-open, attach errors, and terminal
 * resize through the ctl fifo. Every container is deleted and conmon killed even on failure.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { spawnSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { createUnderConmon, type ConmonContainer, type ConmonOptions } from './helpers/conmon';
import { requireTool } from './helpers/env';
import { ATTACH_STDERR, ATTACH_STDOUT, attachContainer, attachSocketPath, resizeTerminal, SeqpacketSocket } from '../src/container/attach';
import { readLogs } from '../src/container/logs';
import { isKilnError } from '../src/errors';
import { sink } from './helpers/sink';

const live = new Set<ConmonContainer>();
after(() => {
  for (const c of live) c.cleanup();
});

async function container(opts: ConmonOptions): Promise<ConmonContainer> {
  const c = await createUnderConmon(opts);
  live.add(c);
  return c;
}

function done(c: ConmonContainer) {
  c.cleanup();
  live.delete(c);
}


/** A sink that accepts one byte at a time, slowly: forces the attach relay to pause the socket. */
function slowSink(): Writable & { text(): string } {
  const chunks: Buffer[] = [];
  const w = new Writable({
    highWaterMark: 1,
    write(c: Buffer, _e, cb) {
      chunks.push(c);
      setTimeout(cb, 1);
    },
  }) as Writable & { text(): string };
  w.text = () => Buffer.concat(chunks).toString('utf8');
  return w;
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what}: nothing after ${ms} ms`)), ms);
    }),
  ]);
}

/** false once `pid` is gone or a zombie (its sockets are closed then) */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

function seqText(from: number, to: number): string {
  let s = '';
  for (let i = from; i <= to; i++) s += `${i}\n`;
  return s;
}

test('attach: stdout and stderr separated, stdin reaches cat, exit file and k8s-file log', async () => {
  const c = await container({ args: ['sh', '-c', 'echo out1; echo err1 >&2; cat; echo done; exit 3'], stdin: true });
  try {
    assert.equal(attachSocketPath(path.dirname(path.dirname(c.attachPath)), c.id), c.attachPath);
    const stdin = new PassThrough();
    const out = sink();
    const err = sink();
    const session = await attachContainer(c.attachPath, { stdin, stdout: out, stderr: err });
    stdin.write('from stdin\n');
    stdin.end('second line\n');
    c.start();
    await within(session.closed, 20000, 'attach session end');
    assert.equal(out.text(), 'out1\nfrom stdin\nsecond line\ndone\n');
    assert.equal(err.text(), 'err1\n');
    assert.equal(await c.waitExit(), 3);
    assert.equal(stdin.isPaused(), true, 'stdin is left paused');
    assert.equal(stdin.listenerCount('data'), 0, 'and without our listeners');

    const log = fs.readFileSync(c.logPath, 'utf8');
    const entries = log.split('\n').filter(Boolean).map((l) => l.split(' '));
    for (const e of entries) assert.match(e[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}[+-]\d\d:\d\d$/, `timestamp of ${e.join(' ')}`);
    const text = (stream: string) => entries.filter((e) => e[1] === stream).map((e) => `${e[2]} ${e.slice(3).join(' ')}`);
    assert.deepEqual(text('stdout'), ['F out1', 'F from stdin', 'F second line', 'F done']);
    assert.deepEqual(text('stderr'), ['F err1']);

    // the same lines through the log reader
    const lo = sink();
    const le = sink();
    await readLogs(c.logPath, {}, { stdout: lo, stderr: le });
    assert.equal(lo.text(), out.text());
    assert.equal(le.text(), err.text());
  } finally {
    done(c);
  }
});

test('attach: each packet arrives whole and alone, also when queued up while paused', async () => {
  const c = await container({ args: ['sh', '-c', 'seq 1 20000; seq 1 3000 >&2; seq 20001 30000'] });
  try {
    const packets: Buffer[] = [];
    let sock!: SeqpacketSocket;
    const ended = new Promise<void>((resolve, reject) => {
      sock = SeqpacketSocket.connect(c.attachPath, { packet: (p) => packets.push(p), end: resolve, error: reject });
    });
    sock.pause(); // conmon blocks on the full socket; packets pile up in the kernel
    c.start();
    await sleep(500);
    assert.equal(packets.length, 0, 'nothing is delivered while paused');
    sock.resume();
    await within(ended, 20000, 'end of the attach socket');
    sock.close();
    sock.close();
    assert.ok(packets.length > 10, `${packets.length} packets`);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    for (const p of packets) {
      assert.ok(p.length >= 2 && p.length <= 8193, `a packet is one stream byte and 1..8192 bytes of one read, got ${p.length}`);
      assert.ok(p[0] === ATTACH_STDOUT || p[0] === ATTACH_STDERR, `stream byte ${p[0]}`);
      (p[0] === ATTACH_STDOUT ? out : err).push(p.subarray(1));
    }
    // a merged or split packet would leave a stream byte in the text or lose one; a lost one, text
    assert.equal(Buffer.concat(out).toString(), seqText(1, 20000) + seqText(20001, 30000));
    assert.equal(Buffer.concat(err).toString(), seqText(1, 3000));
    assert.equal(await c.waitExit(), 0);
  } finally {
    done(c);
  }
});

test('attach: output through slow writers (the socket is paused and resumed) arrives whole', async () => {
  const c = await container({ args: ['sh', '-c', 'seq 1 5000; seq 1 2000 >&2'] });
  try {
    const out = slowSink();
    const err = slowSink();
    const session = await attachContainer(c.attachPath, { stdout: out, stderr: err });
    c.start();
    await within(session.closed, 60000, 'attach session end');
    assert.equal(out.text(), seqText(1, 5000));
    assert.equal(err.text(), seqText(1, 2000));
  } finally {
    done(c);
  }
});

test('attach: a socket path longer than sun_path (108 bytes) is reached', async () => {
  const c = await container({ args: ['echo', 'far away'], socketDir: (dir) => path.join(dir, 'd'.repeat(70), 'e'.repeat(70)) });
  try {
    assert.ok(Buffer.byteLength(c.attachPath) > 108, c.attachPath);
    const out = sink();
    const session = await attachContainer(c.attachPath, { stdout: out, stderr: sink() });
    c.start();
    await within(session.closed, 20000, 'attach session end');
    assert.equal(out.text(), 'far away\n');
  } finally {
    done(c);
  }
});

test('attach: detach and re-attach; with --leave-stdin-open the container keeps its stdin', async () => {
  const runc = requireTool('runc');
  const c = await container({ args: ['sh', '-c', 'echo ready; cat; echo never'], stdin: true, leaveStdinOpen: true });
  try {
    const out1 = sink();
    const first = await attachContainer(c.attachPath, { stdout: out1, stderr: sink() });
    c.start();
    while (out1.text() !== 'ready\n') await within(sleep(20), 1000, 'ready');
    first.close();
    first.close(); // idempotent
    await within(first.closed, 5000, 'detach');

    const stdin = new PassThrough();
    const out2 = sink();
    const second = await attachContainer(c.attachPath, { stdin, stdout: out2, stderr: sink() });
    stdin.end('hello again\n');
    const deadline = Date.now() + 10000;
    while (out2.text() !== 'hello again\n' && Date.now() < deadline) await sleep(20);
    assert.equal(out2.text(), 'hello again\n');
    await sleep(300);
    assert.equal(fs.existsSync(c.exitFile), false, 'stdin stayed open: cat still runs after the client half-closed');
    const r = spawnSync(runc, ['--root', path.join(c.dir, 'runc'), 'kill', c.id, 'KILL'], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    await within(second.closed, 10000, 'session end after kill');
    assert.equal(await c.waitExit(), 137);
    assert.equal(out2.text(), 'hello again\n');
  } finally {
    done(c);
  }
});

test('attach errors: no socket is E_RUNTIME, and so is a socket nobody listens on', async () => {
  const c = await container({ args: ['echo'] });
  try {
    c.start();
    assert.equal(await c.waitExit(), 0);
    await sleep(100);
    // conmon 2.1.6 unlinks the attach socket when it exits
    await assert.rejects(attachContainer(c.attachPath, { stdout: sink(), stderr: sink() }), (e: unknown) => {
      assert.ok(isKilnError(e, 'E_RUNTIME'), String(e));
      assert.match(e.message, /no attach socket at .*attach/);
      return true;
    });
  } finally {
    done(c);
  }

  const k = await container({ args: ['sleep', '30'] });
  try {
    k.start();
    process.kill(k.conmonPid, 'SIGKILL'); // the socket file stays, with no listener
    const deadline = Date.now() + 5000;
    while (alive(k.conmonPid) && Date.now() < deadline) await sleep(20);
    await assert.rejects(attachContainer(k.attachPath, { stdout: sink(), stderr: sink() }), (e: unknown) => {
      assert.ok(isKilnError(e, 'E_RUNTIME'), String(e));
      assert.match(e.message, /conmon no longer listens/);
      return true;
    });
    assert.throws(() => resizeTerminal(k.ctlPath, 24, 80), (e: unknown) => isKilnError(e, 'E_RUNTIME') && /conmon is not running/.test(e.message));
  } finally {
    done(k);
  }
  assert.throws(() => resizeTerminal('/nonexistent/ctl', -1, 80), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT'));
});

test('resizeTerminal: conmon -t applies the size to the container pty', async () => {
  const c = await container({ args: ['sh', '-c', 'sleep 0.5; stty size'], terminal: true });
  try {
    const out = sink();
    const session = await attachContainer(c.attachPath, { stdout: out, stderr: sink() });
    resizeTerminal(c.ctlPath, 33, 77);
    c.start();
    await within(session.closed, 20000, 'attach session end');
    assert.equal(out.text(), '33 77\r\n');
  } finally {
    done(c);
  }
});
