/**
 * Attaching to a container's stdio through conmon's attach socket (`kiln run`, `kiln attach`).
 *
 * conmon (2.1.x, src/conn_sock.c) listens on a SOCK_SEQPACKET unix socket named `attach` in
 * the bundle directory; `--socket-dir-path DIR -u UUID` makes DIR/UUID a symlink to the
 * bundle so that DIR/UUID/attach reaches it (attachSocketPath; conmon 2.1.6 unlinks the socket
 * when it exits). Each packet conmon sends is one read of the container's stdout or stderr pipe (at
 * most 8192 bytes) behind one byte naming the stream: 2 = stdout, 3 = stderr (conmon's
 * stdpipe_t; podman's AttachPipeStdout/Stderr). Every packet a client sends is written to the
 * container's stdin (when conmon has `-i`); conmon reads each into a 32 KiB buffer, so longer
 * packets would be cut, and an empty packet reads as end-of-file. When the client half-closes
 * (shutdown SHUT_WR; podman's CloseWrite once its stdin ended) or disconnects, conmon closes
 * the container's stdin, unless it runs with `--leave-stdin-open` (then the stdin pipe stays
 * open for later attaches). When the container has exited and its output is drained, conmon
 * closes every attach connection, then writes the exit file. conmon blocks writing to a client
 * that does not read, so a slow client slows the container's output rather than losing it.
 *
 * Node cannot use SEQPACKET sockets: `new net.Socket({ fd })` refuses one
 * (ERR_INVALID_FD_TYPE), and a libuv stream handle forced onto one loses the packets still
 * queued when conmon closes (libuv takes a short read plus POLLHUP for end-of-stream). So
 * SeqpacketSocket reads and writes packet by packet through native/src/seqpacket.c, driven by
 * a libuv poll handle: each recv is exactly one packet, and end-of-file comes only after the
 * last one.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { KilnError } from '../errors';
import { native, type SeqpacketWatcher } from '../native';

/** conmon's stream bytes (stdpipe_t in conmon's src/utils.h) */
export const ATTACH_STDOUT = 2;
export const ATTACH_STDERR = 3;
/** conmon's CONN_SOCK_BUF_SIZE: the longest stdin packet it reads whole */
export const MAX_STDIN_PACKET = 32768;

export interface AttachOptions {
  /**
   * forwarded to the container's stdin; when it ends, the socket is half-closed and conmon
   * closes the container's stdin. Without it the socket is half-closed at once (as podman does
   * when not attaching stdin). It is never ended or destroyed here; it is left paused with
   * this session's listeners removed once the session ends.
   */
  stdin?: Readable;
  /** receive the container's output; never ended here (the caller owns them) */
  stdout: Writable;
  stderr: Writable;
}

export interface AttachSession {
  /**
   * Resolves when conmon closed the socket (the container exited and its output was
   * drained), or after close(), once every packet received was accepted by stdout/stderr
   * (their write callbacks ran). Rejects with E_IO when the socket or an output stream fails.
   */
  closed: Promise<void>;
  /** Detaches: stops forwarding stdin and closes the socket. Idempotent. */
  close(): void;
}

/**
 * Where conmon puts the attach socket for `--socket-dir-path socketDir -u uuid` (podman's
 * AttachSocketPath). conmon shortens DIR/UUID by one byte when it is exactly 107 bytes long
 * (its workaround for the symlink colliding with sun_path's length); this does the same.
 */
export function attachSocketPath(socketDir: string, uuid: string): string {
  let base = Buffer.from(path.join(socketDir, uuid));
  if (base.length === 107) base = base.subarray(0, 106);
  return path.join(base.toString(), 'attach');
}

const READABLE = 1;
const WRITABLE = 2;
const SHUT_WR = 1;

export interface SeqpacketHandlers {
  /** one packet, whole; not called while paused */
  packet(pkt: Buffer): void;
  /** the peer closed (or shut down its writing) and every packet it sent was delivered */
  end(): void;
  /** a failure reading or polling (not of a send: those go to the send callback) */
  error(e: Error): void;
}

/**
 * A connected SOCK_SEQPACKET socket read and written packet by packet (see the file comment).
 * Handlers run on the event loop, never inside a call to this object. Contract: send() queues
 * one packet (1..65536 bytes) and calls back once it was sent or failed (EPIPE once the peer is
 * gone: reading goes on, the packets the peer sent before stay readable); shutdownWrite()
 * half-closes after the queued packets; close() releases the fd (idempotent; fails queued
 * sends). After end() or error() the caller still calls close().
 */
export class SeqpacketSocket {
  private readonly watcher: SeqpacketWatcher;
  private interest = 0;
  private paused = false;
  private ended = false;
  private closed = false;
  private shutdownPending = false;
  private readonly queue: { buf: Buffer; cb: (err?: Error) => void }[] = [];

