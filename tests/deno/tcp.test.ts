/**
 * Actors over TCP and TLS under Deno: Deno coordinator, Deno actor processes. The handshake's
 * refusals both ways, and a stalled peer. Run with `deno test -A tests/deno/tcp.test.ts`.
 */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { runtime, type Conn } from "../../runtime/core/adapter/index.ts";
import { hangActor, killActor } from "../../runtime/core/chaos.ts";
import { EXIT, type SpawnSpec } from "../../runtime/core/host/role.ts";
import { Channel } from "../../runtime/core/ipc/channel.ts";
import { DEFAULT_MAX_FRAME_BYTES } from "../../runtime/core/ipc/frame.ts";
import { actorProof, newNonce } from "../../runtime/core/ipc/handshake.ts";
import { ActorListener } from "../../runtime/core/ipc/listener.ts";
import type { Message } from "../../runtime/core/ipc/messages.ts";
import type { ActorAddress, Transport } from "../../runtime/core/ipc/transport.ts";
import { testRoles } from "../fixtures/registry.ts";
import { makeSupervisor } from "../helpers/supervision.ts";
import { selfSignedCert } from "../../bench/tls_cert.ts";
import { tempDir } from "../helpers/tmp.ts";

const opts = { sanitizeOps: false, sanitizeResources: false };
const TCP = { kind: "tcp", host: "127.0.0.1", port: 0 } as const satisfies Transport;
const HOST_MODULE = fileURLToPath(new URL("../../runtime/core/host/host.ts", import.meta.url));

/** A raw framed connection: messages received in order, and a promise of its close. */
function framed(): { channel: Channel; next(): Promise<Message | undefined>; closed: Promise<void> } {
  const channel = new Channel();
  const got: Message[] = [];
  let wake: (() => void) | undefined;
  let isClosed = false;
  const closed = new Promise<void>((resolve) => channel.listen({
    message: (m) => (got.push(m), wake?.()),
    close: () => (isClosed = true, wake?.(), resolve()),
  }));
  const next = async () => {
    while (got.length === 0 && !isClosed) await new Promise<void>((r) => (wake = r));
    return got.shift();
  };
  return { channel, next, closed };
}

async function dial(address: ActorAddress): Promise<ReturnType<typeof framed>> {
  if (address.kind !== "tcp") throw new Error(`expected a TCP address, got ${address.kind}`);
  const peer = framed();
  const conn: Conn = await runtime.connectTcp({ host: address.host, port: address.port, tls: address.tls }, peer.channel.connHandlers());
  peer.channel.attach(conn);
  return peer;
}

async function serveAndRestart(transport: Transport): Promise<void> {
  const { sup } = makeSupervisor({ max_restarts: -1, max_task_retries: -1 }, { transport });
  try {
    await sup.start([{ id: "c", role: "counter" }]);
    const address = sup.actorAddress!;
    assert.equal(address.kind, "tcp");
    const env = await sup.actor("c").call<Record<string, string>>("env");
    assert.deepEqual((JSON.parse(env.REVENANT_ACTOR_SPEC!) as SpawnSpec).address, address);
    const actor = sup.actor("c");
    for (let i = 0; i < 5; i++) await actor.call("add", [1]);
    const calls = Array.from({ length: 30 }, () => actor.call<number>("add", [1]));
    killActor(actor);
    assert.deepEqual(await Promise.all(calls), Array.from({ length: 30 }, (_, i) => 6 + i));
    assert.equal(actor.incarnation, 2);
  } finally {
    await sup.shutdown();
  }
}

Deno.test("actors over TCP serve calls in order and are killed, restarted and restored", opts, () => serveAndRestart(TCP));

const dir = tempDir("revenant-deno-tls-");
const cert = selfSignedCert(dir);
if ("skip" in cert) console.log(`[TLS test skipped] ${cert.skip}`);

Deno.test({
  name: "actors over TLS verify the coordinator, serve calls and are restarted",
  ignore: "skip" in cert,
  ...opts,
  fn: () => serveAndRestart({ ...TCP, tls: cert as { certPath: string; keyPath: string } }),
});

