/** Restart pacing: exponential backoff and the OTP restart-intensity window. */

/** Delay before the n-th restart (1-based) within the current window: initial·2^(n−1), capped. */
export function backoffMs(n: number, initialS: number, maxS: number): number {
  return Math.min(initialS * 2 ** Math.max(0, n - 1), maxS) * 1000;
}

/** Restarts within the last `periodS` seconds, counting from `now`. */
export function restartsInWindow(times: readonly number[], periodS: number, now = Date.now()): number {
  const since = now - periodS * 1000;
  let n = 0;
  for (const t of times) if (t > since) n++;
  return n;
}
