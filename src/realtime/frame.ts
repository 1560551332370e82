import type { WebSocket } from 'ws';

/**
 * A text frame serialised once for many sockets: the JSON is encoded to UTF-8 and given its
 * WebSocket header (RFC 6455 §5.2: FIN, opcode 1, unmasked as a server sends it, no extension
 * bits) in one buffer, so a fan-out to a thousand sockets does one write each instead of
 * framing the same payload a thousand times.
 */
export class OutgoingFrame {
  /** Header and payload, ready for the wire. */
  readonly wire: Buffer;
  /** The UTF-8 payload alone (a view into `wire`), for sockets that cannot take `wire`. */
  readonly payload: Buffer;

  /**
   * @param source the frame before serialisation, for connections that speak another wire
   *   format (the XMPP gateway renders it as a stanza).
   */
  constructor(
    json: string,
    readonly source?: Readonly<Record<string, unknown>>,
  ) {
    const length = Buffer.byteLength(json);
    const header = length < 126 ? 2 : length < 65536 ? 4 : 10;
    const wire = Buffer.allocUnsafe(header + length);
    wire[0] = 0x81;
    if (header === 2) {
      wire[1] = length;
    } else if (header === 4) {
      wire[1] = 126;
      wire.writeUInt16BE(length, 2);
    } else {
      wire[1] = 127;
      wire.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
      wire.writeUInt32BE(length >>> 0, 6);
    }
    wire.write(json, header, 'utf8');
    this.wire = wire;
    this.payload = wire.subarray(header);
  }
}

/**
 * The parts of ws 8's internals a pre-framed write relies on (ws has no public API for it;
 * package.json pins ws). Checked on every write, so a ws whose internals differ falls back to
 * `ws.send` instead of corrupting the stream.
 */
interface WsInternals {
  readyState: number;
  _socket?: { write(chunk: Buffer): boolean } | null;
  _sender?: { _state?: unknown; _queue?: unknown; _firstFragment?: unknown } | null;
  _extensions?: Record<string, unknown>;
}

/**
 * Writes a pre-framed message straight to the socket when that is the same as what `ws.send`
 * would write: the socket is open, the sender is idle (nothing queued behind a compression or
 * a blob read, not in the middle of a fragmented message) and no extension (permessage-deflate)
 * is in use. Otherwise sends the payload through `ws.send`. Either way the bytes count in
 * `ws.bufferedAmount`.
 */
export function sendFrame(ws: WebSocket, frame: OutgoingFrame): void {
  if (canWriteFramed(ws as unknown as WsInternals)) {
    (ws as unknown as Required<WsInternals>)._socket!.write(frame.wire);
  } else {
    ws.send(frame.payload, { binary: false });
  }
}

/** Whether `sendFrame` takes the direct path for this socket (exported for the tests). */
export function canWriteFramed(ws: WsInternals): boolean {
  const sender = ws._sender;
  const socket = ws._socket;
  return (
    ws.readyState === 1 &&
    typeof socket?.write === 'function' &&
    sender !== null &&
    sender !== undefined &&
    sender._state === 0 &&
    Array.isArray(sender._queue) &&
    sender._queue.length === 0 &&
    sender._firstFragment === true &&
    ws._extensions !== undefined &&
    isEmpty(ws._extensions)
  );
}

/** Without allocating (Object.keys would, once per socket written). */
function isEmpty(o: Record<string, unknown>): boolean {
  for (const key in o) if (Object.hasOwn(o, key)) return false;
  return true;
}
