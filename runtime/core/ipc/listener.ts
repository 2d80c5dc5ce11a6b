/**
 * The coordinator's end of actor IPC: one Unix socket in a private (0700) directory. Each actor
 * connects back and proves itself with a hello carrying its id, incarnation and per-spawn token;
 * a connection that does not do so within the hello timeout, or with a wrong token, is dropped.
 */
import { mkdtempSync, rmSync, chmodSync } from "node:fs";
import { timingSafeEqual } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtime, type SocketServer } from "../adapter/index.ts";
import { after } from "../timers.ts";
import { Channel } from "./channel.ts";
import { DEFAULT_MAX_FRAME_BYTES, HELLO_MAX_FRAME_BYTES } from "./frame.ts";
import type { Message } from "./messages.ts";

type Hello = Extract<Message, { t: "hello" }>;

interface Expected {
  token: string;
  resolve(accepted: { channel: Channel; hello: Hello }): void;
}

export interface ListenerOptions {
  maxFrameBytes?: number;
  helloTimeoutMs?: number;
  /** Reports connections refused (bad token, no hello, protocol error before hello). */
  onReject?(reason: string): void;
}

export class ActorListener {
  private readonly expected = new Map<string, Expected>();
  private server: SocketServer | undefined;
  readonly dir: string;
  readonly path: string;

  private constructor(private readonly options: ListenerOptions) {
    this.dir = mkdtempSync(join(tmpdir(), "revenant-"));
    chmodSync(this.dir, 0o700);
    this.path = join(this.dir, "coordinator.sock");
  }

  static async open(options: ListenerOptions = {}): Promise<ActorListener> {
    const listener = new ActorListener(options);
    listener.server = await runtime.listenUnix(listener.path, (conn) => {
      // Until it has said hello with a valid token, a peer may only send hello-sized frames: an
      // unauthenticated client cannot make the coordinator allocate a large buffer.
      const channel = new Channel(options.maxFrameBytes);
      channel.limitIncoming(HELLO_MAX_FRAME_BYTES);
      channel.attach(conn);
      listener.awaitHello(channel);
      return channel.connHandlers();
    });
    return listener;
  }

  /** Registers a spawn; resolves with its channel once it connects with the right token. */
  expect(actor: string, incarnation: number, token: string): Promise<{ channel: Channel; hello: Hello }> {
    return new Promise((resolve) => this.expected.set(`${actor}#${incarnation}`, { token, resolve }));
  }

  /** Forgets a spawn that died before connecting. */
  forget(actor: string, incarnation: number): void {
    this.expected.delete(`${actor}#${incarnation}`);
  }

  private awaitHello(channel: Channel): void {
    const reject = (reason: string) => {
      timer.cancel();
      this.options.onReject?.(reason);
      channel.close();
    };
    const timer = after(this.options.helloTimeoutMs ?? 10_000, () => reject("no hello within the timeout"));
    channel.listen({
      message: (m) => {
        timer.cancel();
        if (m.t !== "hello") return reject(`first message was ${m.t}, expected hello`);
        const key = `${m.actor}#${m.incarnation}`;
        const want = this.expected.get(key);
        if (!want || !sameToken(want.token, m.token)) return reject(`hello from ${key} with an unknown or wrong token`);
        this.expected.delete(key);
        channel.limitIncoming(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
        channel.hold();
        want.resolve({ channel, hello: m });
      },
      close: (error) => {
        timer.cancel();
        if (error) this.options.onReject?.(`connection failed before hello: ${error.message}`);
      },
    });
  }

  close(): void {
    this.server?.close();
    this.expected.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function sameToken(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
