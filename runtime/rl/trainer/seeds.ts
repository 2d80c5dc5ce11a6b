/**
 * Seeds for every stochastic operation, derived from (job seed, step, role, rank, purpose), so
 * no role keeps hidden random state and a retried or replayed call draws the same numbers.
 */

/** A 53-bit seed from the job seed and any number of tags (strings or integers). */
export function deriveSeed(jobSeed: number, ...tags: readonly (string | number)[]): number {
  // FNV-1a over the tags, then a 64-bit mix (splitmix64) with the job seed; BigInt keeps it exact.
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n;
  const mask = (1n << 64n) - 1n;
  for (const tag of [jobSeed, ...tags]) {
    for (const ch of `${typeof tag}:${tag};`) {
      h ^= BigInt(ch.codePointAt(0)!);
      h = (h * prime) & mask;
    }
  }
  h = ((h ^ (h >> 30n)) * 0xbf58476d1ce4e5b9n) & mask;
  h = ((h ^ (h >> 27n)) * 0x94d049bb133111ebn) & mask;
  h ^= h >> 31n;
  return Number(h & ((1n << 53n) - 1n));
}
