/**
 * When to probe health: every `health_check_interval` training steps (a float; below 1 means
 * every step), only when health monitoring is enabled. The trainer asks `due(step)` each step.
 *
 * @example
 * ```ts
 * const schedule = new HealthSchedule(config.fault_tolerance);
 * if (schedule.due(step)) await supervisor.probeHealth();
 * ```
 */
import type { FaultTolerance } from "./options.ts";

export class HealthSchedule {
  private nextAt: number;

  constructor(private readonly ft: Pick<FaultTolerance, "enable_health_monitoring" | "health_check_interval">) {
    this.nextAt = this.interval;
  }

  private get interval(): number {
    return Math.max(1, this.ft.health_check_interval);
  }

  /** True when a probe round is due after training step `step` (1-based). */
  due(step: number): boolean {
    if (!this.ft.enable_health_monitoring) return false;
    if (step + 1e-9 < this.nextAt) return false;
    // Fractional intervals accumulate: 2.5 probes after steps 3, 5, 8, 10, ...
    while (this.nextAt <= step + 1e-9) this.nextAt += this.interval;
    return true;
  }
}
