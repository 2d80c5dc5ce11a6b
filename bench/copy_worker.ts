/** Worker of bench/cpu_peak.ts copyBandwidth: copies `mib` MiB `repeats` times, reports bytes moved and seconds. */
declare const self: Worker;

let src: Float32Array | undefined;
let dst: Float32Array | undefined;

self.onmessage = (e: MessageEvent) => {
  const { mib, repeats } = e.data as { mib: number; repeats: number };
  const n = (mib * 1024 * 1024) / 4;
  if (!src || src.length !== n) {
    src = new Float32Array(n).fill(1);  // touched once, so the copy times memory, not page faults
    dst = new Float32Array(n).fill(0);
  }
  const t0 = performance.now();
  for (let i = 0; i < repeats; i++) dst!.set(src);
  const seconds = (performance.now() - t0) / 1000;
  self.postMessage({ bytes: 2 * 4 * n * repeats, seconds });
};
