/**
 * The runtime contract on Deno: Deno.Command, Deno.listen/connect (Unix and TCP),
 * Deno.listenTls/startTls (TLS), Deno.serve behind a TCP relay.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type {
  ChildProcess, Conn, ConnHandlers, HttpServer, Runtime, ServeOptions, SocketServer, SpawnOptions, TcpConnectOptions, TcpListenOptions, TcpServer,
} from "./contract.ts";
import { idleTimeoutOf, internalErrorResponse, parentDeathPrefix } from "./contract.ts";
import { hostPort, WriteQueue } from "./streams.ts";

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
}

const deno = (globalThis as unknown as { Deno: DenoGlobal }).Deno;
/** One read buffer per connection, reused: handlers copy what they keep (see ConnHandlers). */
const READ_CHUNK = 1 << 18;

/** Wraps a Deno connection: a read loop feeding `handlers`, writes through an ordered queue. */
function wrap(conn: DenoConn, handlersFor: (c: Conn) => ConnHandlers, peer?: string): Conn {
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
    peer,
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

// ---- HTTP serving --------------------------------------------------------------------------
// Deno.serve has no idle timeout (a silent or slow client holds its connection forever), and a
// failed accept (EMFILE: out of file descriptors) ends its accept loop for good. So the public
// TCP socket is accepted here, where failures are retried and silence is timed, and each
// connection is piped to Deno.serve listening on a private Unix socket (in a 0700 folder).
// Out of descriptors, connections wait in the kernel's backlog, which costs none: the number
// relayed at once shrinks to what the process could hold, and grows back as relays succeed.

interface DenoTcpConn extends DenoConn {
  closeWrite(): Promise<void>;
}
interface DenoTcpListener {
  readonly addr: { hostname: string; port: number };
  accept(): Promise<DenoTcpConn>;
  close(): void;
}
interface DenoHttpServer {
  finished: Promise<void>;
  shutdown(): Promise<void>;
}
interface DenoServeApi {
  listen(opts: { transport: "tcp"; hostname: string; port: number }): DenoTcpListener;
  connect(opts: { transport: "unix"; path: string }): Promise<DenoTcpConn>;
  serve(opts: { path: string; onListen(): void; onError(e: unknown): Response }, fetch: (r: Request) => Response | Promise<Response>): DenoHttpServer;
}

const denoHttp = (globalThis as unknown as { Deno: DenoServeApi }).Deno;
/** Bytes read per chunk when piping a connection (the API's messages are small; SSE events smaller). */
const PIPE_CHUNK = 1 << 14;
/** Pause after a failed accept (doubling up to the cap) or server start, so a full descriptor table is not spun on. */
const RETRY_MS = { first: 10, max: 1000 };
/** Connections relayed at once when descriptors are plentiful. */
const MAX_RELAYS = 4096;

const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function quietly(f: () => unknown): void {
  try {
    const r = f();
    if (r instanceof Promise) r.catch(() => {});
  } catch {
    // already closed
  }
}

/**
 * How many connections are relayed at once (each holds three descriptors: the client's, ours to
 * the inner server, the inner server's). A descriptor shortage (a failed accept or connect, the
 * inner server's loop ending) halves it, down to one; each relay that works raises it by one,
 * up to MAX_RELAYS (additive increase, multiplicative decrease).
 */
class RelayBudget {
  private cap = MAX_RELAYS;
  private open = 0;
  private waiting: Array<() => void> = [];

  /** Resolves when one more relay fits. */
  async take(): Promise<void> {
    while (this.open >= this.cap) await new Promise<void>((r) => this.waiting.push(r));
    this.open++;
  }

  giveBack(worked: boolean): void {
    this.open--;
    if (worked) this.cap = Math.min(MAX_RELAYS, this.cap + 1);
    this.waiting.shift()?.();
  }

  /** Out of descriptors: half of what is open now (at least one, or nothing would move). */
  shrink(): void {
    this.cap = Math.max(1, Math.floor(Math.min(this.cap, this.open) / 2));
  }

  /** Wakes every waiter (the server is stopping). */
  release(): void {
    this.cap = Infinity;
    for (const w of this.waiting.splice(0)) w();
  }
}

/** Copies `from` to `to` until `from` ends ("eof") or either side fails ("error"). */
async function pipe(from: DenoConn, to: DenoConn, touch: () => void): Promise<"eof" | "error"> {
  const buf = new Uint8Array(PIPE_CHUNK);
  try {
    for (;;) {
      const n = await from.read(buf);
      if (n === null) return "eof";
      touch();
      for (let off = 0; off < n;) off += await to.write(buf.subarray(off, n));
      touch();
    }
  } catch {
    return "error";
  }
}

/**
 * Connects to the inner server, retrying for about a second: out of descriptors, or while the
 * inner server starts again, the client waits a little rather than being dropped.
 */
async function connectInner(innerPath: string): Promise<DenoTcpConn | undefined> {
  for (let pause = RETRY_MS.first; ; pause *= 2) {
    try {
      return await denoHttp.connect({ transport: "unix", path: innerPath });
    } catch {
      if (pause > RETRY_MS.max) return undefined;
      await delay(pause);
    }
  }
}

/** One client connection piped to the inner server, closed after `idleMs` with no byte either way. True if it was relayed. */
async function relay(client: DenoTcpConn, innerPath: string, idleMs: number, open: Set<() => void>): Promise<boolean> {
  const upstream = await connectInner(innerPath);
  if (!upstream) {
    quietly(() => client.close());
    return false;
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const close = () => {
    clearTimeout(timer);
    open.delete(close);
    quietly(() => client.close());
    quietly(() => upstream.close());
  };
  const touch = () => {
    clearTimeout(timer);
    timer = setTimeout(close, idleMs);
  };
  open.add(close);
  touch();
  const down = pipe(upstream, client, touch);
  // A client that has sent everything may half-close and still wait for the answer.
  const up = pipe(client, upstream, touch).then((end) => (end === "eof" ? (quietly(() => upstream.closeWrite()), down) : end));
  await Promise.race([down, up]);
  close();
  return true;
}

/**
 * Accepts until the listener is closed, within the budget and while the inner server runs; a
 * failed accept is logged once per episode and retried.
 */
async function acceptLoop(listener: DenoTcpListener, budget: RelayBudget, innerReady: () => Promise<void>, onConn: (c: DenoTcpConn) => void, isOpen: () => boolean): Promise<void> {
  let pause = 0;
  while (isOpen()) {
    await budget.take();
    await innerReady();
    try {
      onConn(await listener.accept());
      if (pause) console.error("revenant http: accepting connections again");
      pause = 0;
    } catch (e) {
      budget.giveBack(false);
      if (!isOpen()) return;
      budget.shrink();
      if (!pause) console.error(`revenant http: accept failed (${(e as Error).message}); retrying, connections wait in the backlog`);
      pause = Math.min(RETRY_MS.max, pause ? pause * 2 : RETRY_MS.first);
      await delay(pause);
    }
  }
}

/**
 * Deno.serve on a Unix socket, started again if its loop ever ends with an error (EMFILE). A
 * start that fails is retried every RETRY_MS.first; `ready()` resolves while it runs, so the
 * accept loop takes no new connection (and no descriptor) while it is down.
 */
function innerServer(path: string, options: ServeOptions, onDeath: () => void): { ready(): Promise<void>; stop(): Promise<void> } {
  let server: DenoHttpServer | undefined;
  let stopped = false;
  let up!: () => void;
  let ready = new Promise<void>((r) => (up = r));
  const start = (firstTry: boolean) => {
    if (stopped) return;
    try {
      rmSync(path, { force: true });
      server = denoHttp.serve({ path, onListen: () => {}, onError: options.onError ?? internalErrorResponse }, options.fetch);
      up();
      server.finished.catch((e) => {
        console.error(`revenant http: the server loop ended (${(e as Error).message}); starting it again`);
        ready = new Promise<void>((r) => (up = r));
        onDeath();
        start(true);
      });
    } catch (e) {
      if (firstTry) console.error(`revenant http: cannot start the server loop (${(e as Error).message}); retrying`);
      void delay(RETRY_MS.first).then(() => start(false));
    }
  };
  start(true);
  return {
    ready: () => ready,
    async stop() {
      stopped = true;
      up(); // nothing waits for a stopped server
      await server?.shutdown().catch(() => {});
    },
  };
}

async function serveHttp(options: ServeOptions): Promise<HttpServer> {
  const idleMs = idleTimeoutOf(options) * 1000;
  // Bound first: an address in use fails here, before anything needs cleaning up.
  const listener = denoHttp.listen({ transport: "tcp", hostname: options.hostname ?? "127.0.0.1", port: options.port ?? 0 });
  const dir = mkdtempSync(join(tmpdir(), "revenant-http-"));
  const removeDir = () => rmSync(dir, { recursive: true, force: true });
  process.on("exit", removeDir); // an exit without stop() (a shutdown past its grace) leaves nothing behind
  const innerPath = join(dir, "http.sock");
  const budget = new RelayBudget();
  const inner = innerServer(innerPath, options, () => budget.shrink());
  const open = new Set<() => void>();
  let listening = true;
  const onConn = (c: DenoTcpConn) => void relay(c, innerPath, idleMs, open).then((worked) => {
    if (!worked) budget.shrink(); // no descriptor for the inner connection, or the inner server died of that
    budget.giveBack(worked);
  });
  void acceptLoop(listener, budget, inner.ready, onConn, () => listening);
  return {
    hostname: listener.addr.hostname,
    port: listener.addr.port,
    async stop() {
      listening = false;
      budget.release();
      quietly(() => listener.close());
      for (const close of [...open]) close();
      await inner.stop();
      removeDir();
      process.off("exit", removeDir);
    },
  };
}

// ---- actor connections over TCP ------------------------------------------------------------

interface DenoNetConn extends DenoConn {
  readonly remoteAddr: { hostname: string; port: number };
  /** TCP connections only: a TLS connection accepted by Deno.listenTls has neither. */
  setNoDelay?(noDelay: boolean): void;
  setKeepAlive?(keepAlive: boolean): void;
}
interface DenoNetListener extends AsyncIterable<DenoNetConn> {
  readonly addr: { hostname: string; port: number };
  close(): void;
}
interface DenoNetApi {
  listen(opts: { transport: "tcp"; hostname: string; port: number }): DenoNetListener;
  listenTls(opts: { transport: "tcp"; hostname: string; port: number; cert: string; key: string }): DenoNetListener;
  connect(opts: { transport: "tcp"; hostname: string; port: number }): Promise<DenoNetConn>;
  startTls(conn: DenoNetConn, opts: { caCerts: string[]; hostname: string }): Promise<DenoNetConn & { handshake(): Promise<unknown> }>;
}

const denoNet = (globalThis as unknown as { Deno: DenoNetApi }).Deno;

/**
 * No-delay and keep-alive where Deno offers them: on TCP connections, not on those accepted by
 * Deno.listenTls (it has no way to set socket options on them). Deno cannot set the keep-alive
 * delay either: the kernel's default applies (net.ipv4.tcp_keepalive_time).
 */
function tuneTcp(conn: DenoNetConn): void {
  conn.setNoDelay?.(true);
  conn.setKeepAlive?.(true);
}

/**
 * Hands every accepted connection to `onConn` until the listener is closed. A failed accept
 * (out of descriptors) is reported once per episode and retried after a pause that doubles up
 * to RETRY_MS.max: it never ends the loop, nor throws into the process.
 */
async function acceptEach<C>(listener: AsyncIterable<C> & { close(): void }, onConn: (c: C) => void, isOpen: () => boolean, what: string): Promise<void> {
  let pause = 0;
  while (isOpen()) {
    try {
      for await (const conn of listener) {
        if (pause) console.error(`revenant ${what}: accepting connections again`);
        pause = 0;
        onConn(conn);
      }
      return;
    } catch (e) {
      if (!isOpen()) return;
      if (!pause) console.error(`revenant ${what}: accept failed (${(e as Error).message}); retrying`);
      pause = Math.min(RETRY_MS.max, pause ? pause * 2 : RETRY_MS.first);
      await delay(pause);
    }
  }
}

async function listenTcp(o: TcpListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<TcpServer> {
  const listener = o.tls
    ? denoNet.listenTls({ transport: "tcp", hostname: o.host, port: o.port, cert: o.tls.cert, key: o.tls.key })
    : denoNet.listen({ transport: "tcp", hostname: o.host, port: o.port });
  let open = true;
  // A TLS connection handshakes on its first read or write: accepted at once, so the caller's
  // hello timeout also covers a client that never completes the handshake.
  const onConn = (conn: DenoNetConn) => {
    tuneTcp(conn);
    wrap(conn, accept, hostPort(conn.remoteAddr.hostname, conn.remoteAddr.port));
  };
  void acceptEach(listener, onConn, () => open, `tcp ${hostPort(o.host, o.port)}`);
  return {
    host: listener.addr.hostname,
    port: listener.addr.port,
    close: () => {
      open = false;
      quietly(() => listener.close());
    },
  };
}

async function connectTcp(o: TcpConnectOptions, handlers: ConnHandlers): Promise<Conn> {
  const tcp = await denoNet.connect({ transport: "tcp", hostname: o.host, port: o.port });
  tuneTcp(tcp); // before TLS: the TLS connection has no socket options of its own
  const peer = hostPort(o.host, o.port);
  if (!o.tls) return wrap(tcp, () => handlers, peer);
  try {
    const tls = await denoNet.startTls(tcp, { caCerts: [o.tls.ca], hostname: o.tls.serverName });
    await tls.handshake(); // a server that fails verification is refused here, not at the first read
    return wrap(tls, () => handlers, peer);
  } catch (e) {
    quietly(() => tcp.close());
    throw new Error(`TLS handshake with ${peer} failed: ${(e as Error).message}`);
  }
}

export const denoRuntime: Runtime = {
  name: "deno",
  version: deno.version.deno,

  spawn(options: SpawnOptions): ChildProcess {
    const [program, ...prefix] = [...(options.dieWithParent ? parentDeathPrefix() : []), deno.execPath()];
    const child = new deno.Command(program!, {
      args: [...prefix, "run", "-A", "--no-prompt", options.module, ...(options.args ?? [])],
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
    void acceptEach(listener, (conn) => wrap(conn, accept), () => open, `unix ${path}`);
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

  listenTcp,
  connectTcp,

  serve: serveHttp,
};
