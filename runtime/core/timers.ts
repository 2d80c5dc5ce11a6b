/**
 * Timers for configured durations. setTimeout and setInterval store the delay as a signed 32-bit
 * number of milliseconds: anything above 2^31−1 ms (24.8 days) fires after 1 ms in Bun, Deno and
 * Node alike, so a "practically never" such as `call_deadline_s: 1e300` would fire at once (a
 * deadline, a health timeout, a shutdown grace) or spin (a ping interval). Every timer the runtime
 * core sets from a configured duration goes through `after` or `every`: long delays are scheduled
 * in hops no longer than the limit, so they fire late if ever, never early. The config schema
 * bounds these durations too; this is the defense in depth.
 *
 * @example
 * ```ts
 * const t = after(ft.call_deadline_s * 1000, () => kill("deadline"));
 * t.cancel();
 * ```
 */

/** The longest delay a runtime timer takes as given. */
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

export interface Timer {
  /** Stops the timer; harmless after it fired or was cancelled. */
  cancel(): void;
}

/**
 * A delay the runtime's timers take as given: at most MAX_TIMER_DELAY_MS; NaN and negatives are
 * 0 (they fire at once, as the runtimes do, so a bad value fails loudly rather than never).
 */
export function clampDelay(ms: number): number {
  return ms > 0 ? Math.min(ms, MAX_TIMER_DELAY_MS) : 0;
}

/**
 * Calls `fn` once, `ms` milliseconds from now, for any `ms` (Infinity: never). `hopMs` is the
 * longest single runtime timer used; only tests change it.
 */
export function after(ms: number, fn: () => void, hopMs = MAX_TIMER_DELAY_MS): Timer {
  let handle: ReturnType<typeof setTimeout> | undefined;
  // Counted down rather than compared with a clock: hops are exact and testable.
  let left = ms > 0 ? ms : 0;
  const hop = () => {
    const delay = Math.min(left, hopMs);
    left -= delay;
    handle = setTimeout(left > 0 ? hop : fn, delay);
  };
  hop();
  return { cancel: () => clearTimeout(handle) };
}

/** Calls `fn` every `ms` milliseconds until cancelled, for any `ms` (long periods go in hops). */
export function every(ms: number, fn: () => void, hopMs = MAX_TIMER_DELAY_MS): Timer {
  if (clampDelay(ms) === ms && ms <= hopMs) {
    const handle = setInterval(fn, ms);
    return { cancel: () => clearInterval(handle) };
  }
  let current: Timer | undefined;
  let cancelled = false;
  const next = () => {
    current = after(ms, () => {
      if (cancelled) return;
      next();
      fn();
    }, hopMs);
  };
  next();
  return {
    cancel: () => {
      cancelled = true;
      current?.cancel();
    },
  };
}
