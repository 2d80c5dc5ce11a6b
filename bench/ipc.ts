/**
 * IPC benchmark: Revenant actors (Unix socket, msgpack frames, zero-copy typed arrays) against
 * a Node-style baseline (node:child_process fork() with process.send over its IPC channel,
 * echoing from bench/fork_child.cjs), measured side by side in one run. Prints a Markdown table;
 * asserts nothing.
 *
 *   bun bench/ipc.ts             (BENCH_QUICK=1 for a short smoke run)
 *   deno run -A bench/ipc.ts
 *
 * (a) small-call round trip: sequential `value()` calls on a counter vs an echoed message.
 * (b) 16 MiB Float32Array: to an accumulator (`touch`, answers a number) and back (`roundTrip`),
 *     vs fork() sending the same array ("advanced" = structured clone, "json" = default).
 * (c) restart latency: SIGKILL an accumulator holding a 10 MiB state (snapshotted), time until the
 *     next call returns: detection, backoff, spawn, connect, restore of the state, the call.
 * (d) transports: (a) and (b)'s touch again with actors connected over TCP loopback, and over TLS
 *     on loopback (when `openssl` can make a certificate), beside the Unix socket's figures.
 */
import { fork, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { cpus, platform, release } from "node:os";
import { fileURLToPath } from "node:url";
import { runtime, type Conn } from "../runtime/core/adapter/index.ts";
import type { Actor } from "../runtime/core/supervisor/actor.ts";
import type { Transport } from "../runtime/core/ipc/transport.ts";
import { FaultToleranceSchema } from "../runtime/core/supervisor/options.ts";
import { Supervisor } from "../runtime/core/supervisor/supervisor.ts";
import { IPC_ROLES } from "./ipc_roles.ts";
import { selfSignedCert } from "./tls_cert.ts";

const QUICK = process.env.BENCH_QUICK === "1";
const SMALL_CALLS = QUICK ? 2_000 : 20_000;
const SMALL_WARMUP = QUICK ? 200 : 2_000;
const TRANSFERS = QUICK ? 5 : 30;
const JSON_TRANSFERS = 1; // one json transfer takes seconds
const KILLS = QUICK ? 5 : 20;
const ARRAY_BYTES = 16 << 20;
const STATE_FLOATS = 2_621_440; // 10 MiB of float32

const TARGET = { callP50Us: 50, transferGBs: 2, restartMs: 80 };
const CHILD = fileURLToPath(new URL("./fork_child.cjs", import.meta.url));
const SOCKET_CHILD = fileURLToPath(new URL("./socket_child.ts", import.meta.url));

function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

async function timeEach(n: number, op: () => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await op();
    ms.push(performance.now() - t0);
  }
  return ms;
}

/** A fork()ed echo child, answering messages one at a time. */
class ForkBaseline {
  private readonly child: ChildProcess;
  private waiting: ((m: unknown) => void) | undefined;

  constructor(serialization: "json" | "advanced") {
    this.child = fork(CHILD, [], { serialization, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.child.on("message", (m) => {
      const w = this.waiting;
      this.waiting = undefined;
      w?.(m);
    });
  }

  request(message: unknown): Promise<unknown> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.child.send(message as never);
    });
  }

  close(): void {
    this.child.kill("SIGKILL");
  }
}

const gbps = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1000);
const fmt = (x: number, digits = 1) => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");

interface Row {
  measure: string;
  ours: string;
  baseline: string;
  ratio: string;
  target: string;
}
const rows: Row[] = [];

// Production-like liveness (a 16 MiB frame is not a missed ping), tiny backoff for (c).
const benchSupervisor = (transport?: Transport) => ({
  sup: new Supervisor({
    faultTolerance: FaultToleranceSchema.parse({
      max_restarts: -1, max_task_retries: -1, ping_interval_s: 1, ping_timeout_s: 10,
      restart_backoff_initial_s: 0.001, restart_backoff_max_s: 0.001, restart_intensity: 1000,
    }),
    roles: IPC_ROLES,
    output: () => {},
    transport,
  }),
});
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const { sup } = benchSupervisor();

/** Sequential small-call round trips (after a warm-up), ms each. */
async function callTimes(counter: Actor): Promise<number[]> {
  await timeEach(SMALL_WARMUP, () => counter.call("value"));
  return await timeEach(SMALL_CALLS, () => counter.call("value"));
}

/** p50 ms of sending the 16 MiB array to an accumulator (`touch`), after a warm-up. */
async function touchP50(acc: Actor, x: Float32Array): Promise<number> {
  const touch = () => acc.call("touch", [x]);
  await timeEach(3, touch);
  return quantile(await timeEach(TRANSFERS, touch), 0.5);
}

/** Unix-socket figures (a) and (b), the reference for the other transports in (d). */
const unix = { callsMs: [] as number[], touchMs: NaN };

