/** The runtime contract on Deno: Deno.Command, Deno.listen/connect (unix transport), Deno.serve. */
import type { ChildProcess, Conn, ConnHandlers, HttpServer, Runtime, SocketServer, SpawnOptions } from "./contract.ts";
import { WriteQueue } from "./streams.ts";

// The slice of Deno's API used here, typed locally so this file also type-checks under Bun's tsc.
interface DenoConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}
interface DenoListener extends AsyncIterable<DenoConn> {
  close(): void;
}
interface DenoChild {
  pid: number;
  stdout: ReadableStream<Uint8Array>;
  stderr: ReadableStream<Uint8Array>;
  status: Promise<{ code: number; signal: string | null }>;
  kill(signal?: string): void;
}
interface DenoGlobal {
  version: { deno: string };
  execPath(): string;
  Command: new (cmd: string, opts: {
    args: string[]; env?: Record<string, string>; clearEnv?: boolean; cwd?: string; detached?: boolean;
    stdin: "null"; stdout: "piped"; stderr: "piped";
  }) => { spawn(): DenoChild };
  listen(opts: { transport: "unix"; path: string }): DenoListener;
  connect(opts: { transport: "unix"; path: string }): Promise<DenoConn>;
  serve(opts: { hostname: string; port: number; onListen?: (addr: { hostname: string; port: number }) => void }, fetch: (r: Request) => Response | Promise<Response>): {
    addr: { hostname: string; port: number };
    shutdown(): Promise<void>;
  };
}

const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
/** One read buffer per connection, reused: handlers copy what they keep (see ConnHandlers). */
const READ_CHUNK = 1 << 18;

/** Wraps a Deno connection: a read loop feeding `handlers`, writes through an ordered queue. */
function wrap(conn: DenoConn, handlersFor: (c: Conn) => ConnHandlers): Conn {
  let closed = false;
  let handlers: ConnHandlers | undefined;
  const finish = (error?: Error) => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch {
      // already closed
    }
    handlers?.close(error);
  };
  const queue = new WriteQueue((d) => conn.write(d), finish);
  const wrapped: Conn = {
    write: (data) => {
      if (!closed) queue.push(data);
    },
    get pendingBytes() {
      return queue.pendingBytes;
    },
    close: () => finish(),
  };
  handlers = handlersFor(wrapped);
  void (async () => {
    try {
      const buf = new Uint8Array(READ_CHUNK);
      while (!closed) {
        const n = await conn.read(buf);
        if (n === null) break;
        handlers.data(buf.subarray(0, n));
      }
      finish();
    } catch (e) {
      finish(closed ? undefined : e instanceof Error ? e : new Error(String(e)));
    }
  })();
  return wrapped;
}

export const denoRuntime: Runtime = {
  name: "deno",
  version: deno.version.deno,

  spawn(options: SpawnOptions): ChildProcess {
    const child = new deno.Command(deno.execPath(), {
      args: ["run", "-A", "--no-prompt", options.module, ...(options.args ?? [])],
      env: options.env,
      clearEnv: options.env !== undefined,
      cwd: options.cwd,
      // Deno's `detached` calls setsid() in the child on Unix: a new session and process group.
      detached: options.newProcessGroup ?? false,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    return {
      pid: child.pid,
      stdout: child.stdout,
      stderr: child.stderr,
      exited: child.status.then((s) => ({ code: s.signal ? null : s.code, signal: s.signal })),
      kill: (signal = "SIGTERM") => {
        try {
          child.kill(signal);
        } catch {
          // already gone
        }
      },
    };
  },

  async listenUnix(path, accept): Promise<SocketServer> {
    const listener = deno.listen({ transport: "unix", path });
    let open = true;
    void (async () => {
      try {
        for await (const conn of listener) wrap(conn, accept);
      } catch (e) {
        if (open) throw e;
      }
    })();
    return {
      path,
      close: () => {
        open = false;
        listener.close();
      },
    };
  },

  async connectUnix(path, handlers): Promise<Conn> {
    const conn = await deno.connect({ transport: "unix", path });
    return wrap(conn, () => handlers);
  },

  async serve(options): Promise<HttpServer> {
    let ready!: (a: { hostname: string; port: number }) => void;
    const listening = new Promise<{ hostname: string; port: number }>((r) => (ready = r));
    const server = deno.serve({ hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 0, onListen: ready }, options.fetch);
    const addr = await listening;
    return { hostname: addr.hostname, port: addr.port, stop: () => server.shutdown() };
  },
};
