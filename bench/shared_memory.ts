/**
 * Shared-memory benchmark: bulk floats from the coordinator to actor processes through a shared
 * segment (native/shared_memory.ts) against today's path, the same Float32Array as a call argument
 * over the actor's Unix socket, side by side in one run with the real Supervisor. Prints a
 * Markdown table; asserts nothing beyond checking that every transfer delivered the current data.
 *
 *   bun bench/shared_memory.ts            (BENCH_QUICK=1 for a short run)
 *
 * (a) 16 MiB, producer buffer → consumer buffer, one consumer. Segment: the coordinator copies
 *     its buffer into the segment, then a small call tells the consumer, which copies the segment
 *     into its own buffer and answers; the clock runs from before the first copy to the answer.
 *     Socket: the array is the call's argument; the consumer keeps the array the frame decoder
 *     gives it (memory it owns, so no further copy) and answers. Both end with the data in memory
 *     the consumer owns. Also: the segment path when the producer's data already sits in the
 *     segment (only the consumer's copy is left), and one in-process copy of 16 MiB, the ceiling
 *     each copy is bound by.
 * (b) weight broadcast of a 4.1M-parameter model (15.7 MiB) to N = 1, 2, 4 actors, each loading
 *     them into its own model (loadParamsFrom). Segment: written once, then every consumer loads
 *     from it; or, zero copy, every consumer's model computes from it (computeFrom). Socket: the array is sent to each consumer, which loads from what it received. The
 *     clock stops when all N have loaded.
 * Mapping a segment is done once, outside the timings (a long-lived segment is the intended use);
 * its cost is reported on its own row.
 */
import { cpus, platform, release } from "node:os";
import { fileURLToPath } from "node:url";
import { FaultToleranceSchema } from "../config/schema.ts";
import { runtime } from "../runtime/core/adapter/index.ts";
import type { Actor } from "../runtime/core/supervisor/actor.ts";
import { Supervisor } from "../runtime/core/supervisor/supervisor.ts";
import { SharedSegment } from "../native/shared_memory.ts";
import type { PolicyModelConfig } from "../native/policy_model.ts";

const QUICK = process.env.BENCH_QUICK === "1";
const REPEATS = QUICK ? 20 : 50; // p50 of at least 20 either way
const WARMUP = 3;
const BYTES = 16 << 20;
const FLOATS = BYTES / 4;
const CONSUMERS = [1, 2, 4];
const TARGET_GBS = 10;
/** GPT-2 style, 4,113,152 parameters: about 16 MiB of weights, as (a) moves. */
const MODEL: PolicyModelConfig = { vocab: 256, context: 128, width: 256, layers: 5, heads: 4, seed: 1 };

const ROLE_MODULE = fileURLToPath(new URL("./shared_memory_role.ts", import.meta.url));
type Stamp = [number, number];

function quantile(samples: readonly number[], q: number): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

/**
 * p50 in ms of `op` over REPEATS runs after WARMUP; `op` gets the run's number (for stamping).
 * `after` runs after each, off the clock (checks that need another call).
 */
async function p50(op: (i: number) => Promise<void>, after?: (i: number) => Promise<void>): Promise<number> {
  const ms: number[] = [];
  for (let i = -WARMUP; i < REPEATS; i++) {
    const t0 = performance.now();
    await op(i);
    if (i >= 0) ms.push(performance.now() - t0);
    await after?.(i);
  }
  return quantile(ms, 0.5);
}

