/**
 * Console output of a training run: a live progress bar on a terminal, one plain line per step
 * otherwise (logs, CI), and the final summary.
 */

export interface ProgressLine {
  step: number;
  total: number;
  metrics: Record<string, number>;
}

const fmt = (v: number | undefined, d = 3) => (v === undefined || Number.isNaN(v) ? "-" : v.toFixed(d));

export class Progress {
  private readonly tty: boolean;
  private lastDraw = 0;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout, enabled = true) {
    this.tty = enabled && Boolean(out.isTTY);
  }

  step({ step, total, metrics: m }: ProgressLine): void {
    const failures = m["actor_failures/total"] ?? 0;
    const facts = `reward ${fmt(m["critic/score/mean"])} val ${fmt(m["val/score"])} pg ${fmt(m["actor/pg_loss"])} ` +
      `kl ${fmt(m["actor/kl"], 4)} len ${fmt(m["response_length/mean"], 1)} ${fmt(m["timing_s/step"], 2)}s/step` +
      (failures ? ` failures ${failures}` : "");
    if (!this.tty) {
      this.out.write(`step ${step}/${total} ${facts}\n`);
      return;
    }
    const now = Date.now();
    if (now - this.lastDraw < 100 && step < total) return;
    this.lastDraw = now;
    const width = 24;
    const done = Math.round((step / total) * width);
    this.out.write(`\r\x1b[2K[${"#".repeat(done)}${" ".repeat(width - done)}] ${step}/${total} ${facts}`);
    if (step === total) this.out.write("\n");
  }

  /** A line that must not be overwritten by the bar. */
  note(line: string): void {
    this.out.write(this.tty ? `\r\x1b[2K${line}\n` : `${line}\n`);
  }
}