async function smallCalls(counter: Actor): Promise<void> {
  const ours = await callTimes(counter);
  unix.callsMs = ours;
  const base = new ForkBaseline("json");
  const msg = { t: "value" };
  await timeEach(SMALL_WARMUP, () => base.request(msg));
  const theirs = await timeEach(SMALL_CALLS, () => base.request(msg));
  base.close();
  for (const [q, name] of [[0.5, "p50"], [0.99, "p99"]] as const) {
    const a = quantile(ours, q) * 1000;
    const b = quantile(theirs, q) * 1000;
    rows.push({
      measure: `(a) small call round trip ${name}, µs (${SMALL_CALLS} sequential)`,
      ours: fmt(a), baseline: `${fmt(b)} (json)`, ratio: `${fmt(b / a, 2)}×`,
      target: q === 0.5 ? `≤ ${TARGET.callP50Us} µs` : "",
    });
  }
}

async function transfers(acc: Actor): Promise<void> {
  const x = new Float32Array(ARRAY_BYTES / 4);
  for (let i = 0; i < x.length; i++) x[i] = i % 1000;
  const roundTrip = async () => {
    const y = await acc.call<Float32Array>("roundTrip", [x]);
    if (y.length !== x.length || y[999] !== 999) throw new Error("roundTrip returned the wrong array");
  };
  const oursTouch = await touchP50(acc, x);
  unix.touchMs = oursTouch;
  await timeEach(3, roundTrip);
  const oursRound = quantile(await timeEach(TRANSFERS, roundTrip), 0.5);

  const adv = new ForkBaseline("advanced");
  await timeEach(2, () => adv.request({ t: "touch", x }));
  const advTouch = quantile(await timeEach(TRANSFERS, () => adv.request({ t: "touch", x })), 0.5);
  await timeEach(2, () => adv.request({ t: "echo", x }));
  const advRound = quantile(await timeEach(TRANSFERS, () => adv.request({ t: "echo", x })), 0.5);
  adv.close();
  const json = new ForkBaseline("json");
  const jsonTouch = quantile(await timeEach(JSON_TRANSFERS, () => json.request({ t: "touch", x })), 0.5);
  json.close();

  const raw = await rawSocket(x);
  rows.push({
    measure: `(b) 16 MiB Float32Array to actor (touch), GB/s p50 of ${TRANSFERS}`,
    ours: `${fmt(gbps(ARRAY_BYTES, oursTouch), 2)} (${fmt(oursTouch)} ms)`,
    baseline: `${fmt(gbps(ARRAY_BYTES, advTouch), 2)} (${fmt(advTouch)} ms, advanced)`,
    ratio: `${fmt(advTouch / oursTouch, 2)}×`,
    target: `≥ ${TARGET.transferGBs} GB/s`,
  });
  rows.push({
    measure: "(b) ceiling: same 16 MiB as raw bytes over the adapter's Unix socket (no frames)",
    ours: "",
    baseline: `${fmt(gbps(ARRAY_BYTES, raw), 2)} (${fmt(raw)} ms, raw socket)`,
    ratio: `${fmt(raw / oursTouch, 2)}×`,
    target: "",
  });
  rows.push({
    measure: "(b) same, fork() with default json serialisation",
    ours: "",
    baseline: `${fmt(gbps(ARRAY_BYTES, jsonTouch), 3)} (${fmt(jsonTouch, 0)} ms, json, p50 of ${JSON_TRANSFERS})`,
    ratio: `${fmt(jsonTouch / oursTouch, 0)}×`,
    target: "",
  });
  rows.push({
    measure: "(b) 16 MiB round trip (roundTrip), GB/s p50, both directions counted (2 × 16 MiB)",
    ours: `${fmt(gbps(2 * ARRAY_BYTES, oursRound), 2)} (${fmt(oursRound)} ms)`,
    baseline: `${fmt(gbps(2 * ARRAY_BYTES, advRound), 2)} (${fmt(advRound)} ms, advanced)`,
    ratio: `${fmt(advRound / oursRound, 2)}×`,
    target: `≥ ${TARGET.transferGBs} GB/s`,
  });
}

/** The ceiling: the same 16 MiB as raw bytes over the adapter's Unix socket, no framing or decoding. */
async function rawSocket(x: Float32Array): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "revenant-bench-"));
  const path = join(dir, "raw.sock");
  let acked: (() => void) | undefined;
  let connected!: (c: Conn) => void;
  const peer = new Promise<Conn>((r) => (connected = r));
  const server = await runtime.listenUnix(path, (conn) => {
    connected(conn);
    return { data: () => acked?.(), close() {} };
  });
  const child = runtime.spawn({ module: SOCKET_CHILD, args: [path, String(x.byteLength)], env: { ...(process.env as Record<string, string>) } });
  const conn = await peer;
  const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  const once = () => new Promise<void>((r) => {
    acked = r;
    conn.write(bytes);
  });
  await timeEach(3, once);
  const p50 = quantile(await timeEach(TRANSFERS, once), 0.5);
  child.kill("SIGKILL");
  await child.exited;
  server.close();
  rmSync(dir, { recursive: true, force: true });
  return p50;
}

