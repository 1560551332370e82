import fs from 'node:fs';

/**
 * Makes committed SQLite transactions durable off the main thread.
 *
 * With `synchronous = FULL` SQLite calls fsync on the write-ahead log inside COMMIT, and
 * better-sqlite3 runs COMMIT on the event loop, so every group commit stopped the whole server
 * for one fsync (several milliseconds on a virtual disk, tens at the tail). The chat store
 * instead runs with `synchronous = NORMAL`, where COMMIT only writes the log's new frames into
 * the page cache, and flushes the log file here with `fdatasync` on libuv's thread pool: a
 * transaction is answered only once a flush that began after its COMMIT has finished, exactly
 * the guarantee FULL gives, while the event loop goes on reading frames and running the next
 * batch. (SQLite in NORMAL still syncs the log before each checkpoint and the database after it.)
 *
 * At most one flush runs at a time, and transactions committed while it runs share the next one:
 * a burst of commits costs two flushes, not one each, and the thread pool (which argon2 and file
 * I/O share) is never filled with them. Flushes settle in the order they were asked for.
 */
export class WalFlusher {
  private fd: number | undefined;
  /** The flush under way. */
  private running: Promise<void> | undefined;
  /** The flush that starts when the one under way ends: it covers every commit since it began. */
  private queued: Promise<void> | undefined;
  private closed = false;

  /**
   * `walFile`: the database's write-ahead log (`<database>-wal`), which exists once in WAL mode.
   * `sync`: fdatasync (tests pass one they control, to check the scheduling).
   */
  constructor(
    private readonly walFile: string,
    private readonly sync: (
      fd: number,
      callback: (err: NodeJS.ErrnoException | null) => void,
    ) => void = fs.fdatasync,
  ) {}

  /** Resolves once everything written to the log before this call is on stable storage. */
  flush(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the SQLite store is closed'));
    if (this.queued) return this.queued;
    if (!this.running) return this.start();
    const queued = this.running
      .catch(() => undefined)
      .then(() => {
        this.queued = undefined;
        return this.start();
      });
    this.queued = queued;
    return queued;
  }

  /** Waits for the flushes asked for so far, then closes the log's descriptor. */
  async close(): Promise<void> {
    await (this.queued ?? this.running)?.catch(() => undefined);
    this.closed = true;
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private start(): Promise<void> {
    const run = new Promise<void>((resolve, reject) => {
      // SQLite keeps the log file (same inode) while any connection is open, and this store's
      // connection stays open until close(). fdatasync flushes the file whichever descriptor
      // wrote it; a read-only descriptor is enough on Linux.
      this.fd ??= fs.openSync(this.walFile, 'r');
      this.sync(this.fd, (err) => (err ? reject(err) : resolve()));
    });
    this.running = run;
    const done = () => {
      if (this.running === run) this.running = undefined;
    };
    run.then(done, done);
    return run;
  }
}
