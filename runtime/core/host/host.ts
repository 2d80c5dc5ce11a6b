/**
 * The actor host: the entry point of every actor process (same runtime binary as the
 * coordinator). It connects back to the address in its spawn spec (the coordinator's Unix socket,
 * or TCP, optionally TLS), runs the handshake (ipc/handshake.ts: it proves its per-spawn token and
 * requires the coordinator to prove the same, so it never serves an impostor), instantiates its
 * role, serves calls strictly in order, answers pings and health probes at once even while a long
 * call runs, and exits when told to, on SIGTERM, or when the coordinator's connection is lost or
 * the coordinator fails the handshake (so no actor outlives its coordinator nor serves another).
 * A watchdog thread covers the case where this JS thread is stuck and cannot notice: see
 * orphan_watchdog.ts.
 */
import { runtime, type Conn, type ConnHandlers } from "../adapter/index.ts";
import { Channel } from "../ipc/channel.ts";
import { actorHandshake } from "../ipc/handshake.ts";
import type { Message } from "../ipc/messages.ts";
import { describeAddress, parseActorAddress, type ActorAddress } from "../ipc/transport.ts";
import { after, type Timer } from "../timers.ts";
import type { WatchdogStart } from "../supervisor/orphan_watchdog.ts";
import { EXIT, type Role, type RoleClass, type RoleContext, type SpawnSpec } from "./role.ts";

/** How often the watchdog thread checks that the parent process is still there. */
const ORPHAN_CHECK_MS = 500;

type Call = Extract<Message, { t: "call" }>;

/** A spawn spec that cannot be used is a configuration error: say what is wrong, exit 78. */
function badSpec(reason: string): never {
  console.error(`revenant host: ${reason}`);
  process.exit(EXIT.ROLE_START_FAILED);
}

function readSpec(): SpawnSpec {
  const text = process.env.REVENANT_ACTOR_SPEC;
  if (!text) badSpec("REVENANT_ACTOR_SPEC is not set; actor processes are started by the supervisor");
  let spec: SpawnSpec;
  try {
    spec = JSON.parse(text) as SpawnSpec;
    spec.address = parseActorAddress(spec.address);
  } catch (e) {
    badSpec(`REVENANT_ACTOR_SPEC is not a usable spawn spec: ${(e as Error).message}`);
  }
  if (!(typeof spec.helloTimeoutMs === "number" && spec.helloTimeoutMs > 0)) {
    badSpec(`the spawn spec's helloTimeoutMs must be a positive number of milliseconds, got ${JSON.stringify(spec.helloTimeoutMs)}`);
  }
  return spec;
}

/** The coordinator cannot be reached, or is not who it should be: nothing to serve. */
function coordinatorLost(reason: string): never {
  console.error(`revenant host: ${reason}`);
  process.exit(EXIT.COORDINATOR_LOST);
}

/**
 * Connects to the coordinator within `timeoutMs`: an address that swallows packets, or a server
 * that never finishes the TLS handshake, must not keep a remote actor waiting for the kernel.
 */
function connect(address: ActorAddress, handlers: ConnHandlers, timeoutMs: number): Promise<Conn> {
  const connecting = address.kind === "unix"
    ? runtime.connectUnix(address.path, handlers)
    : runtime.connectTcp({ host: address.host, port: address.port, tls: address.tls }, handlers);
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = after(timeoutMs, () => reject(new Error(`not connected within ${timeoutMs} ms`)))));
  return Promise.race([connecting, timeout]).finally(() => timer?.cancel());
}

/** Public methods of a role instance: functions on its prototype chain, minus Object's own. */
function methodsOf(instance: object): Set<string> {
  const names = new Set<string>();
  for (let p = Object.getPrototypeOf(instance); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const name of Object.getOwnPropertyNames(p)) {
      if (name !== "constructor" && typeof (instance as Record<string, unknown>)[name] === "function") names.add(name);
    }
  }
  return names;
}

function errorFields(e: unknown): { name: string; message: string; stack: string } {
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack ?? "" };
  return { name: "Error", message: String(e), stack: "" };
}

class Host {
  private role!: Role;
  private methods = new Set<string>();
  private queue: Call[] = [];
  private serving = false;
  private stopping = false;

  constructor(private readonly spec: SpawnSpec, private readonly channel: Channel) {}

  async start(): Promise<void> {
    const ctx: RoleContext = {
      actor: this.spec.actor,
      role: this.spec.role,
      rank: this.spec.rank,
      incarnation: this.spec.incarnation,
      log: (line) => this.channel.send({ t: "log", level: "info", line }),
    };
    let cls: RoleClass;
    try {
      const mod = (await import(this.spec.module)) as Record<string, unknown>;
      const found = mod[this.spec.export];
      if (typeof found !== "function") throw new TypeError(`module ${this.spec.module} has no exported class ${this.spec.export}`);
      cls = found as RoleClass;
      this.role = new cls(this.spec.options, ctx);
    } catch (e) {
      this.channel.send({ t: "fatal", ...errorFields(e) });
      await this.drain();
      process.exit(EXIT.ROLE_START_FAILED);
    }
    this.methods = methodsOf(this.role);
    const stateful = typeof this.role.getState === "function" && typeof this.role.loadState === "function";
    this.channel.send({ t: "ready", methods: [...this.methods], readOnly: [...(cls.readOnly ?? [])], stateful });
  }