Deno.test("a wrong token is refused and reported; a silent connection is dropped after the hello timeout", opts, async () => {
  const rejected: string[] = [];
  const listener = await ActorListener.open({ transport: TCP, helloTimeoutMs: 200, onReject: (r) => rejected.push(r) });
  try {
    listener.expect("w", 1, newNonce());
    const wrong = await dial(listener.address);
    const challenge = await wrong.next();
    assert.equal(challenge?.t, "challenge");
    const nonce = newNonce();
    wrong.channel.send({ t: "hello", actor: "w", incarnation: 1, pid: 1, nonce, token: actorProof(newNonce(), "w", 1, (challenge as { nonce: string }).nonce, nonce) });
    await wrong.closed;
    assert.match(rejected[0]!, /^connection from 127\.0\.0\.1:\d+ refused: hello from w#1 proves a wrong token$/);
    const silent = await dial(listener.address);
    await silent.closed;
    assert.match(rejected[1]!, /refused: no hello within the 200 ms hello timeout$/);
  } finally {
    listener.close();
  }
});

Deno.test("an impostor coordinator that cannot prove the token is refused by the actor", opts, async () => {
  const token = newNonce();
  let seen!: (p: ReturnType<typeof framed>) => void;
  const connected = new Promise<ReturnType<typeof framed>>((r) => (seen = r));
  const raw: Uint8Array[] = [];
  const server = await runtime.listenTcp({ host: "127.0.0.1", port: 0 }, (conn) => {
    const peer = framed();
    peer.channel.attach(conn);
    seen(peer);
    const inner = peer.channel.connHandlers();
    return { data: (b) => (raw.push(b.slice()), inner.data(b)), close: inner.close };
  });
  try {
    const spec: SpawnSpec = {
      address: { kind: "tcp", host: "127.0.0.1", port: server.port }, helloTimeoutMs: 10_000, actor: "victim", role: "counter", rank: 0,
      incarnation: 1, token, module: testRoles.counter!.module, export: testRoles.counter!.export, options: {}, maxFrameBytes: DEFAULT_MAX_FRAME_BYTES,
    };
    const child = runtime.spawn({ module: HOST_MODULE, env: { ...Deno.env.toObject(), REVENANT_ACTOR_SPEC: JSON.stringify(spec) } });
    const peer = await connected;
    peer.channel.send({ t: "challenge", nonce: newNonce() });
    assert.equal((await peer.next())?.t, "hello");
    peer.channel.send({ t: "welcome", proof: "0".repeat(64) });
    peer.channel.send({ t: "call", id: 1, method: "add", args: [1], deadline: 10 });
    const [status, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()]);
    assert.equal(status.code, EXIT.COORDINATOR_LOST);
    assert.match(stderr, /the coordinator's welcome carries a wrong proof/);
    assert.equal(await peer.next(), undefined); // nothing after the hello: no ready, no result
    assert.ok(!raw.map((b) => new TextDecoder("latin1").decode(b)).join("").includes(token), "the token crossed the wire");
  } finally {
    server.close();
  }
});

Deno.test("a stalled TCP peer blocks no other actor and is found by its pings", opts, async () => {
  const { sup } = makeSupervisor({ max_restarts: -1, max_task_retries: -1, ping_timeout_s: 2 }, { transport: TCP });
  try {
    await sup.start([{ id: "big", role: "accumulator" }, { id: "other", role: "counter" }]);
    hangActor(sup.actor("big"));
    const x = new Float32Array(16 << 20);
    const lost = sup.actor("big").call<number>("touch", [x]);
    const answers = await Promise.all(Array.from({ length: 30 }, () => sup.actor("other").call<number>("add", [1])));
    assert.deepEqual(answers, Array.from({ length: 30 }, (_, i) => i + 1));
    assert.equal(await lost, x.length);
    assert.deepEqual(sup.events.events.filter((e) => e.type === "death").map((e) => [e.actor, e.cause]), [["big", "hang"]]);
  } finally {
    await sup.shutdown();
  }
});
