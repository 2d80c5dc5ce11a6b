/**
 * The console progress line: fits the terminal's width (whole facts dropped from the right),
 * shows elapsed time and an ETA from the pace so far, and writes plain lines when not a terminal.
 */
import { expect, test } from "bun:test";
import { clock, fitLine, Progress } from "../../runtime/rl/trainer/progress.ts";

/** A fake stream: what was written, and a terminal width. */
function sink(isTTY: boolean, columns = 80) {
  const chunks: string[] = [];
  return { chunks, out: { isTTY, columns, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream };
}

const metrics = { "critic/score/mean": 0.5, "val/score": 0.25, "actor/ppo_kl": 0.01, "actor/entropy": 1.5, "response_length/mean": 4, "timing_s/step": 2 };

test("clock formats minutes and hours", () => {
  expect(clock(0)).toBe("0:00");
  expect(clock(75)).toBe("1:15");
  expect(clock(3725)).toBe("1:02:05");
});

test("fitLine drops whole parts from the right to fit", () => {
  expect(fitLine(["aaaa", "bb", "cc"], 7)).toBe("aaaa bb");
  expect(fitLine(["aaaa", "bb", "cc"], 100)).toBe("aaaa bb cc");
});

test("the terminal line fits the width and shows elapsed time and ETA", () => {
  let t = 0;
  for (const columns of [40, 60, 120]) {
    const { chunks, out } = sink(true, columns);
    const p = new Progress(out, true, () => t);
    t = 0;
    p.step({ step: 11, total: 20, metrics }); // the first step seen starts the clock
    t = 20_000; // two more steps took 20 s: 10 s a step, 7 steps left
    p.step({ step: 13, total: 20, metrics });
    const line = chunks.at(-1)!.replace("\r\x1b[2K", "");
    expect(line.length).toBeLessThan(columns);
    expect(line).toContain("13/20 0:20<1:10");
    if (columns >= 120) expect(line).toContain("entropy 1.50");
  }
});

test("not a terminal: one plain line per step", () => {
  let t = 0;
  const { chunks, out } = sink(false);
  const p = new Progress(out, true, () => t);
  p.step({ step: 1, total: 4, metrics });
  t = 3000;
  p.step({ step: 2, total: 4, metrics });
  expect(chunks).toHaveLength(2);
  expect(chunks[1]).toBe("step 2/4 reward 0.500 val 0.250 kl 0.0100 entropy 1.50 len 4.0 2.00s/step 0:03 elapsed, ETA 0:06\n");
});
