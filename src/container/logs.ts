/**
 * Reading conmon's k8s-file container logs (`kiln logs`), as podman does.
 *
 * Format (conmon's src/ctr_logging.c, write_k8s_log): one record per line,
 *   <timestamp> <stdout|stderr> <F|P> <content>\n
 * where the timestamp is RFC 3339 with nanoseconds and the local offset
 * (2024-05-01T12:00:00.123456789+02:00). Each read of the container's pipe is cut at its
 * newlines: a piece that ended with one is an F record (the newline is the record's own
 * terminator, so an empty line is "<ts> stdout F \n"); a trailing piece without one is a P
 * record, continued by the next records of the same stream up to the next F. Records of the
 * two streams interleave, so P pieces are joined per stream. A line's time is that of the
 * record that completed it (as in podman's joining code). With --log-size-max conmon replaces
 * the file (writes FILE.tmp, renames it over FILE); following reopens it.
 */
import * as fs from 'node:fs';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { KilnError } from '../errors';
import { parseGoDuration } from '../util/duration';

export interface ReadLogsOptions {
  /** only lines whose time is after this (ms epoch; podman's --since, strictly after) */
  since?: number;
  /** only lines whose time is before this (ms epoch; podman's --until, strictly before) */
  until?: number;
  /** the last N lines only (a line still open at the end counts); -1 or undefined = all */
  tail?: number;
  /** prefix each line with its time, podman's way: "2006-01-02T15:04:05.000000000Z07:00 " */
  timestamps?: boolean;
  /** keep reading what is appended (and follow the file when conmon replaces it) */
  follow?: boolean;
  /**
   * for follow: polled between reads; once it returned true, whatever the file holds at that
   * moment is read and written, then readLogs resolves. Without it, follow never ends.
   */
  stop?: () => boolean;
  /** follow's poll interval in ms (default 100) */
  pollMs?: number;
}

export interface LogOutputs {
  stdout: Writable;
  stderr: Writable;
}

type Stream = 'stdout' | 'stderr';

interface LogTime {
  /** ns since the epoch */
  ns: bigint;
  /** podman's output form: 9 fractional digits, the record's offset, Z for +00:00 */
  text: string;
}

interface LogRecord {
  stream: Stream;
  partial: boolean;
  time: LogTime;
  content: Buffer;
}

const BLOCK = 64 * 1024;
const NL = 0x0a;

/**
 * Writes the reassembled lines of the k8s-file log `file` to out.stdout / out.stderr (each
 * with its newline; a line still unterminated when reading ends is written without one).
 * A record that is not in the format is skipped. A missing file is empty when not following
 * and awaited when following. The output streams are never ended; a write error rejects (E_IO).
 */
