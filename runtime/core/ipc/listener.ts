/**
 * The coordinator's end of actor IPC. It listens on one transport (transport.ts): a Unix socket
 * in a private (0700) directory by default, or a TCP address, with TLS if configured. Each actor
 * connects back and proves it holds its per-spawn token, and the coordinator proves it back
 * (handshake.ts). A connection that has not said a good hello within the hello timeout, that
 * names a spawn not expected or proves a wrong token, or that breaks the protocol first, is
 * dropped and reported to `onReject` (with the peer's address for TCP).
 *
 * @example
 * ```ts
 * const listener = await ActorListener.open({ transport: { kind: "tcp", host: "127.0.0.1", port: 0 } });
 * describeAddress(listener.address); // "tcp://127.0.0.1:40123": goes into each spawn spec
 * const { channel } = await listener.expect("critic", 1, token);
 * ```
 */
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runtime, type Conn, type ConnHandlers } from "../adapter/index.ts";
import { after } from "../timers.ts";
import { Channel } from "./channel.ts";
import { DEFAULT_MAX_FRAME_BYTES, HELLO_MAX_FRAME_BYTES } from "./frame.ts";
import { actorProof, coordinatorProof, isNonce, malformedProof, newNonce, sameProof, type Hello } from "./handshake.ts";
import { advertisedHost, describeAddress, parseTransport, TransportError, type ActorAddress, type TlsFiles, type Transport } from "./transport.ts";

interface Expected {
  token: string;
  resolve(accepted: { channel: Channel; hello: Hello }): void;
}

/** Default time a new connection has to complete the handshake. */
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;

export interface ListenerOptions {
  maxFrameBytes?: number;
  helloTimeoutMs?: number;
  /** Where to listen; default the Unix socket. Checked by parseTransport. */
  transport?: Transport;
  /** Reports connections refused (wrong token, no hello, protocol error before hello). */
  onReject?(reason: string): void;
  /**
   * Who the Unix socket's folder belongs to (a supervisor's mark), written into it as `owner`, so a
   * later owner of the same name removes the folder a killed coordinator left (removeStaleSocketDirs).
   */
  owner?: string;
}

/** The prefix of every Unix socket folder, under the system's temporary folder. */
const SOCKET_DIR_PREFIX = "revenant-";
const OWNER_FILE = "owner";

/**
 * Removes the socket folders of `owner` that another process made: their coordinator is gone (its
 * successor holds the job's lock), and a SIGKILL left them behind. Returns the folders removed.
 */
export function removeStaleSocketDirs(owner: string): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(tmpdir()).filter((n) => n.startsWith(SOCKET_DIR_PREFIX));
  } catch {
    return removed;
  }
  for (const name of names) {
    const dir = join(tmpdir(), name);
    let recorded: string[];
    try {
      recorded = readFileSync(join(dir, OWNER_FILE), "utf8").split("\n");
    } catch {
      continue; // not a socket folder of ours, or not readable
    }
    if (recorded[1] !== owner || Number(recorded[0]) === process.pid) continue;
    rmSync(dir, { recursive: true, force: true });
    removed.push(dir);
  }
  return removed;
}

type TcpTransport = Extract<Transport, { kind: "tcp" }>;

export class ActorListener {
  private readonly expected = new Map<string, Expected>();
  private server: { close(): void } | undefined;
  /** The private folder of a Unix socket (removed on close). */
  private dir: string | undefined;
  /** Where actors connect back to: it goes into each spawn spec. */
  address!: ActorAddress;
  readonly helloTimeoutMs: number;

  private constructor(private readonly options: ListenerOptions) {
    this.helloTimeoutMs = options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS;
  }

  /** Binds the transport; throws TransportError naming the option or the address that failed. */
  static async open(options: ListenerOptions = {}): Promise<ActorListener> {
    const transport = parseTransport(options.transport);
    const listener = new ActorListener(options);
    const accept = (conn: Conn) => listener.accept(conn);
    if (transport.kind === "unix") await listener.openUnix(accept);
    else await listener.openTcp(transport, accept);
    return listener;
  }

  /** The Unix socket's path (a Unix transport only). */
  get path(): string {
    if (this.address.kind !== "unix") throw new TransportError(`this listener is on ${describeAddress(this.address)}, not a Unix socket`);
    return this.address.path;
  }

  private async openUnix(accept: (conn: Conn) => ConnHandlers): Promise<void> {
    this.dir = mkdtempSync(join(tmpdir(), SOCKET_DIR_PREFIX));
    chmodSync(this.dir, 0o700);
    if (this.options.owner) writeFileSync(join(this.dir, OWNER_FILE), `${process.pid}\n${this.options.owner}\n`);
    const path = join(this.dir, "coordinator.sock");
    this.server = await runtime.listenUnix(path, accept);
    this.address = { kind: "unix", path };
  }

