/**
 * Typed access to native/ (the syscalls Node lacks). Loaded on first use so that commands
 * which never touch layers do not pay for it. Failures throw Errors with a Node-style `.code`
 * (errno name), `.syscall` and `.path`.
 */
import * as path from 'node:path';
import { KilnError } from './errors';
import { packageRoot } from './paths';

export interface KilnNative {
  mknod(path: string, mode: number, major: number, minor: number): void;
  lsetxattr(path: string, name: string, value: Buffer): void;
  /** null when the attribute is absent or the filesystem has no xattrs */
  lgetxattr(path: string, name: string): Buffer | null;
  llistxattr(path: string): string[];
  mount(source: string, target: string, fstype: string, flags: number, data: string): void;
  umount2(target: string, flags: number): void;
  /** flock(2); false when LOCK_NB was given and another holder has the lock */
  flock(fd: number, operation: number): boolean;
  /** SHA-256 that can hash on libuv's thread pool (native/src/sha256.c; util/hash-counter.ts) */
  sha256New(): Sha256Handle;
  sha256Update(h: Sha256Handle, data: Buffer): void;
  /** one at a time per handle; the buffers are hashed in order and kept alive until `cb` */
  sha256UpdateAsync(h: Sha256Handle, data: Buffer[], cb: (err: Error | null) => void): void;
  /** the hex digest; the handle is spent */
  sha256Digest(h: Sha256Handle): string;
  /**
   * SOCK_SEQPACKET unix sockets (native/src/seqpacket.c, which states the contract;
   * container/attach.ts). seqpacketConnect: `path` is the socket file, of any length; returns
   * a connected non-blocking fd the caller closes. Errors carry .code ENOENT, ECONNREFUSED, ...
   */
  seqpacketConnect(path: string): number;
  /** one packet; null at end-of-file; undefined when none is queued */
  seqpacketRecv(fd: number): Buffer | null | undefined;
  /** one packet (never empty); false when the socket is full */
  seqpacketSend(fd: number, data: Buffer): boolean;
  /** shutdown(2): 0 = SHUT_RD, 1 = SHUT_WR, 2 = SHUT_RDWR */
  seqpacketShutdown(fd: number, how: number): void;
  /** a libuv poll handle on fd, idle until seqpacketWatchSet; events: 1 readable, 2 writable */
  seqpacketWatch(fd: number, cb: (events: number, err?: string) => void): SeqpacketWatcher;
  seqpacketWatchSet(w: SeqpacketWatcher, events: number): void;
  /** idempotent; close the fd afterwards */
  seqpacketWatchClose(w: SeqpacketWatcher): void;
}

/** An opaque native hash state. */
export type Sha256Handle = { readonly __sha256: unique symbol };

/** An opaque native poll handle (seqpacketWatch). */
export type SeqpacketWatcher = { readonly __seqpacketWatcher: unique symbol };

export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

let cached: KilnNative | undefined;

export function native(): KilnNative {
  if (cached) return cached;
  const file = path.join(packageRoot(), 'native', 'build', 'Release', 'kiln_native.node');
  try {
    cached = require(file) as KilnNative;
  } catch (e) {
    throw new KilnError('E_NATIVE', `cannot load kiln's native addon ${file}: ${(e as Error).message}`, {
      hint: 'run scripts/setup.sh (or `npm ci`, which builds native/ with node-gyp)',
      cause: e,
    });
  }
  return cached;
}
