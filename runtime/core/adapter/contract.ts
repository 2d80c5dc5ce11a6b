/**
 * The runtime contract: everything Revenant needs that Bun and Deno do differently. One small
 * implementation per runtime (`bun.ts`, `deno.ts`), picked by feature detection in `index.ts`.
 * Everything else in the codebase uses `node:` built-ins both runtimes share, or this contract.
 */
import { existsSync } from "node:fs";

/** How a child process ended. */
export interface ExitStatus {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  /** Signal name (`SIGKILL`, ...) that ended it, or null. */
  signal: string | null;
}

export interface SpawnOptions {
  /** A module (TypeScript or JavaScript file) to run in a child of the same runtime. */
  module: string;
  args?: readonly string[];
  /** The child's whole environment. */
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Start the child in a new session and process group (setsid), so signals a terminal sends to
   * its foreground group (Ctrl-C's SIGINT, SIGQUIT, SIGHUP) reach the parent only.
   */
  newProcessGroup?: boolean;
  /**
   * The kernel SIGKILLs the child when its parent dies (Linux PR_SET_PDEATHSIG, set by util-linux's
   * `setpriv` before the runtime starts). Unlike a watchdog inside the child, this also ends a child
   * that is stopped (SIGSTOP) or stuck. Where `setpriv` is missing the child starts without it.
   */
  dieWithParent?: boolean;
}

/** `setpriv --pdeathsig KILL --`, where util-linux's setpriv is installed (Linux); found once. */
let pdeathsigPrefix: string[] | undefined;
export function parentDeathPrefix(): string[] {
  if (pdeathsigPrefix) return pdeathsigPrefix;
  const setpriv = process.platform === "linux" ? ["/usr/bin/setpriv", "/bin/setpriv"].find((p) => existsSync(p)) : undefined;
  pdeathsigPrefix = setpriv ? [setpriv, "--pdeathsig", "KILL", "--"] : [];
  return pdeathsigPrefix;
}

/** A running child process. */
export interface ChildProcess {
  readonly pid: number;
  readonly stdout: ReadableStream<Uint8Array>;
  readonly stderr: ReadableStream<Uint8Array>;
  /** Resolves once, when the process has ended. */
  readonly exited: Promise<ExitStatus>;
  /** Sends a signal; a process that already ended is ignored. */
  kill(signal?: NodeJS.Signals): void;
}

/** A connected byte stream (Unix domain socket, TCP, or TLS over TCP). */
export interface Conn {
  /**
   * Queues bytes and returns at once, never waiting for the peer to read: order is kept and
   * nothing is dropped while the connection lasts. A peer that stops reading makes
   * `pendingBytes` grow; it never blocks the caller (liveness is the supervisor's pings).
   */
  write(data: Uint8Array): void;
  /** Bytes queued but not yet handed to the kernel. */
  readonly pendingBytes: number;
  /** The peer's address as `host:port` (IPv6 in brackets) for TCP; undefined for a Unix socket. */
  readonly peer?: string;
  /**
   * Closes the connection: gracefully when everything queued has reached the kernel. Bytes
   * still queued are dropped and the socket is reset instead: the peer stopped reading, so they
   * could never be delivered, and a graceful close would linger on a peer that is gone.
   */
  close(): void;
}

export interface ConnHandlers {
  /** Received bytes. They are valid only during this call (the buffer may be reused): copy what you keep. */
  data(bytes: Uint8Array): void;
  /** Called once, when either side closes or the connection fails. */
  close(error?: Error): void;
}

export interface SocketServer {
  readonly path: string;
  close(): void;
}

/** A listening TCP socket. */
export interface TcpServer {
  /** The address bound. */
  readonly host: string;
  /** The port bound (the one the kernel picked when 0 was asked for). */
  readonly port: number;
  close(): void;
}

/** Where to listen for TCP connections, with TLS when `tls` is given. */
export interface TcpListenOptions {
  /** An IP address or host name of this machine; `0.0.0.0` or `::` for every interface. */
  host: string;
  /** 0 to 65535; 0 picks a free port. */
  port: number;
  /** The server's certificate chain and private key, PEM text (not paths). */
  tls?: { cert: string; key: string };
}

/** Where to connect over TCP, with TLS when `tls` is given. */
export interface TcpConnectOptions {
  host: string;
  port: number;
  /**
   * Verify the server against `ca` (PEM text: the certificates to trust, in addition to the
   * system's) and the name `serverName` (which its certificate must carry). A server that fails
   * either is refused: the connect rejects naming why.
   */
  tls?: { ca: string; serverName: string };
}

/**
 * TCP keep-alive: seconds of silence before the kernel probes a peer (where the runtime lets the
 * delay be set). A peer gone without a FIN is found by the supervisor's pings long before; this
 * only makes the kernel release the dead socket.
 */
export const TCP_KEEPALIVE_IDLE_S = 15;

export interface HttpServer {
  readonly hostname: string;
  readonly port: number;
  stop(): Promise<void>;
}

export interface ServeOptions {
  fetch(request: Request): Response | Promise<Response>;
  hostname?: string;
  /** 0 picks a free port. */
  port?: number;
  /**
   * Seconds a connection may pass with no byte sent or received (a silent client, headers sent
   * slowly, an idle keep-alive) before the server closes it; 1 to 255, default
   * DEFAULT_IDLE_TIMEOUT_S. Long-lived responses (SSE) must send something more often.
   */
  idleTimeoutS?: number;
  /** The response when `fetch` throws (it should not): never the runtime's debug page. */
  onError?(error: unknown): Response;
}

/** Default `ServeOptions.idleTimeoutS`. */
export const DEFAULT_IDLE_TIMEOUT_S = 30;

/** `idleTimeoutS` checked: an integer from 1 to 255 (Bun's limit; both runtimes take the same). */
export function idleTimeoutOf(options: ServeOptions): number {
  const s = options.idleTimeoutS ?? DEFAULT_IDLE_TIMEOUT_S;
  if (!Number.isInteger(s) || s < 1 || s > 255) throw new RangeError(`idleTimeoutS must be an integer from 1 to 255, got ${options.idleTimeoutS}`);
  return s;
}

/** A 500 for a `fetch` that threw, when ServeOptions.onError is not given. */
export function internalErrorResponse(): Response {
  const body = { error: { status: 500, code: "internal", message: "internal error; see the server's log" } };
  return new Response(JSON.stringify(body), { status: 500, headers: { "Content-Type": "application/json" } });
}

export interface Runtime {
  readonly name: "bun" | "deno";
  readonly version: string;
  /** Spawns a child of this same runtime running `module`. */
  spawn(options: SpawnOptions): ChildProcess;
  /** Listens on a Unix socket path; `accept` is called per connection and returns its handlers. */
  listenUnix(path: string, accept: (conn: Conn) => ConnHandlers): Promise<SocketServer>;
  /** Connects to a Unix socket path. */
  connectUnix(path: string, handlers: ConnHandlers): Promise<Conn>;
  /**
   * Listens on a TCP address (TLS when `options.tls` is given); `accept` is called per
   * connection as soon as it is accepted and returns its handlers. For TLS the handshake runs
   * meanwhile: bytes written before it completes are sent after, and a failed handshake closes
   * the connection with an error naming why (so a caller's own timeout covers a client that
   * never finishes it). Connections get TCP_NODELAY and keep-alive where the runtime can set them.
   */
  listenTcp(options: TcpListenOptions, accept: (conn: Conn) => ConnHandlers): Promise<TcpServer>;
  /**
   * Connects over TCP (TLS when `options.tls` is given); resolves once the connection (and the
   * TLS handshake, with the server verified) is up, rejects naming what failed otherwise.
   */
  connectTcp(options: TcpConnectOptions, handlers: ConnHandlers): Promise<Conn>;
  serve(options: ServeOptions): Promise<HttpServer>;
}
