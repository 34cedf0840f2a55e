/**
 * The k8s-file log reader (src/container/logs.ts) on hand-written conmon logs: partial lines
 * joined per stream while the streams interleave, an empty line, content starting with a
 * space, a line left open at the end, a record still being written, --tail across interleaved
 * partial lines and 64 KiB read blocks, --since/--until (strict, on the completing record's
 * time), podman's --timestamps prefix, follow with data appended during the read (a record
 * arriving in pieces, conmon replacing the file, stop()), and parseSince's value forms.
 * (test/container-attach.test.ts reads a log written by the real conmon.)
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseSince, readLogs, type ReadLogsOptions } from '../src/container/logs';
import { isKilnError } from '../src/errors';
import { sink } from './helpers/sink';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-logs-'));
after(() => fs.rmSync(dir, { recursive: true, force: true }));
let seq = 0;

function logFile(content: string): string {
  const f = path.join(dir, `ctr-${++seq}.log`);
  fs.writeFileSync(f, content);
  return f;
}


async function read(file: string, opts: ReadLogsOptions = {}): Promise<{ out: string; err: string }> {
  const out = sink();
  const err = sink();
  await readLogs(file, opts, { stdout: out, stderr: err });
  return { out: out.text(), err: err.text() };
}

const ts = (s: number, frac = '000000000') => `2024-05-01T10:00:${String(s).padStart(2, '0')}.${frac}+02:00`;
/** ms epoch of ts(s) */
const at = (s: number, ms = 0) => Date.UTC(2024, 4, 1, 8, 0, s, ms);

const SAMPLE = [
  `${ts(0, '100000000')} stdout F one`,
  `${ts(1)} stdout P tw`,
  `${ts(1, '500000000')} stderr F err one`,
  'not a record',
  `${ts(2)} stdout F o two`,
  `${ts(3)} stdout F `,
  `${ts(4)} stderr F  leading space`,
  `${ts(5)} stdout P no newline yet`,
].join('\n') + '\n';

test('readLogs: partial lines joined per stream, empty line, a line left open at the end', async () => {
  const f = logFile(SAMPLE);
  assert.deepEqual(await read(f), { out: 'one\ntwo two\n\nno newline yet', err: 'err one\n leading space\n' });
  assert.deepEqual(await read(path.join(dir, 'missing.log')), { out: '', err: '' }, 'no file yet: no lines');
  // the last record is still being written: shown as far as it goes, without a newline
  const g = logFile(`${ts(0)} stdout F done\n${ts(1)} stderr F half a rec`);
  assert.deepEqual(await read(g), { out: 'done\n', err: 'half a rec' });
  assert.deepEqual(await read(logFile(`${ts(0)} stdout F done\n2024-05-01T10:0`)), { out: 'done\n', err: '' });
});

test('readLogs --timestamps: podman format, 9 digits and Z for UTC', async () => {
  const f = logFile(SAMPLE + `2024-05-01T08:00:06.5+00:00 stderr F utc\n`);
  const r = await read(f, { timestamps: true });
  assert.equal(r.out, `${ts(0, '100000000')} one\n${ts(2)} two two\n${ts(3)} \n${ts(5)} no newline yet`);
  assert.equal(r.err, `${ts(1, '500000000')} err one\n${ts(4)}  leading space\n2024-05-01T08:00:06.500000000Z utc\n`);
});

test('readLogs --tail: the last N lines, ordered by their completing record', async () => {
  const f = logFile(SAMPLE);
  // lines by end: one, err one, two two, (empty), leading space, no newline yet
  assert.deepEqual(await read(f, { tail: 0 }), { out: '', err: '' });
  assert.deepEqual(await read(f, { tail: 1 }), { out: 'no newline yet', err: '' });
  assert.deepEqual(await read(f, { tail: 2 }), { out: 'no newline yet', err: ' leading space\n' });
  assert.deepEqual(await read(f, { tail: 4 }), { out: 'two two\n\nno newline yet', err: ' leading space\n' }, 'the partial piece before an stderr line is part of the line');
  assert.deepEqual(await read(f, { tail: 5 }), { out: 'two two\n\nno newline yet', err: 'err one\n leading space\n' });
  for (const tail of [6, 100, -1]) assert.deepEqual(await read(f, { tail }), { out: 'one\ntwo two\n\nno newline yet', err: 'err one\n leading space\n' });
});

