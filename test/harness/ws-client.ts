// A small WebSocket test client for Perch's JSON-frame protocol. Every wait has a
// deadline and fails with a message that says what was awaited and what arrived.
import WebSocket from 'ws';
import type { RawData } from 'ws';

/** One JSON frame as received (or sent). */
export type Frame = Record<string, unknown>;

export interface ConnectOptions {
  /** Extra HTTP headers for the upgrade request (e.g. a cookie or authorization). */
  headers?: Record<string, string>;
  /** Deadline for the connection to open; default 15000 ms. */
  timeoutMs?: number;
  /** For wss:// to a server whose certificate a test made: the certificate to trust (PEM). */
  ca?: string | Buffer;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export interface WsClient {
  /** Sends one frame as JSON text. Throws if the socket is not open. */
  send(frame: object): void;
  /**
   * Sends frame (adding a unique string `id` unless it has one) and resolves with the
   * first received frame carrying the same id, whether a reply or an error.
   */
  request(frame: object, timeoutMs?: number): Promise<Frame>;
  /**
   * Resolves with the next received frame that matches predicate, looking first at
   * frames that arrived earlier and have not been consumed. The frame is consumed.
   */
  nextEvent<T extends Frame>(
    predicate: (frame: Frame) => frame is T,
    timeoutMs?: number,
  ): Promise<T>;
  nextEvent(predicate: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  /** Received frames not yet consumed by request() or nextEvent(), oldest first. */
  unconsumed(): Frame[];
  /** Starts a clean close and resolves when the socket is closed. */
  close(code?: number, reason?: string): Promise<CloseInfo>;
  /** Drops the connection without a close handshake, like a lost network. */
  terminate(): Promise<CloseInfo>;
  /** Resolves when the socket is closed, by either side. Never rejects. */
  readonly closed: Promise<CloseInfo>;
  /** The underlying socket, for tests that need raw access. */
  readonly socket: WebSocket;
}

// Deadlines only detect a frame that never comes; they are generous because suites share two
// cores with PostgreSQL clusters and Chromium (a 5 s deadline once expired under load average 15).
const defaultTimeoutMs = 15_000;
const closeDeadlineMs = 15_000;

/** Opens a WebSocket to wsUrl and resolves once it is open. */
export async function connect(wsUrl: string, opts: ConnectOptions = {}): Promise<WsClient> {
  const timeoutMs = opts.timeoutMs ?? defaultTimeoutMs;
  const socket = new WebSocket(wsUrl, {
    headers: opts.headers ?? {},
    ...(opts.ca === undefined ? {} : { ca: opts.ca }),
  });
  const client = new Client(socket);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`ws-client: could not connect to ${wsUrl} within ${timeoutMs} ms`));
    }, timeoutMs);
    const fail = (message: string): void => {
      clearTimeout(timer);
      socket.off('open', onOpen);
      reject(new Error(`ws-client: could not connect to ${wsUrl}: ${message}`));
    };
    const onOpen = (): void => {
      clearTimeout(timer);
      resolve();
    };
    socket.once('open', onOpen);
    socket.once('error', (error) => fail(error.message));
    socket.once('unexpected-response', (_req, res) => {
      fail(`server answered the upgrade with HTTP ${res.statusCode} ${res.statusMessage ?? ''}`);
      res.resume();
      socket.terminate();
    });
  });
  return client;
}

interface Waiter {
  matches(frame: Frame): boolean;
  resolve(frame: Frame): void;
  fail(error: Error): void;
}

class Client implements WsClient {
  readonly socket: WebSocket;
  readonly closed: Promise<CloseInfo>;

  #queue: Frame[] = [];
  #waiters: Waiter[] = [];
  #nextId = 1;
  #closeInfo: CloseInfo | undefined;
  #failure: Error | undefined;

