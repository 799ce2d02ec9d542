import { Agent } from 'node:http';
import { createConnection, type NetConnectOpts, type Socket } from 'node:net';

/**
 * How much one read of an upstream socket may take. Node reads a socket 64 KiB at a time; relaying
 * a 1 GiB blob that way costs 16,384 reads, parser passes and client writes, and a fresh buffer
 * for each read: the gateway spent ~2 s of CPU per GiB on it, ~1.1 s with these reads (README,
 * performance). Reading up to 1 MiB (the storage chunk size) lets one pass carry whatever the
 * kernel has queued.
 */
export const UPSTREAM_READ_BYTES = 1024 * 1024;

/**
 * One read buffer for every upstream socket of the process. Sharing it is safe because a read is
 * consumed before the next one starts: libuv reads one socket at a time on the event loop, and
 * the 'data' listener, node:http's response parser, copies each body piece out (and keeps no
 * header bytes past the call). The one exception in node:http, the bytes after a 101 Switching
 * Protocols, cannot occur: Upgrade and Connection are hop-by-hop, never forwarded. A buffer per
 * socket would cost 1 MiB per pooled connection.
 */
let sharedReadBuffer: Buffer | undefined;

function readBuffer(): Buffer {
  sharedReadBuffer ??= Buffer.allocUnsafe(UPSTREAM_READ_BYTES);
  return sharedReadBuffer;
}

/**
 * A plain-HTTP agent whose sockets read in large pieces (`onread`) and hand each piece to the
 * response parser as an ordinary 'data' event. Pausing works as before: net.Socket stops reading
 * in `onread` mode when the response's consumer applies backpressure. TLS upstreams keep the
 * default agent: their reads are bounded by the 16 KiB TLS record anyway.
 */
export class BulkReadAgent extends Agent {
  /** Returning the socket hands it to the agent (the callback form is the alternative). */
  override createConnection(options: NetConnectOpts): Socket {
    const socket: Socket = createConnection({
      ...options,
      onread: {
        buffer: readBuffer(),
        callback: (bytes: number, buffer: Uint8Array) => {
          socket.emit('data', Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
          return true;
        },
      },
    });
    return socket;
  }
}