test('readLogs --tail over many 64 KiB blocks with interleaved partial lines', async () => {
  const records: string[] = [];
  const lines: { stream: 'out' | 'err'; text: string }[] = [];
  for (let i = 0; i < 6000; i++) {
    const t = ts(i % 60, String(i).padStart(9, '0'));
    if (i % 7 === 0) {
      records.push(`${t} stdout P part-${i}-a`);
      if (i % 2 === 0) {
        records.push(`${t} stderr F err-${i}`);
        lines.push({ stream: 'err', text: `err-${i}` });
      }
      records.push(`${t} stdout P -b`);
      records.push(`${t} stdout F -c`);
      lines.push({ stream: 'out', text: `part-${i}-a-b-c` });
    } else if (i % 3 === 0) {
      records.push(`${t} stderr F err-${i} ${'x'.repeat(i % 50)}`);
      lines.push({ stream: 'err', text: `err-${i} ${'x'.repeat(i % 50)}` });
    } else {
      records.push(`${t} stdout F line-${i}`);
      lines.push({ stream: 'out', text: `line-${i}` });
    }
  }
  const f = logFile(records.join('\n') + '\n');
  assert.ok(fs.statSync(f).size > 5 * 65536);
  for (const n of [1, 2, 3, 50, 1000, lines.length - 1, lines.length, lines.length + 5]) {
    const want = lines.slice(Math.max(0, lines.length - n));
    const text = (s: 'out' | 'err') => want.filter((l) => l.stream === s).map((l) => `${l.text}\n`).join('');
    assert.deepEqual(await read(f, { tail: n }), { out: text('out'), err: text('err') }, `tail ${n}`);
  }
});

test('readLogs --since/--until: strictly after / before, on the completing record', async () => {
  const f = logFile(SAMPLE);
  assert.deepEqual(await read(f, { since: parseSince('2024-05-01T08:00:01Z') }), { out: 'two two\n\nno newline yet', err: 'err one\n leading space\n' });
  assert.deepEqual(await read(f, { since: at(0, 100) }), { out: 'two two\n\nno newline yet', err: 'err one\n leading space\n' }, 'a line exactly at --since is left out');
  assert.deepEqual(await read(f, { until: parseSince('2024-05-01T10:00:03+02:00', 0, '--until') }), { out: 'one\ntwo two\n', err: 'err one\n' });
  assert.deepEqual(await read(f, { since: at(1, 600), until: at(4, 1) }), { out: 'two two\n\n', err: ' leading space\n' });
  assert.deepEqual(await read(f, { since: at(1, 600), until: at(4, 1), tail: 3, timestamps: true }), { out: `${ts(3)} \n`, err: `${ts(4)}  leading space\n` }, 'tail first, then the time filter (podman)');
});

test('readLogs --follow: appended data, a record arriving in pieces, a replaced file, stop()', async () => {
  const f = logFile(`${ts(0)} stdout F old line\n${ts(1)} stdout P par`);
  const out = sink();
  const err = sink();
  let stop = false;
  const reading = readLogs(f, { follow: true, tail: 1, stop: () => stop, pollMs: 10 }, { stdout: out, stderr: err });
  const until = async (cond: () => boolean, what: string) => {
    const deadline = Date.now() + 5000;
    while (!cond()) {
      if (Date.now() > deadline) assert.fail(`${what}: stdout ${JSON.stringify(out.text())} stderr ${JSON.stringify(err.text())}`);
      await sleep(10);
    }
  };
  await sleep(100);
  assert.equal(out.text(), '', 'the open line waits for its end; the older line is beyond --tail 1');
  fs.appendFileSync(f, `\n${ts(2)} stdout F ti`);
  await sleep(100);
  assert.equal(out.text(), '', 'a record without its newline is still being written');
  fs.appendFileSync(f, `al\n${ts(3)} stderr F to stderr\n`);
  await until(() => out.text() === 'partial\n' && err.text() === 'to stderr\n', 'the completed line');

  // conmon --log-size-max: FILE.tmp renamed over FILE; the new file is read from its start
  fs.writeFileSync(`${f}.tmp`, `${ts(4)} stdout F after rotation\n`);
  fs.renameSync(`${f}.tmp`, f);
  await until(() => out.text() === 'partial\nafter rotation\n', 'the replaced file');

  fs.appendFileSync(f, `${ts(5)} stdout F last\n${ts(6)} stderr P open at the end`);
  stop = true; // what is there now is still read
  await reading;
  assert.equal(out.text(), 'partial\nafter rotation\nlast\n');
  assert.equal(err.text(), 'to stderr\nopen at the end');
});

