/**
 * Protocol fuzzing. (a) The frame decoder and asMessage, fed random bytes and mutated valid
 * frames: ProtocolError is the only exception they may throw. (b) A live coordinator: rogue
 * clients flooding its socket with garbage never disturb it or its actor; corrupt frames injected
 * into an actor's own channel kill that incarnation, which is restarted and replayed, so calls
 * keep returning the right values. Everything is seeded; a failure prints the seed (set
 * REVENANT_TEST_SEED to rerun it).
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { FaultTolerance } from "../../config/schema.ts";
import { runtime, type Conn } from "../../runtime/core/adapter/index.ts";
import type { Channel } from "../../runtime/core/ipc/channel.ts";
import { FrameDecoder, HEADER_BYTES, ProtocolError } from "../../runtime/core/ipc/frame.ts";
import type { ActorListener } from "../../runtime/core/ipc/listener.ts";
import { asMessage } from "../../runtime/core/ipc/messages.ts";
import { Rng } from "../../runtime/core/rng.ts";
import type { Actor } from "../../runtime/core/supervisor/actor.ts";
import type { Supervisor } from "../../runtime/core/supervisor/supervisor.ts";
import { makeSupervisor, sleep, waitFor } from "../helpers/supervision.ts";
import { concat, frameOf } from "../helpers/frames.ts";

const SEED = Number(process.env.REVENANT_TEST_SEED ?? 0x5eed);

const hex = (b: Uint8Array, max = 512) =>
  Buffer.from(b.subarray(0, max)).toString("hex") + (b.byteLength > max ? `... (${b.byteLength} bytes)` : "");


const randomBytes = (rng: Rng, n: number) => Uint8Array.from({ length: n }, () => rng.int(256));

/** A random well-formed message of any type, with typed arrays in some. */
function randomMessage(rng: Rng): Record<string, unknown> {
  const id = rng.int(1 << 20);
  const str = () => String.fromCharCode(...Array.from({ length: rng.int(12) }, () => 32 + rng.int(90)));
  const array = () => {
    const n = rng.int(20);
    switch (rng.int(4)) {
      case 0: return Float32Array.from({ length: n }, () => rng.next());
      case 1: return Float64Array.from({ length: n }, () => rng.next());
      case 2: return Int32Array.from({ length: n }, () => rng.nextU32() | 0);
      default: return randomBytes(rng, n);
    }
  };
  const shapes: (() => Record<string, unknown>)[] = [
    () => ({ t: "call", id, method: str(), args: [array(), { x: array(), s: str() }, id], deadline: rng.int(60) }),
    () => ({ t: "result", id, value: rng.int(2) ? array() : { a: [array(), array()], n: rng.next() } }),
    () => ({ t: "error", id, name: str(), message: str(), stack: str() }),
    () => ({ t: "hello", actor: str(), incarnation: rng.int(5), token: str(), pid: rng.int(1 << 16) }),
    () => ({ t: "ready", methods: [str(), str()], readOnly: [str()], stateful: rng.int(2) === 1 }),
    () => ({ t: "ping", id }),
    () => ({ t: "pong", id }),
    () => ({ t: "healthy", id, report: { ok: true, rss: rng.int(1 << 30) } }),
    () => ({ t: "log", level: "info", line: str() }),
    () => ({ t: "shutdown" }),
  ];
  return rng.pick(shapes)();
}


const EDGE_LENGTHS = [0, 1, 7, 8, 9, 0xff, 0x7fffffef, 0x7ffffff0, 0x7fffffff, 0x80000000, 0xfffffff0, 0xfffffff8, 0xffffffff];

/** One fuzz input: random bytes, or valid frames damaged in one of several ways. */
function fuzzInput(rng: Rng): { kind: string; bytes: Uint8Array } {
  const valid = frameOf(randomMessage(rng));
  const kinds = ["random", "bitflip", "truncate", "length", "splice", "insert", "header", "stream"] as const;
  const kind = rng.pick(kinds);
  switch (kind) {
    case "random":
      return { kind, bytes: randomBytes(rng, rng.int(300)) };
    case "bitflip": {
      const b = valid.slice();
      for (let i = 1 + rng.int(6); i > 0; i--) b[rng.int(b.byteLength)]! ^= 1 << rng.int(8);
      return { kind, bytes: b };
    }
    case "truncate":
      return { kind, bytes: valid.slice(0, rng.int(valid.byteLength)) };
    case "length": {
      const b = valid.slice();
      const view = new DataView(b.buffer);
      const field = rng.pick([8, 12]);
      const old = view.getUint32(field, true);
      const value = rng.pick([
        () => rng.pick(EDGE_LENGTHS),
        () => rng.nextU32(),
        () => Math.max(0, old + rng.int(33) - 16),
        () => old + 8 * (rng.int(5) - 2),
      ])();
      view.setUint32(field, value >>> 0, true);
      return { kind, bytes: b };
    }
    case "splice": {
      const other = frameOf(randomMessage(rng));
      return { kind, bytes: concat([valid.subarray(0, rng.int(valid.byteLength)), other.subarray(rng.int(other.byteLength))]) };
    }
    case "insert": {
      const at = rng.int(valid.byteLength);
      return { kind, bytes: concat([valid.subarray(0, at), randomBytes(rng, 1 + rng.int(16)), valid.subarray(at)]) };
    }
    case "header": {
      // A good header with a random rest: reaches body and tensor decoding.
      const b = valid.slice();
      for (let i = HEADER_BYTES; i < b.byteLength; i++) if (rng.int(4) === 0) b[i] = rng.int(256);
      return { kind, bytes: b };
    }
    case "stream": {
      // Good frames with a damaged one among them.
      const damaged = valid.slice();
      damaged[rng.int(damaged.byteLength)]! ^= 0xff;
      return { kind, bytes: concat([frameOf(randomMessage(rng)), damaged, frameOf(randomMessage(rng))]) };
    }
  }
}