  onMessage(m: Message): void {
    switch (m.t) {
      case "call":
        this.queue.push(m);
        if (!this.serving) void this.serve();
        return;
      case "ping":
        this.channel.send({ t: "pong", id: m.id });
        return;
      case "health":
        void this.health(m.id);
        return;
      case "shutdown":
        void this.exit(EXIT.OK);
        return;
      default:
        // Anything else from the coordinator is a protocol breach: stop.
        console.error(`revenant host: unexpected ${m.t} message from the coordinator`);
        void this.exit(EXIT.COORDINATOR_LOST);
    }
  }

  /** Serves queued calls one at a time, in arrival order. */
  private async serve(): Promise<void> {
    this.serving = true;
    while (this.queue.length > 0 && !this.stopping) {
      const call = this.queue.shift()!;
      try {
        // Synchronous results skip the await: one microtask less on the hot path.
        let value = this.invoke(call);
        if (value instanceof Promise) value = await value;
        try {
          this.channel.send({ t: "result", id: call.id, value });
        } catch (e) {
          this.channel.send({ t: "error", id: call.id, name: "ResultNotSendable", message: `result of ${call.method} cannot be sent: ${(e as Error).message}`, stack: "" });
        }
      } catch (e) {
        this.channel.send({ t: "error", id: call.id, ...errorFields(e) });
      }
    }
    this.serving = false;
  }

  private invoke(call: Call): unknown {
    const role = this.role as unknown as Record<string, (...a: unknown[]) => unknown>;
    switch (call.method) {
      case "__getState":
        return this.role.getState ? this.role.getState() : null;
      case "__loadState":
        if (!this.role.loadState) throw new TypeError(`role ${this.spec.role} has no loadState`);
        return this.role.loadState(call.args[0]);
    }
    if (!this.methods.has(call.method)) {
      throw new TypeError(`role ${this.spec.role} has no method ${JSON.stringify(call.method)}; it has: ${[...this.methods].sort().join(", ")}`);
    }
    return role[call.method]!(...call.args);
  }

  private async health(id: number): Promise<void> {
    const base = { ok: true, pid: process.pid, rss: process.memoryUsage().rss, queued: this.queue.length };
    try {
      const own = this.role.health ? await this.role.health() : {};
      this.channel.send({ t: "healthy", id, report: { ...base, ...own } });
    } catch (e) {
      this.channel.send({ t: "healthy", id, report: { ...base, ok: false, error: errorFields(e).message } });
    }
  }

  /** Waits until queued bytes have left (bounded), so a last message is not lost on exit. */
  async drain(): Promise<void> {
    for (let i = 0; i < 100 && this.channel.pendingBytes > 0; i++) await new Promise((r) => setTimeout(r, 5));
  }

  async exit(code: number): Promise<never> {
    this.stopping = true;
    await this.drain();
    process.exit(code);
  }
}

/** Starts the orphan watchdog thread; an actor that cannot start one still runs (and says so). */
function startWatchdog(): void {
  try {
    const worker = new Worker(new URL("../supervisor/orphan_watchdog.ts", import.meta.url).href, { type: "module" });
    worker.postMessage({ parent: process.ppid, intervalMs: ORPHAN_CHECK_MS } satisfies WatchdogStart);
    (worker as { unref?(): void }).unref?.(); // never what keeps the host alive
  } catch (e) {
    console.error(`revenant host: no orphan watchdog (${(e as Error).message}); the host still exits when its connection drops`);
  }
}

async function main(): Promise<void> {
  const spec = readSpec();
  startWatchdog();
  let host: Host | undefined;
  process.on("SIGTERM", () => {
    if (host) void host.exit(EXIT.OK);
    else process.exit(EXIT.OK);
  });
  const where = describeAddress(spec.address);
  // Nothing is listened to before the handshake: what arrives waits in the channel.
  const channel = new Channel(spec.maxFrameBytes);
  const conn = await connect(spec.address, channel.connHandlers(), spec.helloTimeoutMs).catch((e: Error) =>
    coordinatorLost(`cannot connect to the coordinator at ${where}: ${e.message}`));
  channel.attach(conn);
  const me = { actor: spec.actor, incarnation: spec.incarnation, token: spec.token, pid: process.pid };
  await actorHandshake(channel, me, spec.helloTimeoutMs, spec.maxFrameBytes).catch((e: Error) =>
    coordinatorLost(`handshake with the coordinator at ${where} failed: ${e.message}`));
  host = new Host(spec, channel);
  const serving = host;
  channel.listen({
    message: (m) => serving.onMessage(m),
    close: (error) => {
      // The coordinator is gone (or sent garbage): never outlive it.
      if (error) console.error(`revenant host: connection to the coordinator failed: ${error.message}`);
      process.exit(EXIT.COORDINATOR_LOST);
    },
  });
  await host.start();
}

await main();