  /** Connects to `socketPath` (any length); throws like native seqpacketConnect. */
  static connect(socketPath: string, handlers: SeqpacketHandlers): SeqpacketSocket {
    return new SeqpacketSocket(native().seqpacketConnect(socketPath), handlers);
  }

  private constructor(
    readonly fd: number,
    private readonly handlers: SeqpacketHandlers,
  ) {
    try {
      this.watcher = native().seqpacketWatch(fd, (events, err) => this.onEvents(events, err));
    } catch (e) {
      fs.closeSync(fd);
      throw e;
    }
    this.update();
  }

  pause(): void {
    this.paused = true;
    this.update();
  }

  resume(): void {
    this.paused = false;
    this.update();
  }

  send(buf: Buffer, cb: (err?: Error) => void): void {
    if (this.closed) {
      process.nextTick(cb, new KilnError('E_IO', 'the socket is closed'));
      return;
    }
    this.queue.push({ buf, cb });
    this.flush();
    this.update();
  }

  shutdownWrite(): void {
    this.shutdownPending = true;
    this.flush();
    this.update();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    native().seqpacketWatchClose(this.watcher);
    fs.closeSync(this.fd);
    for (const q of this.queue.splice(0)) process.nextTick(q.cb, new KilnError('E_IO', 'the socket was closed before the packet was sent'));
  }

  private update(): void {
    if (this.closed) return;
    const want = (this.paused || this.ended ? 0 : READABLE) | (this.queue.length ? WRITABLE : 0);
    if (want === this.interest) return;
    this.interest = want;
    native().seqpacketWatchSet(this.watcher, want);
  }

  private onEvents(events: number, err?: string): void {
    if (this.closed) return;
    if (err) {
      this.ended = true;
      this.update();
      this.handlers.error(Object.assign(new Error(`poll: ${err}`), { code: err }));
      return;
    }
    if (events & WRITABLE) this.flush();
    if (events & READABLE) this.readSome();
    this.update();
  }

  private readSome(): void {
    // a bounded batch per wake-up, so one busy socket cannot starve the loop
    for (let i = 0; i < 64 && !this.paused && !this.ended && !this.closed; i++) {
      let pkt: Buffer | null | undefined;
      try {
        pkt = native().seqpacketRecv(this.fd);
      } catch (e) {
        // ECONNRESET: the peer closed with our packets unread; everything it sent was read
        if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') {
          this.ended = true;
          this.handlers.error(e as Error);
          return;
        }
        pkt = null;
      }
      if (pkt === undefined) return;
      if (pkt === null) {
        this.ended = true;
        this.update();
        this.handlers.end();
        return;
      }
      this.handlers.packet(pkt);
    }
  }

  private flush(): void {
    while (this.queue.length > 0) {
      const q = this.queue[0]!;
      let sent: boolean;
      try {
        sent = native().seqpacketSend(this.fd, q.buf);
      } catch (e) {
        this.shutdownPending = false;
        for (const f of this.queue.splice(0)) process.nextTick(f.cb, e);
        return;
      }
      if (!sent) return; // full: wait until writable
      this.queue.shift();
      process.nextTick(q.cb);
    }
    if (this.shutdownPending) {
      this.shutdownPending = false;
      try {
        native().seqpacketShutdown(this.fd, SHUT_WR);
      } catch {
        /* the peer is gone already */
      }
    }
  }
}

/**
 * Connects to conmon's attach socket and starts relaying (see AttachOptions for who owns
 * what). Errors: E_RUNTIME when there is no socket (ENOENT) or conmon no longer listens
 * (ECONNREFUSED: the container exited); other connect failures are E_IO.
 */
export async function attachContainer(socketPath: string, opts: AttachOptions): Promise<AttachSession> {
  for (let attempt = 0; ; attempt++) {
    try {
      return relay(socketPath, opts);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' && attempt < 100) {
        await sleep(10); // conmon's listen backlog is full; it accepts as soon as its loop runs
        continue;
      }
      throw connectError(e, socketPath);
    }
  }
}

function connectError(e: unknown, socketPath: string): KilnError {
  if (e instanceof KilnError) return e;
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') {
    return new KilnError('E_RUNTIME', `cannot attach: no attach socket at ${socketPath}`, {
      hint: 'the container is not running under conmon (it was never started, or it exited and was cleaned up)',
      cause: e,
    });
  }
  if (code === 'ECONNREFUSED') {
    return new KilnError('E_RUNTIME', `cannot attach: conmon no longer listens on ${socketPath} (the container exited)`, { cause: e });
  }
  return new KilnError('E_IO', `cannot attach to ${socketPath}: ${(e as Error).message}`, { cause: e });
}