export async function readLogs(file: string, opts: ReadLogsOptions, out: LogOutputs): Promise<void> {
  const follow = opts.follow ?? false;
  const pollMs = opts.pollMs ?? 100;
  const stop = () => !follow || (opts.stop?.() ?? false);
  let fh = await openLog(file);
  while (!fh) {
    if (stop()) return;
    await sleep(pollMs);
    fh = await openLog(file);
  }

  const sinceNs = opts.since === undefined ? undefined : msToNs(opts.since);
  const untilNs = opts.until === undefined ? undefined : msToNs(opts.until);
  const failures: Error[] = [];
  const onError = (e: Error) => failures.push(e);
  out.stdout.on('error', onError);
  out.stderr.on('error', onError);

  const open = new Map<Stream, { chunks: Buffer[]; time: LogTime; off: number }>();
  let cutoff = 0;
  const write = async (w: Writable, buf: Buffer) => {
    if (failures.length) throw failures[0];
    if (!w.write(buf)) await once(w, 'drain'); // rejects when the stream fails meanwhile
    if (failures.length) throw failures[0];
  };
  const emit = async (stream: Stream, t: LogTime, content: Buffer, newline: boolean) => {
    if (sinceNs !== undefined && t.ns <= sinceNs) return;
    if (untilNs !== undefined && t.ns >= untilNs) return;
    const parts = opts.timestamps ? [Buffer.from(`${t.text} `), content] : [content];
    if (newline) parts.push(Buffer.from('\n'));
    await write(stream === 'stdout' ? out.stdout : out.stderr, parts.length === 1 ? content : Buffer.concat(parts));
  };
  const onRecord = async (off: number, r: LogRecord) => {
    const o = open.get(r.stream);
    if (r.partial) {
      if (o) {
        o.chunks.push(r.content);
        o.time = r.time;
        o.off = off;
      } else open.set(r.stream, { chunks: [r.content], time: r.time, off });
      return;
    }
    open.delete(r.stream);
    if (off < cutoff) return;
    await emit(r.stream, r.time, o ? Buffer.concat([...o.chunks, r.content]) : r.content, true);
  };

  let carry: Buffer = Buffer.alloc(0);
  let pos = 0;
  /** reads and handles every whole record up to the end of what fh holds now */
  const drain = async (h: fs.promises.FileHandle) => {
    for (;;) {
      const buf = Buffer.allocUnsafe(BLOCK);
      const { bytesRead } = await h.read(buf, 0, BLOCK, pos);
      if (bytesRead === 0) return;
      const data = carry.length ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : buf.subarray(0, bytesRead);
      const base = pos - carry.length;
      pos += bytesRead;
      let start = 0;
      for (let nl = data.indexOf(NL); nl >= 0; nl = data.indexOf(NL, start)) {
        const r = parseRecord(data.subarray(start, nl));
        if (r) await onRecord(base + start, r);
        start = nl + 1;
      }
      carry = Buffer.from(data.subarray(start));
    }
  };
  try {
    const size = (await fh.stat()).size;
    if (opts.tail !== undefined && opts.tail >= 0) ({ start: pos, cutoff } = await tailStart(fh, size, opts.tail));
    for (;;) {
      const stopping = stop();
      await drain(fh);
      if (stopping) break;
      // conmon replaced the file (--log-size-max) or it was truncated: go on from the new start
      const now = await fs.promises.stat(file).catch(() => undefined);
      const cur = await fh.stat();
      const replaced = now !== undefined && (now.ino !== cur.ino || now.dev !== cur.dev);
      if (replaced || cur.size < pos) {
        if (replaced) {
          await drain(fh); // what conmon wrote before it switched files
          await fh.close();
          fh = await fs.promises.open(file, 'r');
        }
        pos = 0;
        carry = Buffer.alloc(0);
        cutoff = 0;
        continue;
      }
      await sleep(pollMs);
    }
    // the end: a record still being written is shown as far as it goes, like open P lines
    const last = carry.length ? parseRecord(carry) : undefined;
    if (last) await onRecord(pos - carry.length, { ...last, partial: true });
    for (const [stream, o] of [...open].sort((a, b) => a[1].off - b[1].off)) {
      if (o.off >= cutoff) await emit(stream, o.time, Buffer.concat(o.chunks), false);
    }
    await new Promise((res) => setImmediate(res)); // a failed last write reports on the next tick
    if (failures.length) throw failures[0];
  } catch (e) {
    if (e instanceof KilnError) throw e;
    const what = failures.includes(e as Error) ? 'writing the lines of' : 'reading';
    throw new KilnError('E_IO', `${what} the container log ${file}: ${(e as Error).message}`, { cause: e });
  } finally {
    out.stdout.off('error', onError);
    out.stderr.off('error', onError);
    await fh.close();
  }
}

async function openLog(file: string): Promise<fs.promises.FileHandle | undefined> {
  try {
    return await fs.promises.open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new KilnError('E_IO', `cannot open the container log ${file}: ${(e as Error).message}`, { cause: e });
  }
}

function msToNs(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}

/** `<ts> <stream> <F|P> <content>`; undefined when the line is not such a record. */
function parseRecord(line: Buffer): LogRecord | undefined {
  const s1 = line.indexOf(0x20);
  const s2 = s1 < 0 ? -1 : line.indexOf(0x20, s1 + 1);
  if (s2 < 0) return undefined;
  const s3 = line.indexOf(0x20, s2 + 1);
  const stream = line.toString('latin1', s1 + 1, s2);
  const tag = line.toString('latin1', s2 + 1, s3 < 0 ? line.length : s3);
  if ((stream !== 'stdout' && stream !== 'stderr') || (tag !== 'F' && tag !== 'P')) return undefined;
  const time = parseLogTime(line.toString('latin1', 0, s1));
  if (!time) return undefined;
  return { stream, partial: tag === 'P', time, content: s3 < 0 ? Buffer.alloc(0) : line.subarray(s3 + 1) };
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** A log record's RFC 3339 time, or undefined. */
export function parseLogTime(raw: string): LogTime | undefined {
  const m = RFC3339.exec(raw);
  if (!m) return undefined;
  const ms = wallClockMs(m, m[8]!);
  if (ms === undefined) return undefined;
  const frac = (m[7] ?? '').padEnd(9, '0');
  const zone = m[8] === 'Z' || m[8] === '+00:00' || m[8] === '-00:00' ? 'Z' : m[8]!;
  return { ns: BigInt(ms) * 1000000n + BigInt(frac), text: `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${frac}${zone}` };
}

/** ms epoch of date m[1..3] and time m[4..6] (whole seconds) at `zone`; undefined if out of range. */
function wallClockMs(m: RegExpExecArray, zone: string | undefined): number | undefined {
  const [y, mo, d, h, mi, s] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i] ?? 0)) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || d > new Date(Date.UTC(y, mo, 0)).getUTCDate() || h > 23 || mi > 59 || s > 59) return undefined;
  let offset = 0;
  if (zone && zone !== 'Z' && zone !== 'z') {
    const oh = Number(zone.slice(1, 3));
    const om = Number(zone.slice(4, 6));
    if (oh > 23 || om > 59) return undefined;
    offset = (zone[0] === '-' ? -1 : 1) * (oh * 60 + om) * 60000;
  }
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  date.setUTCHours(h, mi, s, 0);
  return date.getTime() - offset;
}

