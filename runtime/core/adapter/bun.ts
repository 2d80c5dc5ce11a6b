/** The runtime contract on Bun: Bun.spawn, Bun.listen/connect for Unix and TCP (TLS) sockets, Bun.serve. */
import type {
  ChildProcess, Conn, ConnHandlers, HttpServer, Runtime, ServeOptions, SocketServer, SpawnOptions, TcpConnectOptions, TcpServer,
} from "./contract.ts";
import { idleTimeoutOf, internalErrorResponse, parentDeathPrefix, TCP_KEEPALIVE_IDLE_S } from "./contract.ts";
import { hostPort } from "./streams.ts";

// The slice of Bun's API used here, typed locally so this file also type-checks under Deno.
interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
  /** Closes at once with a reset (SO_LINGER 0): nothing queued is sent. */
  terminate(): void;
  setNoDelay(noDelay: boolean): boolean;
  setKeepAlive(enable: boolean, initialDelayMs: number): boolean;
  readonly remoteAddress: string;
  readonly remotePort: number;
  data: BunConnState;
}
interface BunSocketHandlers {
  open?(s: BunSocket): void;
  data(s: BunSocket, bytes: Uint8Array): void;
  drain(s: BunSocket): void;
  close(s: BunSocket, error?: Error): void;
  error(s: BunSocket, error: Error): void;
  connectError?(s: BunSocket, error: Error): void;
  /** TLS only. With this handler `open` comes before the handshake; without it, after. */
  handshake?(s: BunSocket, success: boolean, authorizationError: Error | null): void;
}
interface BunTls {
  cert?: string;
  key?: string;
  ca?: string;
  serverName?: string;
  rejectUnauthorized?: boolean;
}
interface BunSubprocess {
  pid: number;
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  exited: Promise<number>;
  signalCode: string | null;
  kill(signal?: string | number): void;
}
interface BunGlobal {
  version: string;
  spawn(opts: { cmd: string[]; env?: Record<string, string>; cwd?: string; detached?: boolean; stdin: "ignore"; stdout: "pipe"; stderr: "pipe" }): BunSubprocess;
  listen(opts: { unix: string; socket: BunSocketHandlers }): { stop(closeActive?: boolean): void };
  listen(opts: { hostname: string; port: number; exclusive: boolean; tls?: BunTls; socket: BunSocketHandlers }): { hostname: string; port: number; stop(closeActive?: boolean): void };
  connect(opts: { unix: string; socket: BunSocketHandlers }): Promise<BunSocket>;
  connect(opts: { hostname: string; port: number; tls?: BunTls; socket: BunSocketHandlers }): Promise<BunSocket>;
  serve(opts: {
    fetch: ServeOptions["fetch"]; hostname: string; port: number; idleTimeout: number; development: boolean; error(e: unknown): Response;
  }): { hostname: string; port: number; stop(force?: boolean): Promise<void> | void };
}

const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;

/** Per-socket state: handlers plus the bytes the kernel did not take yet. */
class BunConnState implements Conn {
  handlers: ConnHandlers | undefined;
  private queue: Uint8Array[] = [];
  pendingBytes = 0;
  private closed = false;
  private held = false;
  peer: string | undefined;

  constructor(private readonly socket: BunSocket) {}

  /** Until `release`, writes are only queued (a TLS connection before its handshake is done). */
  hold(): void {
    this.held = true;
  }

  release(): void {
    this.held = false;
    this.flush();
  }

  write(data: Uint8Array): void {
    if (this.closed || data.byteLength === 0) return;
    if (this.queue.length === 0 && !this.held) {
      const n = this.socket.write(data);
      if (n >= data.byteLength) return;
      data = data.subarray(Math.max(n, 0));
    }
    this.queue.push(data);
    this.pendingBytes += data.byteLength;
  }

