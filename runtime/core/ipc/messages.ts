/**
 * The messages that cross a channel, and their validation. A decoded frame whose message is not
 * one of these shapes is a protocol error, exactly like a bad header.
 *
 * Coordinator → actor: call, ping, health, shutdown.
 * Actor → coordinator: hello, ready, fatal, result, error, pong, healthy, log.
 */
import { ProtocolError } from "./frame.ts";

export type Message =
  | { t: "hello"; actor: string; incarnation: number; token: string; pid: number }
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
  | { t: "shutdown" };

type Kind = "string" | "number" | "boolean" | "array" | "object" | "any";
const SHAPES: Record<Message["t"], Record<string, Kind>> = {
  hello: { actor: "string", incarnation: "number", token: "string", pid: "number" },
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
};

/** The shapes as entry lists, computed once: validation runs on every message. */
const SHAPE_ENTRIES = Object.fromEntries(Object.entries(SHAPES).map(([t, shape]) => [t, Object.entries(shape)])) as Record<Message["t"], [string, Kind][]>;

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
  for (const [field, kind] of SHAPE_ENTRIES[t as Message["t"]]) {
    const v = (value as Record<string, unknown>)[field];
    if (kind === "any" ? v === undefined && field !== "value" : kindOf(v) !== kind) {
      throw new ProtocolError(`${t}.${field} must be ${kind === "any" ? "present" : `a ${kind}`}, got ${kindOf(v)}`);
    }
  }
  return value as Message;
}
