/** The runtime contract on Bun: Bun.spawn, Bun.listen/connect for Unix sockets, Bun.serve. */
import type { ChildProcess, Conn, ConnHandlers, HttpServer, Runtime, ServeOptions, SocketServer, SpawnOptions } from "./contract.ts";
import { idleTimeoutOf, internalErrorResponse } from "./contract.ts";

// The slice of Bun's API used here, typed locally so this file also type-checks under Deno.
interface BunSocket {
  write(data: Uint8Array): number;
  end(): void;
  data: BunConnState;
}
interface BunSocketHandlers {
  open?(s: BunSocket): void;
  data(s: BunSocket, bytes: Uint8Array): void;
  drain(s: BunSocket): void;
  close(s: BunSocket, error?: Error): void;
  error(s: BunSocket, error: Error): void;
  connectError?(s: BunSocket, error: Error): void;
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
  connect(opts: { unix: string; socket: BunSocketHandlers }): Promise<BunSocket>;
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

  constructor(private readonly socket: BunSocket) {}

  write(data: Uint8Array): void {
    if (this.closed || data.byteLength === 0) return;
    if (this.queue.length === 0) {
      const n = this.socket.write(data);
      if (n >= data.byteLength) return;
      data = data.subarray(Math.max(n, 0));
    }
    this.queue.push(data);
    this.pendingBytes += data.byteLength;
  }

  /** Called on `drain`: hand the kernel as much of the queue as it takes. */
  flush(): void {
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
    this.socket.end();
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

function socketHandlers(onOpen?: (state: BunConnState) => void): BunSocketHandlers {
  return {
    open(s) {
      s.data = new BunConnState(s);
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

export const bunRuntime: Runtime = {
  name: "bun",
  version: bun.version,

  spawn(options: SpawnOptions): ChildProcess {
    const proc = bun.spawn({
      cmd: [process.execPath, options.module, ...(options.args ?? [])],
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
