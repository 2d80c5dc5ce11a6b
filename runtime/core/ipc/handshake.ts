/**
 * The connection handshake: both ends prove they hold the per-spawn token, on every transport,
 * and the token itself never crosses the wire.
 *
 * The coordinator makes a random 128-bit token for each spawn and hands it to the actor in its
 * spawn spec (the launcher's channel: an environment variable of a local child). Then, on the
 * connection the actor opens back:
 *
 *   1. coordinator → actor  `challenge {nonce: Nc}`            as soon as the connection is accepted
 *   2. actor → coordinator  `hello {actor, incarnation, pid, nonce: Na, token: P_a}`
 *        P_a = HMAC-SHA256(token, ["revenant-handshake/1", "actor", actor, incarnation, Nc, Na])
 *   3. coordinator          checks P_a against the token it expects for (actor, incarnation),
 *                           in constant time; a wrong or unknown one drops the connection
 *   4. coordinator → actor  `welcome {proof: P_c}`
 *        P_c = HMAC-SHA256(token, ["revenant-handshake/1", "coordinator", actor, incarnation, Nc, Na])
 *   5. actor                checks P_c in constant time; until it holds, it takes no other
 *                           message, and a wrong proof, another message or silence past the
 *                           hello timeout makes it exit (code 70, coordinator lost)
 *
 * Nonces are 16 random bytes in hex; the HMAC input is the JSON array shown, so fields cannot
 * run into each other. Why this shape:
 * - The hello carries a proof of the token, not the token: a listener that is not the
 *   coordinator (a wrong address, a port taken over) learns nothing it could answer with. Had
 *   the actor sent the token, anyone it reached could compute the coordinator's proof.
 * - The actor proves itself first, so the coordinator answers only actors it expects: it is no
 *   oracle of proofs for strangers. The labels "actor" and "coordinator" keep one side's proof
 *   from serving as the other's.
 * - Each side's nonce makes the other's proof fresh: a recorded exchange cannot be replayed.
 *   A token is used once: the first good hello consumes it.
 *
 * What it does not do: without TLS, an on-path attacker who relays the whole handshake can read
 * and alter the frames after it (nothing binds them to the handshake). TLS (transport.ts) closes
 * that; the handshake runs inside it as well.
 *
 * @example
 * ```ts
 * const nc = newNonce(), na = newNonce();
 * const p = actorProof(token, "critic", 1, nc, na);
 * sameProof(p, actorProof(token, "critic", 1, nc, na)); // true
 * ```
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { after } from "../timers.ts";
import type { Channel } from "./channel.ts";
import { DEFAULT_MAX_FRAME_BYTES, HELLO_MAX_FRAME_BYTES } from "./frame.ts";
import type { Message } from "./messages.ts";

export type Hello = Extract<Message, { t: "hello" }>;

/** A handshake that failed; the message says which step and why. */
export class HandshakeError extends Error {
  override name = "HandshakeError";
}

const NONCE_BYTES = 16;
const NONCE = /^[0-9a-f]{32}$/;
const PROOF = /^[0-9a-f]{64}$/;
const LABEL = "revenant-handshake/1";

/** A fresh nonce: 16 random bytes as 32 lowercase hex digits. */
export function newNonce(): string {
  return randomBytes(NONCE_BYTES).toString("hex");
}

export const isNonce = (v: unknown): v is string => typeof v === "string" && NONCE.test(v);

function proof(side: "actor" | "coordinator", token: string, actor: string, incarnation: number, challenge: string, nonce: string): string {
  return createHmac("sha256", token).update(JSON.stringify([LABEL, side, actor, incarnation, challenge, nonce])).digest("hex");
}

/** What the actor sends in its hello's `token` field. */
export const actorProof = (token: string, actor: string, incarnation: number, challenge: string, nonce: string): string =>
  proof("actor", token, actor, incarnation, challenge, nonce);

/** What the coordinator sends in its welcome. */
export const coordinatorProof = (token: string, actor: string, incarnation: number, challenge: string, nonce: string): string =>
  proof("coordinator", token, actor, incarnation, challenge, nonce);

/** Compares two proofs in time that depends on their length only (which is public: 64). */
export function sameProof(expected: string, got: string): boolean {
  const x = new TextEncoder().encode(expected);
  const y = new TextEncoder().encode(got);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Why a proof is not even well formed, or undefined when it is. */
export function malformedProof(v: string): string | undefined {
  return PROOF.test(v) ? undefined : `a proof is 64 lowercase hex digits (HMAC-SHA256), got ${v.length} characters`;
}

export interface ActorIdentity {
  actor: string;
  incarnation: number;
  token: string;
  pid: number;
}

/**
 * The actor's half (steps 2 and 5) on a channel whose connection is attached but not yet
 * listened to. Resolves once the coordinator has proved itself, with the channel held (the host
 * listens next) and its incoming limit raised to `maxFrameBytes`; rejects with a
 * HandshakeError, the channel closed, on anything else.
 */
export function actorHandshake(channel: Channel, me: ActorIdentity, timeoutMs: number, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): Promise<void> {
  // Until the coordinator has proved itself, it may only send handshake-sized frames.
  channel.limitIncoming(HELLO_MAX_FRAME_BYTES);
  return new Promise((resolve, reject) => {
    const nonce = newNonce();
    let challenge: string | undefined;
    let settled = false;
    const fail = (reason: string) => {
      if (settled) return;
      settled = true; // first: closing the channel reports a close, which is not the reason
      timer.cancel();
      reject(new HandshakeError(reason));
      channel.close();
    };
    const timer = after(timeoutMs, () => fail(`the coordinator did not ${challenge ? "answer the hello" : "send its challenge"} within ${timeoutMs} ms`));
    channel.listen({
      message: (m) => {
        if (challenge === undefined) {
          if (m.t !== "challenge") return fail(`expected the coordinator's challenge, got ${m.t}`);
          if (!isNonce(m.nonce)) return fail(`the coordinator's challenge nonce must be 32 lowercase hex digits, got ${JSON.stringify(m.nonce).slice(0, 80)}`);
          challenge = m.nonce;
          channel.send({ t: "hello", actor: me.actor, incarnation: me.incarnation, pid: me.pid, nonce, token: actorProof(me.token, me.actor, me.incarnation, challenge, nonce) });
          return;
        }
        if (m.t !== "welcome") return fail(`expected the coordinator's welcome, got ${m.t}: it has not proved itself`);
        if (!sameProof(coordinatorProof(me.token, me.actor, me.incarnation, challenge, nonce), m.proof)) {
          return fail("the coordinator's welcome carries a wrong proof: it does not hold this spawn's token (an impostor?)");
        }
        settled = true;
        timer.cancel();
        channel.limitIncoming(maxFrameBytes);
        channel.hold();
        resolve();
      },
      close: (error) => {
        const step = challenge ? "before its welcome" : "before its challenge";
        fail(`the coordinator closed the connection ${step}${error ? `: ${error.message}` : " (a wrong or unknown token?)"}`);
      },
    });
  });
}