type Outcome = "decoded" | "rejected" | "incomplete";

/**
 * Feeds bytes to a fresh decoder in random pieces, validating each message. Returns how it
 * ended; any exception other than ProtocolError escapes.
 */
function feed(rng: Rng, bytes: Uint8Array, maxFrameBytes: number): Outcome {
  const decoder = new FrameDecoder(maxFrameBytes);
  let at = 0;
  let decoded = 0;
  try {
    while (at < bytes.byteLength) {
      const n = 1 + rng.int(bytes.byteLength - at);
      for (const m of decoder.push(bytes.subarray(at, at + n))) {
        asMessage(m);
        decoded++;
      }
      at += n;
    }
  } catch (e) {
    if (e instanceof ProtocolError) return "rejected";
    throw e;
  }
  return decoded > 0 && at === bytes.byteLength ? "decoded" : "incomplete";
}

/** Mutated frames that a fresh decoder is sure to reject: each one must break a channel. */
function corruptFrame(rng: Rng): Uint8Array {
  for (;;) {
    const { bytes } = fuzzInput(rng);
    try {
      for (const m of new FrameDecoder().push(bytes)) asMessage(m);
    } catch (e) {
      if (e instanceof ProtocolError) return bytes;
      throw e;
    }
  }
}

describe("decoder fuzz", () => {
  test("5000 random and mutated inputs: ProtocolError is the only exception", () => {
    const rng = new Rng(SEED);
    const outcomes: Record<Outcome, number> = { decoded: 0, rejected: 0, incomplete: 0 };
    const byKind = new Map<string, number>();
    for (let i = 0; i < 5000; i++) {
      const { kind, bytes } = fuzzInput(rng);
      // Mostly a 1 MiB limit; some inputs get the default 1 GiB one, as a real channel has.
      const max = i % 10 === 0 ? undefined : 1 << 20;
      try {
        outcomes[feed(rng, bytes, max ?? 1 << 30)]++;
      } catch (e) {
        throw new Error(`seed ${SEED} input #${i} (${kind}, limit ${max ?? "default"}) threw ${(e as Error)?.name}: ${(e as Error)?.message}\ninput: ${hex(bytes)}`);
      }
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
    }
    console.log(`decoder fuzz seed ${SEED}: ${JSON.stringify(outcomes)}`);
    // The fuzz must exercise all three outcomes, or it tests less than it claims.
    for (const o of Object.keys(outcomes) as Outcome[]) expect(outcomes[o], `seed ${SEED}: ${JSON.stringify(outcomes)}`).toBeGreaterThan(100);
    expect(byKind.size).toBe(8);
  });

  test("raw random streams of many kilobytes", () => {
    const rng = new Rng(SEED + 1);
    for (let i = 0; i < 50; i++) {
      const bytes = randomBytes(rng, 4096 + rng.int(60_000));
      try {
        feed(rng, bytes, 1 << 20);
      } catch (e) {
        throw new Error(`seed ${SEED + 1} stream #${i} threw ${(e as Error)?.name}: ${(e as Error)?.message}\ninput: ${hex(bytes)}`);
      }
    }
  });
});

