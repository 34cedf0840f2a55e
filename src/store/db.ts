/**
 * Opens the store's SQLite database: WAL journal, a busy timeout long enough for other kiln
 * processes' write transactions, foreign keys on, migrations applied. Write transactions use
 * BEGIN IMMEDIATE (see Store.writeTx) so that two processes never both read-then-write.
 */
import Database from 'better-sqlite3';
import { KilnError } from '../errors';
import { MIGRATIONS } from './schema';

export type DB = Database.Database;

export const BUSY_TIMEOUT_MS = 60_000;

/**
 * The addon's path, given to better-sqlite3 directly: its default lookup (the `bindings`
 * package) probes a dozen candidate paths on every start, which `kiln images` notices.
 */
function nativeBinding(): string | undefined {
  try {
    return require.resolve('better-sqlite3/build/Release/better_sqlite3.node');
  } catch {
    return undefined;
  }
}

export function openDatabase(file: string): DB {
  let db: DB;
  try {
    const binding = nativeBinding();
    db = new Database(file, binding === undefined ? { timeout: BUSY_TIMEOUT_MS } : { timeout: BUSY_TIMEOUT_MS, nativeBinding: binding });
  } catch (e) {
    throw new KilnError('E_STORE', `cannot open store database ${file}: ${(e as Error).message}`, { cause: e });
  }
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    migrate(db, file);
  } catch (e) {
    db.close();
    if (e instanceof KilnError) throw e;
    throw new KilnError('E_STORE', `cannot prepare store database ${file}: ${(e as Error).message}`, { cause: e });
  }
  return db;
}

function migrate(db: DB, file: string): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current === MIGRATIONS.length) return;
  if (current > MIGRATIONS.length) {
    throw new KilnError('E_STORE', `store database ${file} has schema version ${current}, newer than this kiln understands (${MIGRATIONS.length})`, {
      hint: 'use a newer kiln, or another --root',
    });
  }
  db.exec('BEGIN IMMEDIATE');
  try {
    // Re-read under the write lock: another process may have migrated meanwhile.
    const v = db.pragma('user_version', { simple: true }) as number;
    for (let i = v; i < MIGRATIONS.length; i++) db.exec(MIGRATIONS[i]!);
    db.pragma(`user_version = ${MIGRATIONS.length}`);
    db.exec('COMMIT');
  } catch (e) {
    db.exec('ROLLBACK');
    throw e;
  }
}
