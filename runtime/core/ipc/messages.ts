/**
 * The messages that cross a channel, and their validation. A decoded frame whose message is not
 * one of these shapes is a protocol error, exactly like a bad header.
 *
 * Coordinator → actor: challenge, welcome (the handshake: see handshake.ts), call, ping, health,
 * shutdown.
 * Actor → coordinator: hello, ready, fatal, result, error, pong, healthy, log.
 *
 * A hello's `token` is the actor's proof of its per-spawn token, never the token itself; its
 * `nonce` is optional here only so that validation stays a matter of shape: the handshake
 * refuses a hello without one, saying so.
 */
import { ProtocolError } from "./frame.ts";

export type Message =
  | { t: "hello"; actor: string; incarnation: number; token: string; pid: number; nonce?: string }
  | { t: "ready"; methods: string[]; readOnly: string[]; stateful: boolean }
  | { t: "fatal"; name: string; message: string; stack: string }
  | { t: "call"; id: number; method: string; args: unknown[]; deadline: number }
  | { t: "result"; id: number; value: unknown }
  | { t: "error"; id: number; name: string; message: string; stack: string }
  | { t: "ping"; id: number }
  | { t: "pong"; id: number }
  | { t: "health"; id: number }
  | { t: "healthy"; id: number; report: Record<string, unknown> }
  | { t: "log"; level: string; line: string }
  | { t: "shutdown" }
  | { t: "challenge"; nonce: string }
  | { t: "welcome"; proof: string };

type Kind = "string" | "number" | "boolean" | "array" | "object" | "any";
/** A field's kind; a trailing `?` means it may also be absent. */
type FieldKind = Kind | "string?";
const SHAPES: Record<Message["t"], Record<string, FieldKind>> = {
  hello: { actor: "string", incarnation: "number", token: "string", pid: "number", nonce: "string?" },
  ready: { methods: "array", readOnly: "array", stateful: "boolean" },
  fatal: { name: "string", message: "string", stack: "string" },
  call: { id: "number", method: "string", args: "array", deadline: "number" },
  result: { id: "number", value: "any" },
  error: { id: "number", name: "string", message: "string", stack: "string" },
  ping: { id: "number" },
  pong: { id: "number" },
  health: { id: "number" },
  healthy: { id: "number", report: "object" },
  log: { level: "string", line: "string" },
  shutdown: {},
  challenge: { nonce: "string" },
  welcome: { proof: "string" },
};

/** The shapes as entry lists, computed once: validation runs on every message. */
const SHAPE_ENTRIES = Object.fromEntries(Object.entries(SHAPES).map(([t, shape]) => [
  t, Object.entries(shape).map(([field, kind]) => [field, kind.replace("?", "") as Kind, kind.endsWith("?")]),
])) as Record<Message["t"], [field: string, kind: Kind, optional: boolean][]>;

function kindOf(v: unknown): Kind | "binary" {
  if (Array.isArray(v)) return "array";
  if (ArrayBuffer.isView(v)) return "binary";
  if (v === null) return "any";
  const t = typeof v;
  return t === "string" || t === "number" || t === "boolean" || t === "object" ? t : "any";
}

/** Checks a decoded value is a well-formed message; throws ProtocolError naming what is wrong. */
export function asMessage(value: unknown): Message {
  if (typeof value !== "object" || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new ProtocolError(`message must be a map, got ${kindOf(value)}`);
  }
  const t = (value as { t?: unknown }).t;
  const shape = typeof t === "string" && Object.hasOwn(SHAPES, t) ? SHAPES[t as Message["t"]] : undefined;
  if (!shape) throw new ProtocolError(`unknown message type ${JSON.stringify(t)}; known: ${Object.keys(SHAPES).join(", ")}`);
  for (const [field, kind, optional] of SHAPE_ENTRIES[t as Message["t"]]) {
    const v = (value as Record<string, unknown>)[field];
    if (optional && v === undefined) continue;
    if (kind === "any" ? v === undefined && field !== "value" : kindOf(v) !== kind) {
      throw new ProtocolError(`${t}.${field} must be ${kind === "any" ? "present" : `a ${kind}`}, got ${kindOf(v)}`);
    }
  }
  return value as Message;
}