function relay(socketPath: string, opts: AttachOptions): AttachSession {
  let settled = false;
  let socketDone = false;
  let pendingWrites = 0;
  let blocked = 0;
  let failure: KilnError | undefined;
  let resolve!: () => void;
  let reject!: (e: KilnError) => void;
  const closed = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  const settle = () => {
    if (settled) return;
    if (failure) {
      settled = true;
      reject(failure);
    } else if (socketDone && pendingWrites === 0) {
      settled = true;
      resolve();
    }
  };
  const finish = () => {
    stopStdin();
    sock.close();
    socketDone = true;
    settle();
  };
  const fail = (e: KilnError) => {
    failure ??= e;
    finish();
  };

  // output: each packet demultiplexed by its first byte; a full output stream pauses reading
  const sock = SeqpacketSocket.connect(socketPath, {
    packet(pkt) {
      if (pkt.length < 2) return;
      const name = pkt[0] === ATTACH_STDOUT ? 'stdout' : pkt[0] === ATTACH_STDERR ? 'stderr' : undefined;
      if (!name) return; // podman ignores unknown stream types too
      const dst = opts[name];
      pendingWrites++;
      const ok = dst.write(pkt.subarray(1), (err) => {
        pendingWrites--;
        if (err) fail(new KilnError('E_IO', `attach ${socketPath}: writing the container's ${name} failed: ${err.message}`, { cause: err }));
        else settle();
      });
      if (!ok) {
        blocked++;
        sock.pause();
        dst.once('drain', () => {
          if (--blocked === 0) sock.resume();
        });
      }
    },
    end: finish, // conmon closed the connection: the container exited and its output is all here
    error: (e) => fail(new KilnError('E_IO', `attach socket ${socketPath}: ${e.message}`, { cause: e })),
  });

  // stdin: one packet of at most MAX_STDIN_PACKET bytes in flight at a time, never an empty one
  const stdin = opts.stdin;
  const queue: Buffer[] = [];
  let writing = false;
  let stdinEnded = false;
  let stdinStopped = false;
  const pump = () => {
    if (stdinStopped || writing) return;
    const next = queue.shift();
    if (next) {
      writing = true;
      sock.send(next, (err) => {
        writing = false;
        if (err) stopStdin(); // conmon is gone: what it sent is still read
        else pump();
      });
    } else if (stdinEnded || !stdin) {
      stopStdin();
      sock.shutdownWrite(); // conmon closes the container's stdin (unless --leave-stdin-open)
    } else {
      stdin.resume();
    }
  };
  const onData = (chunk: Buffer | string) => {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    for (let off = 0; off < b.length; off += MAX_STDIN_PACKET) queue.push(b.subarray(off, off + MAX_STDIN_PACKET));
    if (queue.length > 0) {
      stdin!.pause();
      pump();
    }
  };
  const onEnd = () => {
    stdinEnded = true;
    pump();
  };
  function stopStdin() {
    if (stdinStopped) return;
    stdinStopped = true;
    queue.length = 0;
    if (stdin) {
      stdin.off('data', onData);
      stdin.off('end', onEnd);
      stdin.off('error', onEnd);
      stdin.pause();
    }
  }
  if (stdin) {
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.on('error', onEnd); // a failing stdin ends the input; the output keeps flowing
    stdin.resume();
  } else {
    pump();
  }

  return {
    closed,
    close() {
      if (!socketDone) finish();
    },
  };
}

/**
 * Asks conmon to resize the container's terminal (podman's registerResizeFunc): writes
 * "1 <rows> <cols>\n" to `ctl`, the fifo conmon makes in the bundle. Only meaningful for a container
 * with a terminal (`conmon -t`). Opens the fifo non-blocking, so a gone conmon is an error
 * (E_RUNTIME) rather than a hang; callers usually ignore failures (a lost resize is harmless).
 */
export function resizeTerminal(ctl: string, rows: number, cols: number): void {
  for (const [name, v] of [['rows', rows], ['cols', cols]] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new KilnError('E_INVALID_ARGUMENT', `terminal ${name} ${v} is not a size between 0 and 65535`);
  }
  let fd: number;
  try {
    fd = fs.openSync(ctl, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENXIO' || code === 'ENOENT' ? 'conmon is not running' : (e as Error).message;
    throw new KilnError('E_RUNTIME', `cannot resize the container's terminal through ${ctl}: ${why}`, { cause: e });
  }
  try {
    fs.writeSync(fd, `1 ${rows} ${cols}\n`);
  } catch (e) {
    throw new KilnError('E_RUNTIME', `cannot resize the container's terminal through ${ctl}: ${(e as Error).message}`, { cause: e });
  } finally {
    fs.closeSync(fd);
  }
}
