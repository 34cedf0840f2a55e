/**
 * The one error type of kiln. Every failure a user can see is a KilnError with a stable
 * `code` (named like containers/storage's errors), a message that names the file, line, flag or
 * image concerned, and an optional hint saying what to do. Errors cross the Piscina worker
 * boundary as the plain object returned by `toWire` and are rebuilt with `fromWire`
 * (structured clone drops custom classes).
 */
export type ErrorCode =
  | 'E_IMAGE_UNKNOWN'
  | 'E_LAYER_UNKNOWN'
  | 'E_BLOB_UNKNOWN'
  | 'E_IMAGE_IN_USE'
  | 'E_LAYER_IN_USE'
  | 'E_NAME_IN_USE'
  | 'E_INVALID_REFERENCE'
  | 'E_INVALID_ARGUMENT'
  | 'E_DIGEST_MISMATCH'
  | 'E_SIZE_MISMATCH'
  | 'E_HOSTILE_TAR'
  | 'E_BAD_ARCHIVE'
  | 'E_BAD_MANIFEST'
  | 'E_UNSUPPORTED'
  | 'E_TRANSPORT'
  | 'E_STORE'
  | 'E_STORE_CORRUPT'
  | 'E_NATIVE'
  | 'E_TEMPLATE'
  | 'E_IO'
  | 'E_CONTAINERFILE'
  | 'E_BUILD'
  | 'E_RUN_FAILED'
  | 'E_RUN_ABORTED'
  | 'E_RUNTIME'
  | 'E_SIGNATURE'
  | 'E_POLICY'
  | 'E_CONTAINER_UNKNOWN'
  | 'E_CONTAINER_STATE'
  | 'E_VOLUME_UNKNOWN'
  | 'E_VOLUME_IN_USE'
  | 'E_INTERNAL';

export interface WireError {
  code: ErrorCode;
  message: string;
  hint?: string;
}

export class KilnError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KilnError';
    this.code = code;
    if (opts.hint !== undefined) this.hint = opts.hint;
  }

  toWire(): WireError {
    return this.hint === undefined
      ? { code: this.code, message: this.message }
      : { code: this.code, message: this.message, hint: this.hint };
  }

  static fromWire(w: WireError): KilnError {
    return new KilnError(w.code, w.message, w.hint === undefined ? {} : { hint: w.hint });
  }
}

export function isKilnError(e: unknown, code?: ErrorCode): e is KilnError {
  return e instanceof KilnError && (code === undefined || e.code === code);
}

/** Wraps any thrown value as a KilnError, keeping KilnErrors as they are. */
export function asKilnError(e: unknown, code: ErrorCode = 'E_INTERNAL', context?: string): KilnError {
  if (e instanceof KilnError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  return new KilnError(code, context ? `${context}: ${msg}` : msg, { cause: e });
}

/**
 * The error with "context: " in front of its message, unless the message already names the
 * context; code and hint are kept (`code` applies to errors that are not KilnErrors yet).
 */
export function withContext(e: unknown, context: string, code: ErrorCode = 'E_INTERNAL'): KilnError {
  const k = asKilnError(e, code);
  if (k.message.includes(context)) return k;
  return new KilnError(k.code, `${context}: ${k.message}`, k.hint === undefined ? { cause: e } : { hint: k.hint, cause: e });
}

/** Serialises for the worker boundary: unknown errors become E_INTERNAL with their message. */
export function toWire(e: unknown): WireError {
  return asKilnError(e).toWire();
}