  private async openTcp(t: TcpTransport, accept: (conn: Conn) => ConnHandlers): Promise<void> {
    const tls = t.tls && readTlsFiles(t.tls);
    const host = advertisedHost(t);
    try {
      const server = await runtime.listenTcp({ host: t.host, port: t.port, tls: tls && { cert: tls.cert, key: tls.key } }, accept);
      this.server = server;
      this.address = { kind: "tcp", host, port: server.port, ...(tls && { tls: { ca: tls.ca, serverName: t.tls!.serverName ?? host } }) };
    } catch (e) {
      const where = `${describeAddress({ kind: "tcp", host: t.host, port: t.port })}${tls ? " with TLS" : ""}`;
      throw new TransportError(`cannot listen for actors on ${where}: ${(e as Error).message}`);
    }
  }

  /** A new connection: until it has said a good hello it may only send hello-sized frames. */
  private accept(conn: Conn): ConnHandlers {
    // An unauthenticated client cannot make the coordinator allocate a large buffer.
    const channel = new Channel(this.options.maxFrameBytes);
    channel.limitIncoming(HELLO_MAX_FRAME_BYTES);
    channel.attach(conn);
    this.awaitHello(channel, conn.peer);
    return channel.connHandlers();
  }

  /** Registers a spawn; resolves with its channel once it connects and proves `token`. */
  expect(actor: string, incarnation: number, token: string): Promise<{ channel: Channel; hello: Hello }> {
    return new Promise((resolve) => this.expected.set(`${actor}#${incarnation}`, { token, resolve }));
  }

  /** Forgets a spawn that died before connecting. */
  forget(actor: string, incarnation: number): void {
    this.expected.delete(`${actor}#${incarnation}`);
  }

  /** The coordinator's half of the handshake (handshake.ts, steps 1, 3 and 4). */
  private awaitHello(channel: Channel, peer: string | undefined): void {
    const from = peer ? ` from ${peer}` : "";
    const challenge = newNonce();
    const reject = (reason: string) => {
      timer.cancel();
      this.options.onReject?.(`connection${from} refused: ${reason}`);
      channel.close();
    };
    const timer = after(this.helloTimeoutMs, () => reject(`no hello within the ${this.helloTimeoutMs} ms hello timeout`));
    channel.listen({
      message: (m) => {
        timer.cancel();
        if (m.t !== "hello") return reject(`first message was ${m.t}, expected hello`);
        const refusal = this.checkHello(m, challenge);
        if (refusal) return reject(refusal);
        const want = this.expected.get(`${m.actor}#${m.incarnation}`)!;
        this.expected.delete(`${m.actor}#${m.incarnation}`);
        channel.send({ t: "welcome", proof: coordinatorProof(want.token, m.actor, m.incarnation, challenge, m.nonce!) });
        channel.limitIncoming(this.options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES);
        channel.hold();
        want.resolve({ channel, hello: m });
      },
      close: (error) => {
        timer.cancel();
        if (error) this.options.onReject?.(`connection${from} failed before hello: ${error.message}`);
      },
    });
    channel.send({ t: "challenge", nonce: challenge });
  }

  /** Why a hello is refused, or undefined when it proves a token this listener expects. */
  private checkHello(m: Hello, challenge: string): string | undefined {
    const key = `${m.actor}#${m.incarnation}`;
    if (!isNonce(m.nonce)) return `hello from ${key} has no valid nonce (32 lowercase hex digits); is the actor host of another version?`;
    const malformed = malformedProof(m.token);
    if (malformed) return `hello from ${key}: ${malformed}`;
    const want = this.expected.get(key);
    if (!want) return `hello from ${key}, which is no spawn this coordinator expects (never started, or already connected)`;
    if (!sameProof(actorProof(want.token, m.actor, m.incarnation, challenge, m.nonce), m.token)) return `hello from ${key} proves a wrong token`;
    return undefined;
  }

  close(): void {
    this.server?.close();
    this.expected.clear();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** The PEM texts of a TLS transport: the server's chain and key, and what actors are to trust. */
function readTlsFiles(files: TlsFiles): { cert: string; key: string; ca: string } {
  const cert = readPem(files.certPath, "transport.tls.certPath");
  const key = readPem(files.keyPath, "transport.tls.keyPath");
  const ca = files.caPath ? readPem(files.caPath, "transport.tls.caPath") : cert;
  return { cert, key, ca };
}

function readPem(path: string, field: string): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new TransportError(`${field}: cannot read ${path}: ${(e as Error).message}`);
  }
  if (!text.includes("-----BEGIN ")) throw new TransportError(`${field}: ${path} is not PEM (no "-----BEGIN" line)`);
  return text;
}
