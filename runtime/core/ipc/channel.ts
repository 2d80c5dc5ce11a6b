/**
 * A message channel over a byte connection: frames out, validated messages in. The first
 * protocol error (bad frame or malformed message) closes the connection and is reported once.
 */
import type { Conn, ConnHandlers } from "../adapter/index.ts";
import { DEFAULT_MAX_FRAME_BYTES, FrameDecoder, FrameEncoder, ProtocolError } from "./frame.ts";
import { asMessage, type Message } from "./messages.ts";

export interface ChannelEvents {
  message(message: Message): void;
  /** Called once: `error` is a ProtocolError, a socket error, or undefined for a clean close. */
  close(error?: Error): void;
}

export class Channel {
  private readonly encoder: FrameEncoder;
  private readonly decoder: FrameDecoder;
  private conn: Conn | undefined;
  private closed = false;
  private events: ChannelEvents | undefined;
  private early: Message[] = [];
  private closedBeforeListen: { error?: Error } | undefined;

  constructor(maxFrameBytes = DEFAULT_MAX_FRAME_BYTES) {
    this.encoder = new FrameEncoder(maxFrameBytes);
    this.decoder = new FrameDecoder(maxFrameBytes);
  }

  /** Handlers to give the runtime adapter for the underlying connection. */
  connHandlers(conn?: Conn): ConnHandlers {
    if (conn) this.conn = conn;
    return { data: (bytes) => this.receive(bytes), close: (error) => this.finish(error) };
  }

  attach(conn: Conn): void {
    this.conn = conn;
  }

  /** Sets who receives messages; messages that arrived before are delivered now, in order. */
  listen(events: ChannelEvents): void {
    this.events = events;
    const early = this.early;
    this.early = [];
    for (const m of early) events.message(m);
    if (this.closedBeforeListen) events.close(this.closedBeforeListen.error);
  }

  /** Buffers incoming messages (and a close) until the next `listen`: used while handing over. */
  hold(): void {
    this.events = undefined;
  }

  /** Sets the largest incoming frame accepted from now on (outgoing frames keep their limit). */
  limitIncoming(bytes: number): void {
    this.decoder.setMaxFrameBytes(bytes);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get pendingBytes(): number {
    return this.conn?.pendingBytes ?? 0;
  }

  /** Sends a message; throws RangeError if it exceeds the frame limit (nothing is sent then). */
  send(message: Message): void {
    if (this.closed || !this.conn) return;
    for (const chunk of this.encoder.encode(message)) this.conn.write(chunk);
  }

  /** Feeds received bytes; a protocol error closes the channel. */
  receive(bytes: Uint8Array): void {
    this.accept(bytes, false);
  }

  /**
   * Fault injection on this side of the connection: reads `bytes` as if the peer had written
   * them after its last whole frame (see FrameDecoder.interject). Bytes that are not a frame
   * close the channel with a ProtocolError, exactly as if they had arrived from the peer.
   */
  inject(bytes: Uint8Array): void {
    this.accept(bytes, true);
  }

  private accept(bytes: Uint8Array, interjected: boolean): void {
    if (this.closed) return;
    let messages: unknown[];
    try {
      messages = interjected ? this.decoder.interject(bytes) : this.decoder.push(bytes);
      for (let i = 0; i < messages.length; i++) messages[i] = asMessage(messages[i]);
    } catch (e) {
      this.fail(e instanceof ProtocolError ? e : new ProtocolError(String((e as Error).message ?? e)));
      return;
    }
    for (const m of messages as Message[]) {
      if (this.closed && this.events) return;
      if (this.events) this.events.message(m);
      else this.early.push(m);
    }
  }

  close(): void {
    this.finish();
  }

  private fail(error: Error): void {
    this.finish(error);
  }

  private finish(error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.conn?.close();
    if (this.events) this.events.close(error);
    else this.closedBeforeListen = { error };
  }
}
