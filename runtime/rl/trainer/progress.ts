/**
 * Console output of a training run: a live progress line on a terminal (fitted to its width,
 * with elapsed time and ETA), one plain line per step otherwise (logs, CI), and notes that are
 * never overwritten by the bar.
 */

export interface ProgressLine {
  step: number;
  total: number;
  metrics: Record<string, number>;
}

const fmt = (v: number | undefined, d = 3) => (v === undefined || Number.isNaN(v) ? "-" : v.toFixed(d));

/** 75 s → "1:15", 3725 s → "1:02:05". */
export function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const [h, m, r] = [Math.floor(s / 3600), Math.floor((s % 3600) / 60), s % 60];
  const two = (n: number) => String(n).padStart(2, "0");
  return h ? `${h}:${two(m)}:${two(r)}` : `${m}:${two(r)}`;
}

/** The step's facts, most important first, so cutting from the right loses the least. */
function facts(m: Record<string, number>): string[] {
  const failures = m["actor_failures/total"] ?? 0;
  return [
    `reward ${fmt(m["critic/score/mean"])}`,
    `val ${fmt(m["val/score"])}`,
    ...(failures ? [`failures ${failures}`] : []),
    `kl ${fmt(m["actor/ppo_kl"], 4)}`,
    `entropy ${fmt(m["actor/entropy"], 2)}`,
    `len ${fmt(m["response_length/mean"], 1)}`,
    `${fmt(m["timing_s/step"], 2)}s/step`,
  ];
}

/** Joins parts with spaces, dropping whole parts from the end until the line fits `width`. */
export function fitLine(parts: readonly string[], width: number): string {
  let line = "";
  for (const p of parts) {
    const next = line ? `${line} ${p}` : p;
    if (next.length > width) break;
    line = next;
  }
  return line;
}

export class Progress {
  private readonly tty: boolean;
  private lastDraw = 0;
  private started: { at: number; step: number } | undefined;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout, enabled = true, private readonly now: () => number = () => performance.now()) {
    this.tty = enabled && Boolean(out.isTTY);
  }

  /** Elapsed seconds and the ETA from the mean pace of the steps run by this process. */
  private timing(step: number, total: number): { elapsed: number; eta: number | undefined } {
    const now = this.now();
    this.started ??= { at: now, step }; // the pace counts steps finished after the first one seen
    const elapsed = (now - this.started.at) / 1000;
    const done = step - this.started.step;
    return { elapsed, eta: done > 0 && elapsed > 0 ? (elapsed / done) * (total - step) : undefined };
  }

  step({ step, total, metrics: m }: ProgressLine): void {
    const { elapsed, eta } = this.timing(step, total);
    const time = `${clock(elapsed)} elapsed, ETA ${eta === undefined ? "-" : clock(eta)}`;
    if (!this.tty) {
      this.out.write(`step ${step}/${total} ${facts(m).join(" ")} ${time}\n`);
      return;
    }
    const now = this.now();
    if (now - this.lastDraw < 100 && step < total) return;
    this.lastDraw = now;
    const columns = Math.max(20, this.out.columns ?? 80) - 1; // the last column would wrap on some terminals
    const bar = 20;
    const done = Math.round((step / total) * bar);
    const head = `[${"#".repeat(done)}${" ".repeat(bar - done)}] ${step}/${total} ${clock(elapsed)}<${eta === undefined ? "-" : clock(eta)}`;
    this.out.write(`\r\x1b[2K${fitLine([head, ...facts(m)], columns) || head.slice(0, columns)}`);
    if (step === total) this.out.write("\n");
  }

  /** A line that must not be overwritten by the bar. */
  note(line: string): void {
    this.out.write(this.tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }
}
