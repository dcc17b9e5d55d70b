/**
 * `logging_steps` as transformers' Trainer and TRL's GRPOTrainer apply it: metrics are logged when
 * global_step % logging_steps == 0 (DefaultFlowCallback.on_step_end; `logging_first_step` is off by
 * default, so step 1 is not logged on its own), and each logged value is the mean over the steps since
 * the last log (GRPOTrainer.log averages its per-step metric lists; the Trainer averages the loss over
 * the interval), except learning_rate and grad_norm, which the Trainer reports for the current step.
 * The steps of a last, incomplete interval are not logged (neither are they by the Trainer).
 */

/** Metrics reported for the last step of an interval rather than averaged (transformers `_maybe_log_save_evaluate`). */
export const LAST_STEP_METRICS: readonly string[] = ['learning_rate', 'grad_norm', 'memory/peak_bytes'];

export class MetricsWindow {
  /** Per metric, in first-seen order: the sum and count of its non-NaN values, and its last value. */
  private acc = new Map<string, { sum: number; count: number; last: number }>();

  /**
   * @param loggingSteps steps per logged interval (≥ 1)
   * @param lastStep metric names reported as their last value instead of the mean
   * @throws when loggingSteps is not a positive integer
   */
  constructor(
    readonly loggingSteps: number,
    readonly lastStep: readonly string[] = LAST_STEP_METRICS,
  ) {
    if (!Number.isInteger(loggingSteps) || loggingSteps < 1) throw new Error(`logging_steps must be a positive integer, got ${loggingSteps}`);
  }

  /**
   * Adds the metrics of the step that brought the run to `globalStep` (1-based: the number of optimizer
   * steps done). Returns what to log when globalStep % loggingSteps == 0, else null. Means skip NaN
   * values (a per-category rate with no rollout of that category); a metric that was NaN at every
   * step of the interval is NaN. With loggingSteps 1 every step's metrics come back unchanged.
   */
  add(globalStep: number, metrics: Readonly<Record<string, number>>): Record<string, number> | null {
    for (const [k, v] of Object.entries(metrics)) {
      const a = this.acc.get(k) ?? { sum: 0, count: 0, last: v };
      if (!Number.isNaN(v)) (a.sum += v), a.count++;
      a.last = v;
      this.acc.set(k, a);
    }
    if (globalStep % this.loggingSteps !== 0) return null;
    const out: Record<string, number> = {};
    for (const [k, a] of this.acc) out[k] = this.lastStep.includes(k) ? a.last : a.count ? a.sum / a.count : NaN;
    this.acc.clear();
    return out;
  }
}
