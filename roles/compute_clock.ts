/**
 * When a model role's native compute ran: each call into the PolicyModel (generate, logprobs,
 * values, policyStep, valueStep, state moves) is recorded as a [start, end] interval in epoch
 * milliseconds (performance.timeOrigin + performance.now(), comparable across processes), so a
 * benchmark can split a step's wall time into native compute and everything outside it
 * (coordinator, IPC, serialisation) from the union of every actor's intervals.
 *
 * A call's interval runs from the call to its result, so it includes any wait behind an earlier
 * call on the same model's queue: overlapping calls count once in a union, twice in a sum.
 * The log is bounded (the oldest intervals go first), and taking it clears it.
 */
import type { PolicyModel } from "../native/policy_model.ts";

/** One native call: its method and when it ran, in epoch milliseconds. */
export interface ComputeInterval {
  method: string;
  start: number;
  end: number;
}

/** The PolicyModel methods that run native compute (or move its state). */
const TIMED = new Set(["generate", "logprobs", "values", "policyStep", "valueStep", "getState", "setState", "copyParamsTo", "loadParamsFrom"]);
/** At most this many intervals are kept between two takes. */
const MAX_INTERVALS = 100_000;

const now = () => performance.timeOrigin + performance.now();

export class ComputeClock {
  #log: ComputeInterval[] = [];

  /** A view of `model` whose timed methods record their intervals here; everything else passes through. */
  wrap(model: PolicyModel): PolicyModel {
    return new Proxy(model, {
      // Getters run on the model itself: its private fields are not reachable through the proxy.
      get: (target, key) => {
        const value = Reflect.get(target, key, target) as unknown;
        if (typeof key !== "string" || typeof value !== "function") return value;
        const fn = value as (...args: unknown[]) => unknown;
        if (!TIMED.has(key)) return fn.bind(target);
        return async (...args: unknown[]) => {
          const start = now();
          try {
            return await fn.apply(target, args);
          } finally {
            this.#record({ method: key, start, end: now() });
          }
        };
      },
    });
  }

  /** The intervals since the last take, oldest first; the log starts empty again. */
  take(): ComputeInterval[] {
    const out = this.#log;
    this.#log = [];
    return out;
  }

  #record(i: ComputeInterval): void {
    if (this.#log.length >= MAX_INTERVALS) this.#log.shift();
    this.#log.push(i);
  }
}