/**
 * Where to start reading for the last `n` lines, scanning back from the end: `cutoff` is the
 * offset of the record ending the n-th line from the end (a line is written only when the
 * record ending it is at or after it), `start` the first record of any of those lines.
 */
async function tailStart(fh: fs.promises.FileHandle, size: number, n: number): Promise<{ start: number; cutoff: number }> {
  let count = 0;
  let start = size;
  let cutoff = size;
  const seen = new Set<Stream>();
  const inLine = new Set<Stream>(); // streams whose counted line goes on further back
  for await (const { off, rec } of recordsBackwards(fh, size)) {
    const r = parseRecord(rec);
    if (!r) continue;
    const endsLine = !r.partial || !seen.has(r.stream); // an F, or the last piece of an unterminated line
    seen.add(r.stream);
    if (endsLine) {
      if (count === n) {
        if (r.partial) {
          // a line still open at the end but not among the last n: written only if a follow sees it
          // end, and then whole
          inLine.add(r.stream);
          start = off;
        } else {
          inLine.delete(r.stream);
          if (inLine.size === 0) break;
        }
        continue;
      }
      count++;
      cutoff = off;
      inLine.add(r.stream);
      start = off;
    } else if (inLine.has(r.stream)) {
      start = off;
    }
  }
  return { start, cutoff: count < n ? 0 : cutoff };
}

/** The file's records (without their newline) from last to first; the last may be unterminated. */
async function* recordsBackwards(fh: fs.promises.FileHandle, size: number): AsyncGenerator<{ off: number; rec: Buffer }> {
  let pos = size;
  let pending: Buffer = Buffer.alloc(0); // bytes at [pos, ...) holding no record start yet
  while (pos > 0) {
    const len = Math.min(BLOCK, pos);
    const block = Buffer.allocUnsafe(len);
    await fh.read(block, 0, len, pos - len);
    pos -= len;
    const buf = pending.length ? Buffer.concat([block, pending]) : block;
    let end = buf.length; // the current record is [.., end), its own newline included
    while (end >= 2) {
      const nl = buf.lastIndexOf(NL, end - 2);
      if (nl < 0) break;
      yield { off: pos + nl + 1, rec: trimNl(buf.subarray(nl + 1, end)) };
      end = nl + 1;
    }
    pending = Buffer.from(buf.subarray(0, end));
  }
  if (pending.length) yield { off: 0, rec: trimNl(pending) };
}

function trimNl(b: Buffer): Buffer {
  return b.length && b[b.length - 1] === NL ? b.subarray(0, b.length - 1) : b;
}

/**
 * podman's --since / --until values (its util.ParseInputTime) as ms epoch: RFC 3339 times
 * (2024-05-01T12:00:00Z, with or without fraction or zone; no zone = UTC), dates
 * (2024-05-01, 2024-05-01+02:00), Unix seconds (1714564800, 1714564800.5), or Go durations
 * (10m, 1h30m) counted back from `now` for --since and, as podman does, forward for --until.
 * Throws E_INVALID_ARGUMENT naming `flag`.
 */
export function parseSince(value: string, now: number = Date.now(), flag: '--since' | '--until' = '--since'): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?)?(Z|z|[+-]\d{2}:\d{2})?$/.exec(value);
  if (m) {
    const ms = wallClockMs(m, m[8]);
    if (ms !== undefined) return ms + (m[7] ? Number(`0.${m[7]}`) * 1000 : 0);
  } else if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(value)) {
    return Number(value) * 1000;
  } else {
    const ns = parseGoDuration(value);
    if (ns !== undefined) return flag === '--since' ? now - ns / 1e6 : now + ns / 1e6;
  }
  throw new KilnError('E_INVALID_ARGUMENT', `${flag} ${JSON.stringify(value)}: not a time`, {
    hint: 'give an RFC 3339 time (2024-05-01T12:00:00Z), a date (2024-05-01), Unix seconds, or a duration such as 10m or 1h30m',
  });
}