  constructor(socket: WebSocket) {
    this.socket = socket;
    this.closed = new Promise((resolve) => {
      socket.once('close', (code, reason) => {
        this.#closeInfo = { code, reason: reason.toString('utf8') };
        const error = new Error(
          `ws-client: connection closed (code ${code}, reason "${this.#closeInfo.reason}")`,
        );
        for (const waiter of this.#waiters.splice(0)) waiter.fail(error);
        resolve(this.#closeInfo);
      });
    });
    // Errors also surface as 'close'; this listener keeps them from being thrown.
    socket.on('error', () => {});
    socket.on('message', (data, isBinary) => this.#receive(data, isBinary));
  }

  send(frame: object): void {
    if (this.socket.readyState !== WebSocket.OPEN) {
      throw new Error(
        `ws-client: cannot send, socket is ${readyStateName(this.socket.readyState)}`,
      );
    }
    this.socket.send(JSON.stringify(frame));
  }

  async request(frame: object, timeoutMs = defaultTimeoutMs): Promise<Frame> {
    const given = (frame as { id?: unknown }).id;
    const id = given === undefined ? `req-${this.#nextId++}` : given;
    const outgoing: Frame = { ...frame, id };
    this.send(outgoing);
    // Registering after send is safe: received frames are dispatched on a later tick.
    return this.#wait(
      (incoming) => incoming.id === id,
      timeoutMs,
      () => `a reply to request ${truncate(JSON.stringify(outgoing))}`,
    );
  }

  nextEvent<T extends Frame>(
    predicate: (frame: Frame) => frame is T,
    timeoutMs?: number,
  ): Promise<T>;
  nextEvent(predicate: (frame: Frame) => boolean, timeoutMs?: number): Promise<Frame>;
  nextEvent(predicate: (frame: Frame) => boolean, timeoutMs = defaultTimeoutMs): Promise<Frame> {
    return this.#wait(
      predicate,
      timeoutMs,
      () => `a frame matching ${describePredicate(predicate)}`,
    );
  }

  unconsumed(): Frame[] {
    return [...this.#queue];
  }

  async close(code = 1000, reason = ''): Promise<CloseInfo> {
    if (this.#closeInfo) return this.#closeInfo;
    this.socket.close(code, reason);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), closeDeadlineMs);
    });
    try {
      // The peer should answer the close handshake; if it does not, drop the socket.
      if ((await Promise.race([this.closed, late])) === 'late') this.socket.terminate();
    } finally {
      clearTimeout(timer);
    }
    return this.closed;
  }

  async terminate(): Promise<CloseInfo> {
    this.socket.terminate();
    return this.closed;
  }

  #receive(data: RawData, isBinary: boolean): void {
    const frame = parseFrame(data, isBinary);
    if (frame instanceof Error) {
      this.#failure = frame;
      for (const waiter of this.#waiters.splice(0)) waiter.fail(frame);
      return;
    }
    const index = this.#waiters.findIndex((waiter) => waiter.matches(frame));
    if (index === -1) {
      this.#queue.push(frame);
      return;
    }
    const [waiter] = this.#waiters.splice(index, 1);
    waiter?.resolve(frame);
  }

  #wait(
    predicate: (frame: Frame) => boolean,
    timeoutMs: number,
    describe: () => string,
  ): Promise<Frame> {
    if (this.#failure) return Promise.reject(this.#failure);
    const queued = this.#queue.findIndex(predicate);
    if (queued !== -1) return Promise.resolve(this.#queue.splice(queued, 1)[0] as Frame);
    if (this.#closeInfo) {
      return Promise.reject(
        new Error(
          `ws-client: waiting for ${describe()}, but the connection is closed ` +
            `(code ${this.#closeInfo.code}, reason "${this.#closeInfo.reason}")`,
        ),
      );
    }
    return new Promise<Frame>((resolve, reject) => {
      const waiter: Waiter = {
        matches: predicate,
        resolve: (frame) => {
          clearTimeout(timer);
          resolve(frame);
        },
        fail: (error) => {
          clearTimeout(timer);
          reject(new Error(`${error.message} while waiting for ${describe()}`));
        },
      };
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((other) => other !== waiter);
        reject(
          new Error(
            `ws-client: timed out after ${timeoutMs} ms waiting for ${describe()}; ` +
              `unconsumed frames: ${summarize(this.#queue)}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }
}

function parseFrame(data: RawData, isBinary: boolean): Frame | Error {
  if (isBinary) return new Error('ws-client: received a binary frame; the protocol is JSON text');
  const text = Array.isArray(data)
    ? Buffer.concat(data).toString('utf8')
    : data instanceof ArrayBuffer
      ? Buffer.from(data).toString('utf8')
      : data.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return new Error(`ws-client: received a frame that is not JSON: ${truncate(text)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return new Error(`ws-client: received a frame that is not a JSON object: ${truncate(text)}`);
  }
  return value as Frame;
}

function summarize(frames: Frame[]): string {
  if (frames.length === 0) return 'none';
  const shown = frames.slice(-5).map((frame) => truncate(JSON.stringify(frame)));
  const more = frames.length > 5 ? `${frames.length - 5} earlier frame(s), then ` : '';
  return `${more}${shown.join(', ')}`;
}

function describePredicate(predicate: (frame: Frame) => boolean): string {
  return truncate(predicate.toString().replace(/\s+/g, ' '), 120);
}

function truncate(text: string, max = 300): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function readyStateName(state: number): string {
  return ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'][state] ?? String(state);
}