async function restarts(acc: Actor): Promise<void> {
  await acc.takeSnapshot();
  const ms: number[] = [];
  for (let i = 0; i < KILLS + 2; i++) {
    const pid = acc.pid!;
    const t0 = performance.now();
    process.kill(pid, "SIGKILL");
    const size = await acc.call<number>("size");
    const dt = performance.now() - t0;
    if (size !== STATE_FLOATS || acc.pid === pid) throw new Error(`restart ${i}: size ${size}, pid ${acc.pid} (was ${pid})`);
    if (i >= 2) ms.push(dt); // the first two warm up the restore path
    await sleep(20);
  }
  rows.push({
    measure: `(c) restart latency p50, ms: SIGKILL → next call returns, 10 MiB state restored (${KILLS} kills)`,
    ours: fmt(quantile(ms, 0.5)), baseline: "", ratio: "", target: `≤ ${TARGET.restartMs} ms`,
  });
  rows.push({ measure: "(c) restart latency p99, ms", ours: fmt(quantile(ms, 0.99)), baseline: "", ratio: "", target: "" });
}

/** (d): a supervisor whose actors connect over `transport`, measured as (a) and (b)'s touch. */
async function overTransport(name: string, transport: Transport): Promise<void> {
  const { sup: other } = benchSupervisor(transport);
  try {
    await other.start([{ id: "counter", role: "counter" }, { id: "acc", role: "accumulator" }]);
    const calls = await callTimes(other.actor("counter"));
    const x = new Float32Array(ARRAY_BYTES / 4);
    const touch = await touchP50(other.actor("acc"), x);
    for (const [q, label] of [[0.5, "p50"], [0.99, "p99"]] as const) {
      const a = quantile(calls, q) * 1000;
      const b = quantile(unix.callsMs, q) * 1000;
      rows.push({ measure: `(d) ${name}: small call round trip ${label}, µs`, ours: fmt(a), baseline: `${fmt(b)} (Unix socket)`, ratio: `${fmt(b / a, 2)}×`, target: "" });
    }
    rows.push({
      measure: `(d) ${name}: 16 MiB Float32Array to actor (touch), GB/s p50 of ${TRANSFERS}`,
      ours: `${fmt(gbps(ARRAY_BYTES, touch), 2)} (${fmt(touch)} ms)`,
      baseline: `${fmt(gbps(ARRAY_BYTES, unix.touchMs), 2)} (${fmt(unix.touchMs)} ms, Unix socket)`,
      ratio: `${fmt(unix.touchMs / touch, 2)}×`, target: "",
    });
  } finally {
    await other.shutdown();
  }
}

async function transports(): Promise<void> {
  const tcp = { kind: "tcp", host: "127.0.0.1", port: 0 } as const;
  await overTransport("TCP loopback", tcp);
  const cert = selfSignedCert(mkdtempSync(join(tmpdir(), "revenant-bench-tls-")));
  if ("skip" in cert) {
    rows.push({ measure: "(d) TLS on loopback: not measured", ours: "", baseline: cert.skip, ratio: "", target: "" });
    return;
  }
  await overTransport("TLS on loopback", { ...tcp, tls: cert });
}

try {
  await sup.start([
    { id: "counter", role: "counter" },
    { id: "acc", role: "accumulator" },
    { id: "state", role: "accumulator", options: { size: STATE_FLOATS } },
  ]);
  await smallCalls(sup.actor("counter"));
  await transfers(sup.actor("acc"));
  await restarts(sup.actor("state"));
} finally {
  await sup.shutdown();
}
await transports();

const cpu = cpus()[0]?.model ?? "unknown CPU";
console.log(`\nRevenant IPC benchmark: ${runtime.name} ${runtime.version}, ${platform()} ${release()}, ${cpu} × ${cpus().length}${QUICK ? " (BENCH_QUICK)" : ""}\n`);
console.log("| Measure | Revenant actor | Baseline | Speed-up (baseline time ÷ Revenant time; > 1: Revenant faster) | Target |");
console.log("|---|---:|---:|---:|---|");
for (const r of rows) console.log(`| ${r.measure} | ${r.ours} | ${r.baseline} | ${r.ratio} | ${r.target} |`);
console.log("\nBaselines: fork() + process.send (json = default serialisation, advanced = structured clone) from bench/fork_child.cjs; raw socket from bench/socket_child.ts; for (d), the Unix-socket actors of (a) and (b).");