describe("live fuzz", () => {
  const crashes: unknown[] = [];
  const onCrash = (e: unknown) => crashes.push(e);
  process.on("uncaughtException", onCrash);
  process.on("unhandledRejection", onCrash);
  afterAll(() => {
    process.off("uncaughtException", onCrash);
    process.off("unhandledRejection", onCrash);
  });

  async function withCounter(body: (sup: Supervisor, actor: Actor) => Promise<void>, ft: Partial<FaultTolerance> = {}): Promise<void> {
    const { sup, output } = makeSupervisor({ max_restarts: -1, max_task_retries: -1, ...ft });
    try {
      await sup.start([{ id: "c", role: "counter" }]);
      await body(sup, sup.actor("c"));
      expect(crashes, `seed ${SEED}: the coordinator threw`).toEqual([]);
      expect(sup.failure, `seed ${SEED}: ${sup.failure?.reason}`).toBeUndefined();
    } catch (e) {
      (e as Error).message = `[seed ${SEED}; rerun with REVENANT_TEST_SEED=${SEED}] ${(e as Error).message}\nactor output:\n${output.slice(-20).join("\n")}`;
      throw e;
    } finally {
      await sup.shutdown();
    }
  }

  test("rogue clients on the coordinator socket: the coordinator and its actor carry on", async () => {
    await withCounter(async (sup, actor) => {
      const rng = new Rng(SEED + 2);
      const listener = (sup as unknown as { listener: ActorListener }).listener;
      const pid = actor.pid;
      let expected = 0;
      let frames = 0;
      let closedByServer = 0;
      let written = 0;
      /** One rogue connection: a burst of garbage (a protocol error usually ends it early). */
      const rogue = async () => {
        let closed = false;
        const conn: Conn = await runtime.connectUnix(listener.path, {
          data() {},
          close: () => {
            if (!closed) closedByServer++;
            closed = true;
          },
        });
        const burst = 4 + rng.int(12);
        for (let i = 0; i < burst && !closed; i++) {
          // Mostly garbage; sometimes a well-formed message (a hello with a made-up token included).
          const bytes = rng.int(5) === 0 ? frameOf(randomMessage(rng)) : fuzzInput(rng).bytes;
          conn.write(bytes);
          frames++;
          if (rng.int(4) === 0) await sleep(0);
        }
        written++;
        if (!closed) {
          closed = true;
          conn.close();
        }
      };
      for (let round = 0; round < 80; round++) {
        // Ten rogues at once, and a real call among them.
        const k = 1 + rng.int(5);
        expected += k;
        const [value] = await Promise.all([actor.call("add", [k]), ...Array.from({ length: 10 }, rogue)]);
        expect(value).toBe(expected);
      }
      console.log(`live fuzz seed ${SEED}: ${frames} rogue frames on ${written} connections, ${closedByServer} dropped by the coordinator`);
      expect(frames).toBeGreaterThan(2500);
      expect(await actor.call("value")).toBe(expected);
      expect(sup.events.events.filter((e) => e.type === "death"), "the actor was disturbed").toEqual([]);
      expect(sup.events.events.filter((e) => e.type === "death"), "the actor was not disturbed").toEqual([]);
      expect(actor.pid).toBe(pid!);
      expect(actor.restarts).toBe(0);
      // Most rogue connections were dropped by the coordinator (the rest closed by us first).
      expect(closedByServer).toBeGreaterThan(written / 2);
    });
  }, 30_000);

  // A connection that has not said hello is held to a hello-sized frame limit: 16 bytes from any
  // local client must not make the coordinator allocate the frame they claim.
  test("a pre-hello header claiming a 256 MiB frame is refused at once", async () => {
    await withCounter(async (sup) => {
      const listener = (sup as unknown as { listener: ActorListener }).listener;
      let closed = false;
      const conn = await runtime.connectUnix(listener.path, { data() {}, close: () => (closed = true) });
      const header = new Uint8Array(HEADER_BYTES);
      const view = new DataView(header.buffer);
      view.setUint32(0, 0x52564e54, true);
      view.setUint16(4, 1, true);
      view.setUint32(8, 256 << 20, true);
      conn.write(header);
      await sleep(500);
      const refused = closed;
      conn.close();
      expect(refused, "the coordinator still waits for the 256 MiB frame of an unauthenticated client").toBe(true);
    });
  });

  test("corrupt frames injected into an actor's channel: each kills its incarnation, calls stay right", async () => {
    await withCounter(async (sup, actor) => {
      const rng = new Rng(SEED + 3);
      const injections = 30;
      let expected = 0;
      const pids = new Set<number>();
      for (let i = 0; i < injections; i++) {
        await waitFor(() => actor.state === "alive", `actor alive before injection ${i}`);
        const k = 1 + rng.int(9);
        expected += k;
        expect(await actor.call("add", [k])).toBe(expected);
        pids.add(actor.pid!);
        const channel = (actor.current as unknown as { channel: Channel }).channel;
        const bytes = corruptFrame(rng);
        // Half the time a call is in flight when the frame arrives: it is lost and retried.
        const inFlight = rng.int(2) === 0 ? actor.call<number>("add", [1]) : undefined;
        if (inFlight) expected += 1;
        try {
          channel.receive(bytes);
        } catch (e) {
          throw new Error(`injection ${i}: Channel.receive threw ${(e as Error).message}\ninput: ${hex(bytes)}`);
        }
        expect(channel.isClosed, `injection ${i} did not close the channel; input: ${hex(bytes)}`).toBe(true);
        if (inFlight) expect(await inFlight).toBe(expected);
        expect(await actor.call("value")).toBe(expected);
      }
      const deaths = sup.events.events.filter((e) => e.type === "death");
      expect(deaths).toHaveLength(injections);
      expect(deaths.every((e) => e.cause === "protocol")).toBe(true);
      expect(actor.restarts).toBe(injections);
      expect(sup.events.count("restart")).toBe(injections);
      expect(pids.size).toBe(injections);
      expect(await actor.call("add", [0])).toBe(expected);
    });
  }, 30_000);
});