  /** Called on `drain`: hand the kernel as much of the queue as it takes. */
  flush(): void {
    if (this.held) return;
    while (this.queue.length > 0) {
      const head = this.queue[0]!;
      const n = Math.max(this.socket.write(head), 0);
      this.pendingBytes -= n;
      if (n < head.byteLength) {
        this.queue[0] = head.subarray(n);
        return;
      }
      this.queue.shift();
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Bytes still queued mean the peer stopped reading: reset rather than wait on it.
    if (this.pendingBytes > 0) this.socket.terminate();
    else this.socket.end();
  }

  finish(error?: Error): void {
    this.closed = true;
    this.queue = [];
    this.pendingBytes = 0;
    const h = this.handlers;
    this.handlers = undefined;
    h?.close(error);
  }
}

function socketHandlers(onOpen?: (state: BunConnState) => void, tune?: (s: BunSocket) => void): BunSocketHandlers {
  return {
    open(s) {
      s.data = new BunConnState(s);
      tune?.(s);
      onOpen?.(s.data);
    },
    data(s, bytes) {
      s.data.handlers?.data(bytes);
    },
    drain(s) {
      s.data.flush();
    },
    close(s, error) {
      s.data?.finish(error);
    },
    error(s, error) {
      s.data?.finish(error);
    },
  };
}

/** No-delay (frames are small and latency-bound) and keep-alive on a TCP socket; records its peer. */
function tuneTcp(s: BunSocket): void {
  s.setNoDelay(true);
  s.setKeepAlive(true, TCP_KEEPALIVE_IDLE_S * 1000);
  s.data.peer = hostPort(s.remoteAddress, s.remotePort);
}

/** A plain TCP connection: up once connected. */
async function connectPlain(o: TcpConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  const socket = await bun.connect({ hostname: o.host, port: o.port, socket: socketHandlers(undefined, tuneTcp) });
  socket.data.handlers = handlers;
  return socket.data;
}

/**
 * A TLS connection: up once the handshake has verified the server. Bun opens the socket before
 * the handshake when a `handshake` handler is given; nothing is written before it succeeds.
 */
function connectTls(o: TcpConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  const where = hostPort(o.host, o.port);
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (error: Error | undefined, s?: BunSocket) => {
      if (settled) return;
      settled = true;
      if (error) return reject(error);
      s!.data.handlers = handlers;
      resolve(s!.data);
    };
    const base = socketHandlers(undefined, tuneTcp);
    void bun.connect({
      hostname: o.host, port: o.port, tls: { ca: o.tls!.ca, serverName: o.tls!.serverName, rejectUnauthorized: true },
      socket: {
        ...base,
        handshake(s, success, authorizationError) {
          if (success && !authorizationError) return settle(undefined, s);
          settle(new Error(`TLS handshake with ${where} failed: ${authorizationError?.message ?? "the server refused it"}`));
          s.terminate();
        },
        close(s, error) {
          base.close(s, error);
          settle(new Error(`connection to ${where} closed during the TLS handshake${error ? `: ${error.message}` : ""}`));
        },
        error(s, error) {
          base.error(s, error);
          settle(error);
        },
        connectError(_s, error) {
          settle(error);
        },
      },
    }).catch((e: unknown) => settle(e instanceof Error ? e : new Error(String(e))));
  });
}

export const bunRuntime: Runtime = {
  name: "bun",
  version: bun.version,

  spawn(options: SpawnOptions): ChildProcess {
    const proc = bun.spawn({
      cmd: [...(options.dieWithParent ? parentDeathPrefix() : []), process.execPath, options.module, ...(options.args ?? [])],
      env: options.env,
      cwd: options.cwd,
      // Bun's `detached` calls setsid() in the child: a new session and process group.
      detached: options.newProcessGroup ?? false,
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    return {
      pid: proc.pid,
      stdout: proc.stdout,
      stderr: proc.stderr,
      exited: proc.exited.then((code) => ({ code: proc.signalCode ? null : code, signal: proc.signalCode })),
      kill: (signal = "SIGTERM") => {
        try {
          proc.kill(signal);
        } catch {
          // already gone
        }
      },
    };
  },

  async listenUnix(path, accept): Promise<SocketServer> {
    const server = bun.listen({
      unix: path,
      socket: socketHandlers((state) => {
        state.handlers = accept(state);
      }),
    });
    return { path, close: () => server.stop(true) };
  },

  async connectUnix(path, handlers): Promise<Conn> {
    const socket = await bun.connect({ unix: path, socket: socketHandlers() });
    socket.data.handlers = handlers;
    return socket.data;
  },

  async listenTcp(o, accept): Promise<TcpServer> {
    const handlers = socketHandlers((state) => {
      if (o.tls) state.hold();
      state.handlers = accept(state);
    }, tuneTcp);
    // With a `handshake` handler Bun opens a TLS connection as soon as it is accepted, so the
    // caller's hello timeout also covers a client that never completes the handshake.
    if (o.tls) {
      handlers.handshake = (s, success, authorizationError) => {
        // Clients present no certificate: `authorizationError` says so, and is not a failure.
        if (success) return s.data.release();
        s.data.finish(new Error(`TLS handshake from ${s.data.peer ?? "a client"} failed: ${authorizationError?.message ?? "refused"}`));
        s.terminate();
      };
    }
    // exclusive: the port is never shared (no SO_REUSEPORT), on every platform: another process
    // bound beside this one would take a share of the connections meant for it.
    const server = bun.listen({ hostname: o.host, port: o.port, exclusive: true, tls: o.tls && { cert: o.tls.cert, key: o.tls.key }, socket: handlers });
    return { host: server.hostname, port: server.port, close: () => server.stop(true) };
  },

  connectTcp: (o, handlers) => (o.tls ? connectTls(o, handlers) : connectPlain(o, handlers)),

  async serve(options): Promise<HttpServer> {
    // development: false, or a fetch that throws (or a request Bun cannot turn into a URL) gets
    // Bun's HTML debug page instead of the app's error.
    const server = bun.serve({
      fetch: options.fetch, hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 0,
      idleTimeout: idleTimeoutOf(options), development: false, error: options.onError ?? internalErrorResponse,
    });
    return { hostname: server.hostname, port: server.port, stop: async () => void (await server.stop(true)) };
  },
};
