/**
 * The roles bench/ipc.ts measures the supervisor with: a counter (small calls, a tiny state) and
 * a payload holder (large arrays in and out, a state of a chosen size). Each is as plain as a
 * role can be, so the figures are the runtime's, not the role's.
 */
import { fileURLToPath } from "node:url";
import type { RoleEntry } from "../runtime/core/host/role.ts";

export class Counter {
  static readOnly = ["value"];
  private n = 0;
  add(k = 1): number {
    this.n += k;
    return this.n;
  }
  value(): number {
    return this.n;
  }
  getState(): { n: number } {
    return { n: this.n };
  }
  loadState(state: { n: number }): void {
    this.n = state.n;
  }
}

/** Receives and returns large arrays; its state is a Float32Array of `size` floats. */
export class Payload {
  static readOnly = ["touch", "roundTrip", "size"];
  private state: Float32Array;
  constructor(options: { size?: number }) {
    this.state = new Float32Array(options.size ?? 4);
  }
  /** Receives a large array and answers with a little: the transfer benchmark. */
  touch(x: Float32Array): number {
    return x.length;
  }
  roundTrip(x: Float32Array): Float32Array {
    return x;
  }
  size(): number {
    return this.state.length;
  }
  getState(): { state: Float32Array } {
    return { state: this.state };
  }
  loadState(s: { state: Float32Array }): void {
    this.state = new Float32Array(s.state);
  }
}

const module = fileURLToPath(import.meta.url);
export const IPC_ROLES: Record<string, RoleEntry> = {
  counter: { module, export: "Counter" },
  accumulator: { module, export: "Payload" },
};