test('readLogs --follow waits for the file; a failing output rejects with E_IO', async () => {
  const f = path.join(dir, 'later.log');
  const out = sink();
  let stop = false;
  const reading = readLogs(f, { follow: true, stop: () => stop, pollMs: 10 }, { stdout: out, stderr: sink() });
  await sleep(50);
  fs.writeFileSync(f, `${ts(0)} stdout F hello\n`);
  const deadline = Date.now() + 5000;
  while (out.text() !== 'hello\n' && Date.now() < deadline) await sleep(10);
  stop = true;
  await reading;
  assert.equal(out.text(), 'hello\n');

  const broken = new Writable({
    write(_c, _e, cb) {
      cb(new Error('disk full'));
    },
  });
  broken.on('error', () => undefined);
  await assert.rejects(readLogs(logFile(SAMPLE), {}, { stdout: broken, stderr: sink() }), (e: unknown) => {
    assert.ok(isKilnError(e, 'E_IO'), String(e));
    assert.match(e.message, /disk full/);
    return true;
  });
});

test('parseSince: RFC 3339, dates, Unix seconds, Go durations; bad values name the flag', () => {
  const now = Date.UTC(2024, 4, 1, 12, 0, 0);
  assert.equal(parseSince('2024-05-01T08:00:01Z'), at(1));
  assert.equal(parseSince('2024-05-01T10:00:01+02:00'), at(1));
  assert.equal(parseSince('2024-05-01T03:30:01-04:30'), at(1));
  assert.equal(parseSince('2024-05-01T08:00:01.25Z'), at(1, 250));
  assert.equal(Math.floor(parseSince('2024-05-01T08:00:01.123456789Z')), at(1, 123));
  assert.equal(parseSince('2024-05-01T08:00:01'), at(1), 'no zone: UTC, as Go parses it');
  assert.equal(parseSince('2024-05-01'), Date.UTC(2024, 4, 1));
  assert.equal(parseSince('2024-05-01+02:00'), Date.UTC(2024, 4, 1) - 2 * 3600e3);
  assert.equal(parseSince('2024-02-29'), Date.UTC(2024, 1, 29));
  assert.equal(parseSince('1714550401'), at(1));
  assert.equal(parseSince('1714550401.5'), at(1, 500));
  assert.equal(parseSince('0'), 0);
  assert.equal(parseSince('10m', now), now - 600e3);
  assert.equal(parseSince('1h30m', now), now - 5400e3);
  assert.equal(parseSince('1.5s', now), now - 1500);
  assert.equal(parseSince('10m', now, '--until'), now + 600e3, "podman's --until counts a duration forward");
  assert.ok(Math.abs(parseSince('1h') - (Date.now() - 3600e3)) < 5000, 'relative to the current time by default');
  for (const bad of ['', 'yesterday', '10 minutes', '1h30', '2024-13-01', '2023-02-29', '2024-05-01T25:00:00Z', '2024-05-01T08:00:01+24:00', '2024-5-1']) {
    assert.throws(() => parseSince(bad), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT') && e.message.startsWith(`--since ${JSON.stringify(bad)}`), bad);
  }
  assert.throws(() => parseSince('soon', now, '--until'), (e: unknown) => isKilnError(e, 'E_INVALID_ARGUMENT') && /^--until "soon"/.test(e.message));
});
