/**
 * What `npm run train` writes, whatever runtime trains: metrics.jsonl (one JSON object per step:
 * phase, step, metrics), rollouts.jsonl with --save-rollouts, eval.md, and on stdout either progress
 * bars and step summaries or, with --json, one JSON line per event.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RolloutRecord } from '../src/export/rollouts.js';
import { toJsonl } from '../src/export/rollouts.js';
import type { Phase } from '../src/rl/checkpoint.js';
import type { TrainEvent } from '../src/rl/trainer.js';

/** Where an invocation stopped, and its evaluation table when it reached the end. */
export interface TrainResult {
  phase: Phase;
  sftStep: number;
  grpoStep: number;
  evalTable: string | null;
}

const BAR = 24;
const fmt = (s: number) => (!Number.isFinite(s) ? '?' : s > 90 ? `${Math.round(s / 60)} min` : `${Math.round(s)} s`);

/** A progress line `[label] ███░░ done/total  ETA t` (no ETA when null): redrawn in place on a terminal, one line per update otherwise. */
export function progressLine(label: string, done: number, total: number, etaSeconds: number | null, tty = !!process.stdout.isTTY): string {
  const filled = total > 0 ? Math.round((BAR * Math.min(done, total)) / total) : 0;
  const line = `[${label}] ${'█'.repeat(filled)}${'░'.repeat(BAR - filled)} ${done}/${total}${etaSeconds === null ? '' : `  ETA ${fmt(etaSeconds)}`}`;
  return tty ? `\r${line}    ${done === total ? '\n' : ''}` : `${line}\n`;
}

/**
 * The outputs of a run in folder `out`.
 * @param opts.json print events as JSON lines instead of progress bars
 * @param opts.saveRollouts append rollout records to out/rollouts.jsonl
 */
export function trainOutput(out: string, opts: { json: boolean; saveRollouts: boolean }) {
  return {
    /** The first line: what trains where (not printed with --json). */
    start(recipeName: string, backendDescription: string): void {
      if (!opts.json) console.log(`recipe ${recipeName} on ${backendDescription}; output in ${out}`);
    },
    /** A Trainer event (not `rollouts`): metrics go to metrics.jsonl; all are shown. */
    event(e: Exclude<TrainEvent, { type: 'rollouts' }>): void {
      if (e.type === 'metrics') appendFileSync(join(out, 'metrics.jsonl'), JSON.stringify({ phase: e.phase, step: e.step, ...e.metrics }) + '\n');
      if (opts.json) console.log(JSON.stringify(e));
      else if (e.type === 'progress') process.stdout.write(progressLine(e.phase, e.done, e.total, e.etaSeconds));
      else if (e.type === 'log') console.log(`\n${e.message}`);
      else if (e.type === 'metrics' && e.phase === 'grpo')
        console.log(`\n[grpo ${e.step}] reward ${e.metrics.reward?.toFixed(3)} acc ${e.metrics['rewards/accuracy/mean']?.toFixed(3)} format ${e.metrics['rewards/format/mean']?.toFixed(3)} search ${e.metrics.search_ratio?.toFixed(3)}`);
    },
    /** A GRPO step's trajectories (written only with saveRollouts). */
    rollouts(records: RolloutRecord[]): void {
      if (opts.saveRollouts) appendFileSync(join(out, 'rollouts.jsonl'), toJsonl(records));
    },
    /** Writes eval.md when the run was evaluated and prints the table and where the run stopped. */
    finish(r: TrainResult): void {
      if (r.evalTable) {
        writeFileSync(join(out, 'eval.md'), r.evalTable + '\n');
        if (!opts.json) console.log(`\n${r.evalTable}`);
      }
      if (!opts.json) console.log(`\nphase ${r.phase}: SFT steps ${r.sftStep}, GRPO steps ${r.grpoStep}`);
    },
  };
}