const gbps = (bytes: number, ms: number) => bytes / 1e9 / (ms / 1000);
const fmt = (x: number, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");
const cell = (bytes: number, ms: number) => `${fmt(gbps(bytes, ms))} GB/s (${fmt(ms)} ms)`;

/** Marks a buffer with the run's number at both ends, so a stale delivery shows. */
function stampBuffer(x: Float32Array, i: number): Stamp {
  x[0] = i;
  x[x.length - 1] = -i;
  return [i, -i];
}

function expectStamp(what: string, got: Stamp, want: Stamp): void {
  if (got[0] !== want[0] || got[1] !== want[1]) throw new Error(`${what}: consumer got [${got}], expected [${want}]`);
}

interface Row {
  measure: string;
  segment: string;
  socket: string;
  ratio: string;
  target: string;
}
const rows: Row[] = [];

/** (a): one consumer, 16 MiB from the coordinator's buffer into the consumer's. */
async function pointToPoint(consumer: Actor, seg: SharedSegment): Promise<void> {
  const buf = new Float32Array(FLOATS).map((_, i) => i % 1000);
  const view = seg.floats(0, FLOATS);
  const viaSegment = await p50(async (i) => {
    const want = stampBuffer(buf, i);
    view.set(buf);
    expectStamp("segment", await consumer.call<Stamp>("fromSegment", [0, FLOATS]), want);
  });
  const zeroCopy = await p50(async (i) => {
    const want = stampBuffer(buf, i);
    view.set(buf);
    expectStamp("segment, zero copy", await consumer.call<Stamp>("inSegment", [0, FLOATS]), want);
  });
  const viaSocket = await p50(async (i) => {
    const want = stampBuffer(buf, i);
    expectStamp("socket", await consumer.call<Stamp>("fromSocket", [buf]), want);
  });
  // The producer's tensor already lives in the segment (it computed into it, or copyParamsTo).
  const inPlace = await p50(async (i) => {
    const want = stampBuffer(view, i);
    expectStamp("segment in place", await consumer.call<Stamp>("fromSegment", [0, FLOATS]), want);
  });
  const other = new Float32Array(FLOATS);
  const oneCopy = await p50(async () => other.set(buf));

  rows.push({
    measure: `(a) 16 MiB producer buffer → consumer, zero copy (the consumer computes from the segment), p50 of ${REPEATS}`,
    segment: cell(BYTES, zeroCopy), socket: cell(BYTES, viaSocket),
    ratio: `${fmt(viaSocket / zeroCopy)}×`, target: `≥ ${TARGET_GBS} GB/s: ${gbps(BYTES, zeroCopy) >= TARGET_GBS ? "met" : "missed"}`,
  });
  rows.push({
    measure: `(a) 16 MiB producer buffer → consumer buffer (the consumer copies it out), p50 of ${REPEATS}`,
    segment: cell(BYTES, viaSegment), socket: cell(BYTES, viaSocket),
    ratio: `${fmt(viaSocket / viaSegment)}×`, target: "",
  });
  rows.push({
    measure: "(a) same, producer data already in the segment (consumer's copy and the call only)",
    segment: cell(BYTES, inPlace), socket: "", ratio: `${fmt(viaSocket / inPlace)}×`, target: "",
  });
  rows.push({
    measure: "(a) ceiling: one 16 MiB Float32Array.set in the coordinator (the segment path makes two)",
    segment: cell(BYTES, oneCopy), socket: "", ratio: "", target: "",
  });
}

/** (b): the model's weights to the first `n` consumers; all must have loaded them. */
async function broadcast(consumers: Actor[], seg: SharedSegment, numParams: number): Promise<void> {
  const weights = new Float32Array(numParams).map((_, i) => Math.sin(i));
  const view = seg.floats(0, numParams);
  const bytes = numParams * 4;
  for (const n of CONSUMERS) {
    const group = consumers.slice(0, n);
    // Each run stamps the weights; after it, off the clock, every consumer's model must hold them.
    const stamped = (send: () => Promise<unknown>) => async (i: number) => {
      stampBuffer(weights, i);
      await send();
    };
    const check = (what: string) => async (i: number) => {
      for (const c of group) expectStamp(`${what} to ${c.id}`, await c.call<Stamp>("modelStamp"), [i, -i]);
    };
    const viaSegment = await p50(stamped(async () => {
      view.set(weights);
      await Promise.all(group.map((c) => c.call("loadFromSegment")));
    }), check("segment"));
    const zeroCopy = await p50(stamped(async () => {
      view.set(weights);
      await Promise.all(group.map((c) => c.call("computeFromSegment")));
    }), check("segment, zero copy"));
    const viaSocket = await p50(stamped(() => Promise.all(group.map((c) => c.call("loadFromSocket", [weights])))), check("socket"));
    rows.push({
      measure: `(b) broadcast ${fmt(bytes / 2 ** 20, 1)} MiB of weights to N = ${n}, zero copy (computeFrom in each), p50 of ${REPEATS}`,
      segment: `${fmt(zeroCopy)} ms (${fmt(gbps(n * bytes, zeroCopy))} GB/s delivered)`,
      socket: `${fmt(viaSocket)} ms (${fmt(gbps(n * bytes, viaSocket))} GB/s delivered)`,
      ratio: `${fmt(viaSocket / zeroCopy)}×`, target: "",
    });
    rows.push({
      measure: `(b) broadcast ${fmt(bytes / 2 ** 20, 1)} MiB of weights to N = ${n} (loadParamsFrom in each), until all have them, p50 of ${REPEATS}`,
      segment: `${fmt(viaSegment)} ms (${fmt(gbps(n * bytes, viaSegment))} GB/s delivered)`,
      socket: `${fmt(viaSocket)} ms (${fmt(gbps(n * bytes, viaSocket))} GB/s delivered)`,
      ratio: `${fmt(viaSocket / viaSegment)}×`, target: "",
    });
  }
}

async function main(): Promise<void> {
  const sup = new Supervisor({
    // Production-like liveness: a 16 MiB frame is not a missed ping.
    faultTolerance: FaultToleranceSchema.parse({ ping_interval_s: 1, ping_timeout_s: 10, shutdown_grace_s: 1 }),
    roles: { shm_consumer: { module: ROLE_MODULE, export: "ShmConsumer" } },
  });
  const tag = `${process.pid}-${Date.now().toString(36)}`;
  const segments: SharedSegment[] = [];
  try {
    const ids = Array.from({ length: Math.max(...CONSUMERS) }, (_, i) => `consumer${i}`);
    await sup.start(ids.map((id) => ({ id, role: "shm_consumer", options: { floats: FLOATS, model: MODEL } })));
    const consumers = ids.map((id) => sup.actor(id));
    const numParams = await consumers[0]!.call<number>("numParams");

    const t0 = performance.now();
    const data = SharedSegment.create(`/dev/shm/revenant-bench-data-${tag}`, BYTES);
    const createMs = performance.now() - t0;
    segments.push(data);
    const attachMs = await consumers[0]!.call<number>("attach", [data.path, BYTES]);
    await pointToPoint(consumers[0]!, data);

    const weights = SharedSegment.create(`/dev/shm/revenant-bench-weights-${tag}`, numParams * 4);
    segments.push(weights);
    for (const c of consumers) await c.call("attach", [weights.path, weights.byteLength]);
    rows.push({
      measure: "setup, once per segment: create + map 16 MiB (coordinator) / open + map (consumer)",
      segment: `${fmt(createMs)} ms / ${fmt(attachMs)} ms`, socket: "", ratio: "", target: "",
    });
    await broadcast(consumers, weights, numParams);
  } finally {
    for (const seg of segments) seg.unlink();
    await sup.shutdown();
  }
}

await main();
const cpu = cpus()[0]?.model ?? "unknown CPU";
console.log(`\nRevenant shared-memory benchmark: ${runtime.name} ${runtime.version}, ${platform()} ${release()}, ${cpu} × ${cpus().length}${QUICK ? " (BENCH_QUICK)" : ""}\n`);
console.log("| Measure | Shared segment | Unix socket (today) | Speed-up (socket time ÷ segment time) | Target |");
console.log("|---|---:|---:|---:|---|");
for (const r of rows) console.log(`| ${r.measure} | ${r.segment} | ${r.socket} | ${r.ratio} | ${r.target} |`);
