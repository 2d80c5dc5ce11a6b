/**
 * The runtime contract: everything Revenant needs that Bun and Deno do differently. One small
 * implementation per runtime (`bun.ts`, `deno.ts`), picked by feature detection in `index.ts`.
 * Everything else in the codebase uses `node:` built-ins both runtimes share, or this contract.
 */

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

/** A connected byte stream (Unix domain socket). */
export interface Conn {
  /** Queues bytes; order is kept and nothing is dropped while the peer reads. */
  write(data: Uint8Array): void;
  /** Bytes queued but not yet handed to the kernel. */
  readonly pendingBytes: number;
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
  serve(options: ServeOptions): Promise<HttpServer>;
}
