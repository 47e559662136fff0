import Database from 'better-sqlite3'
import { join } from 'node:path'
import { DiskCacheLockedError } from './errors.js'

/** One block on disk, as the index records it. */
export interface BlockRow {
  snapshot: number
  block: number
  /** Where its bytes are in the data file (slot-file.ts). */
  slot: number
  length: number
  digest: Buffer
  /** The BlockDigest's name that made `digest`. */
  algo: string
  /** Order of insertion, for the eviction queue rebuilt at start. */
  seq: number
}

/** A block to forget: its row is deleted (its file is already gone or going). */
export interface BlockKey {
  snapshot: number
  block: number
}

/** The index's file in the cache directory. */
export const INDEX_FILE = 'index.sqlite'
/**
 * Bumped when the tables or what their rows mean change; an index of another version is emptied
 * (its data is then free space: a cache may be discarded), where its blocks would each fail
 * their check, one log line per block. 4: the XXH3 digests of their 16 KiB pieces (block-digest.ts);
 * 3 had XXH64 ones, 2 a CRC32C of the block.
 */
const SCHEMA_VERSION = 4
/**
 * Rows written by one INSERT: a batch of the disk cache's (64 blocks, disk-cache.ts) is bound and
 * run in one call into SQLite, not one per row (measured here: 26 -> 17 ms of the JS thread per
 * GiB of 128 KiB blocks). 64 × 7 parameters is far below SQLite's limit of 32766.
 */
const ROWS_PER_INSERT = 64

/**
 * The disk cache's index: which blocks of which snapshot identity are on disk, in which slot of the
 * data file, with the digest each is checked against when read. A block's row is committed only
 * after its data was written and fdatasync'd (disk-cache.ts), so a row never names bytes that were
 * not durable; data with no row (a crash between the two) is only a free slot.
 *
 * SQLite (better-sqlite3) rather than a hand-written journal: atomic, crash-safe commits and
 * a consistent file after power loss are what such a journal would have to reinvent, and a batch
 * of rows commits in one transaction. WAL with synchronous=NORMAL: a power loss may roll back the
 * last commits (their blocks become orphans), never corrupt the file. locking_mode=EXCLUSIVE
 * holds the database's lock from open to close, which is how a second daemon on the same
 * directory is refused (and the lock dies with the process, kill -9 included).
 */
export class CacheIndex {
  private readonly db: Database.Database
  private readonly statements
  /** INSERTs of 1 to ROWS_PER_INSERT rows, by their number of rows, prepared on first use. */
  private readonly inserts = new Map<number, Database.Statement<unknown[]>>()
  private readonly commitRows: (puts: readonly BlockRow[], removes: readonly BlockKey[]) => void

  private constructor(db: Database.Database) {
    this.db = db
    this.statements = {
      snapshot: db.prepare<[string], { id: number }>('SELECT id FROM snapshots WHERE key = ?'),
      addSnapshot: db.prepare<[string, string]>('INSERT INTO snapshots (key, source) VALUES (?, ?)'),
      blocks: db.prepare<[], BlockRow>('SELECT snapshot, block, slot, length, digest, algo, seq FROM blocks ORDER BY seq'),
      keys: db.prepare<[], { id: number; key: string }>('SELECT id, key FROM snapshots'),
      getMeta: db.prepare<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
      setMeta: db.prepare<[string, string]>('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)'),
      remove: db.prepare<[number, number]>('DELETE FROM blocks WHERE snapshot = ? AND block = ?'),
    }
    this.commitRows = db.transaction((puts: readonly BlockRow[], removes: readonly BlockKey[]) => {
      for (const key of removes) this.statements.remove.run(key.snapshot, key.block)
      for (let from = 0; from < puts.length; from += ROWS_PER_INSERT) this.insert(puts.slice(from, from + ROWS_PER_INSERT))
    })
  }

  /** Opens (creating) the index in `dir` and takes its lock; DiskCacheLockedError if another process holds it. */
  static open(dir: string): CacheIndex {
    const db = new Database(join(dir, INDEX_FILE), { timeout: 0 })
    try {
      db.pragma('locking_mode = EXCLUSIVE')
      db.pragma('journal_mode = WAL')
      db.pragma('synchronous = NORMAL')
      // A write transaction now takes the exclusive lock, kept until close.
      db.exec('BEGIN EXCLUSIVE; COMMIT')
      migrate(db)
    } catch (err) {
      db.close()
      if ((err as { code?: string }).code?.startsWith('SQLITE_BUSY')) throw new DiskCacheLockedError(dir, { cause: err })
      throw err
    }
    return new CacheIndex(db)
  }

  /** The id of the snapshot identity `key` (a hash), made on first sight; `source` is for people. */
  snapshotId(key: string, source: string): number {
    const row = this.statements.snapshot.get(key)
    if (row) return row.id
    return Number(this.statements.addSnapshot.run(key, source).lastInsertRowid)
  }

  /** Every snapshot identity known: id and key. */
  snapshots(): Array<{ id: number; key: string }> {
    return this.statements.keys.all()
  }

  /** Every block row, oldest first: read once at start (rows only, no data: no full scan). */
  blocks(): BlockRow[] {
    return this.statements.blocks.all()
  }

  /** Adds `puts` and deletes `removes` in one transaction. */
  commit(puts: readonly BlockRow[], removes: readonly BlockKey[]): void {
    this.commitRows(puts, removes)
  }

  /** Inserts (or replaces) `rows`, at most ROWS_PER_INSERT, with one statement. */
  private insert(rows: readonly BlockRow[]): void {
    let statement = this.inserts.get(rows.length)
    if (!statement) {
      statement = this.db.prepare(`INSERT OR REPLACE INTO blocks (snapshot, block, slot, length, digest, algo, seq) VALUES ${Array(rows.length).fill('(?, ?, ?, ?, ?, ?, ?)').join(', ')}`)
      this.inserts.set(rows.length, statement)
    }
    const values: unknown[] = []
    for (const row of rows) values.push(row.snapshot, row.block, row.slot, row.length, row.digest, row.algo, row.seq)
    statement.run(values)
  }

  /**
   * The slot size the data file was written with; when it is not `slotBytes` (the block size
   * changed), every row is deleted first: their slots no longer lie where the rows say.
   */
  useSlotBytes(slotBytes: number): void {
    const was = this.statements.getMeta.get('slot_bytes')?.value
    if (was === String(slotBytes)) return
    this.db.transaction(() => {
      this.db.exec('DELETE FROM blocks')
      this.statements.setMeta.run('slot_bytes', String(slotBytes))
    })()
  }

  close(): void {
    this.db.close()
  }
}

function migrate(db: Database.Database): void {
  const version = db.pragma('user_version', { simple: true }) as number
  if (version === SCHEMA_VERSION) return
  db.exec(`
    DROP TABLE IF EXISTS blocks;
    DROP TABLE IF EXISTS snapshots;
    DROP TABLE IF EXISTS meta;
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE snapshots (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, source TEXT NOT NULL);
    CREATE TABLE blocks (
      snapshot INTEGER NOT NULL, block INTEGER NOT NULL, slot INTEGER NOT NULL, length INTEGER NOT NULL,
      digest BLOB NOT NULL, algo TEXT NOT NULL, seq INTEGER NOT NULL,
      PRIMARY KEY (snapshot, block)
    ) WITHOUT ROWID;
    PRAGMA user_version = ${SCHEMA_VERSION};
  `)
}
