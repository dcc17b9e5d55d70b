/**
 * The lab's training run: build the policy, the data and the search tools from a recipe
 * (./environment.ts), then captioning -> warm-start SFT -> GRPO -> evaluation, with checkpoints (model, optimizer,
 * RNG, step; ./checkpoint.ts) that make an interrupted run resume where it stopped.
 * Environment-specific parts (files, checkpoint storage, the hub's download cache, the search proxy)
 * come in through TrainerEnv, so the same class runs in Node (Dawn, WebAssembly or CPU) and in a web
 * worker.
 */
import * as E from '../engine/index.js';
import { drillWorldOf } from '../data/fvqa-mini.js';
import { observedOpening } from '../data/trajectories.js';
import type { FvqaRow } from '../data/types.js';
import type { DownloadProgress } from '../hub/download.js';
import type { HubRepoOptions } from '../hub/repo.js';
import { createModel, setAdapterEnabled, type PolicyModel } from '../models/checkpoint.js';
import type { LabTokenizer } from '../models/tokenizer.js';
import { emptyToolMetrics, parseToolCall } from '../protocol/tools.js';
import { runToolCall } from '../search/run-tool.js';
import type { SearchTools } from '../search/types.js';
import type { CheckpointStore } from '../storage/checkpoint-store.js';
import {
  checkpointFiles, loadCheckpointWeights, loadOptimizerState, readEvalResult, readTrainerState,
  type EvalResult, type KnobChange, type Knobs, type Phase, type TrainerState,
} from './checkpoint.js';
import { resolveGenerationBatch } from './config.js';
import { dataUrlBytes, encodeConversation, TurnEncoder } from './conversation.js';
import { captionAccuracy, captionBatch, captionEvalLooks, captionLookStream } from './captioning.js';
import { copyAccuracy, copyBatch, copyEvalItems } from './copying.js';
import { buildRunEnvironment } from './environment.js';
import { evalSubset, evaluate, table1 } from './evaluate.js';
import { collectTrainBatch } from './dynamic-sampling.js';
import { computeAdvantages } from './grpo.js';
import { MetricsWindow } from './metrics-window.js';
import { recipeRolloutOptions, type Recipe } from './recipe.js';
import { scoreTrajectory, type RewardComponents } from './reward.js';
import { rollout, type RolloutOptions, type RolloutStats, type SearchMode, type Trajectory } from './rollout.js';
import { grpoSchedule, sftSchedule } from './schedule.js';
import { sftPlan, type WarmStartConversation } from './sft-plan.js';
import { grpoUpdate, scoreTokens, sftStep } from './steps.js';

export type TrainEvent =
  | { type: 'progress'; phase: Phase; done: number; total: number; etaSeconds: number | null }
  | { type: 'metrics'; phase: Phase; step: number; metrics: Record<string, number> }
  | {
      type: 'rollouts';
      step: number;
      trajectories: Trajectory[];
      rewards: number[];
      advantages: number[];
      /** Each trajectory's reward parts, scored with the step's search penalty. */
      scores: RewardComponents[];
      /** Per trajectory: its group's mean reward and the std its advantage was divided by. */
      meanGroupedRewards: number[];
      stdRewards: number[];
      /** With TrainerEnv.inspect: every token's log-probability under the policy before and after this step's update (see scoreTokens). */
      logprobs?: { before: Float32Array[]; after: Float32Array[] };
    }
  | { type: 'log'; message: string };

/** The knobs a running run may change ({@link Trainer.setKnob}). */
export const KNOB_NAMES = ['search_penalty', 'temperature', 'learning_rate'] as const satisfies readonly (keyof Knobs)[];

export interface TrainerEnv {
  backend: E.Backend;
  /** Reads a file of the lab (e.g. `models/tiny-vlm/config.json`): Node fs or fetch. */
  readFile(path: string): Promise<Uint8Array>;
  store: CheckpointStore;
  /** Search tools for the proxy backend (the local backend is built in-process). */
  proxyTools?: SearchTools;
  /**
   * The hub, for `hf:` model sources and data files: the download cache (FsHubCache in Node,
   * IdbHubCache in a worker) and the endpoint (default https://huggingface.co).
   */
  hub?: Omit<HubRepoOptions, 'onProgress'>;
  onEvent?: (e: TrainEvent) => void;
  /**
   * Re-score every GRPO batch with the policy before and after its update (`logprobs` of the rollouts
   * event, the lab's step inspector): two more forward passes per step.
   */
  inspect?: boolean;
}

/**
 * Re-runs the searches of a warm-start conversation through the lab's own tools and renders their
 * results exactly as rollouts will, so SFT trains the turns RL later sees (the generator's tool turns
 * are replaced). Returns null when a search fails.
 */
export async function replayWarmStart(row: FvqaRow, tools: SearchTools, k: number): Promise<{ messages: FvqaRow['prompt']; images: Uint8Array[] } | null> {
  const messages = [row.prompt[0]];
  const question = row.extra_info?.question ?? '';
  const images = [row.images[0].bytes];
  const metrics = emptyToolMetrics();
  for (let i = 1; i < row.prompt.length; i++) {
    const m = row.prompt[i];
    if (m.role === 'assistant') {
      messages.push(m);
      const call = parseToolCall(m.content);
      if (call.kind === 'image_search' || call.kind === 'text_search') {
        const info = await runToolCall(tools, call, { question, image: { bytes: row.images[0].bytes } }, metrics, { k });
        if (info.error) return null;
        messages.push({ role: 'user', content: info.text });
        images.push(...info.images.map(dataUrlBytes));
      }
    }
  }
  return { messages, images };
}

/**
 * One training run of a recipe: `setup()` builds the run environment (./environment.ts) and resumes
 * from the checkpoint store when it holds a checkpoint of the same recipe; `run()` runs the phases
 * left, captioning (recipe.caption, ./captioning.ts) -> warm-start SFT (recipe.sft: TrainingArguments names) -> GRPO (recipe.grpo: TRL GRPOConfig
 * names, MMSearch-R1's reward and search limits) -> the three-mode evaluation, saving a checkpoint
 * (./checkpoint.ts) every checkpoint_steps steps and at each phase's end. Progress, metrics (TRL/veRL
 * names), each GRPO step's rollouts and log lines go to `env.onEvent`.
 *
 * Errors: setup's (a missing or malformed model or data file, an `hf:` source without a hub cache, a
 * proxy backend without a client, a training split smaller than one step's prompts, a checkpoint of
 * another recipe); five steps in a row with a non-finite loss or gradient stop the run (the last good
 * checkpoint is kept). Sources: TRL GRPOTrainer (loss, advantages, masks), MMSearch-R1 (reward, search
 * protocol, evaluation modes), transformers Trainer (schedules, gradient accumulation, group_by_length).
 */
export class Trainer {
  model!: PolicyModel;
  tok!: LabTokenizer;
  /** The rows by split: FVQA-mini's train, test, heldout and sft, or the parquet files' train and test. */
  data!: { splits: Record<string, FvqaRow[]> };
  tools!: SearchTools;
  /** The tools a row's searches run on (RunEnvironment.rowTools). */
  rowTools!: (row: FvqaRow) => Promise<SearchTools>;
  state: TrainerState;
  private rng: E.Rng;
  /** The side of the model's square input images, in pixels. */
  imageSize = 0;
  private optimizer: E.AdamW | null = null;
  evalResult: EvalResult | null = null;
  /** The hub file being downloaded and when its last progress event went out (they are throttled). */
  private download = { file: '', at: 0 };
  /** When the last data progress event went out (they are throttled too). */
  private dataReportAt = -Infinity;
  /** The warm-start policy's on-demand evaluation (recipe eval.after_sft): the "before GRPO" row. */
  sftEvalResult: EvalResult | null = null;
  /** A GRPO step is being taken (a knob set now applies from the step after it). */
  private stepInFlight = false;

  constructor(readonly recipe: Recipe, readonly env: TrainerEnv) {
    const grpoSeed = recipe.grpo.seed ?? recipe.seed;
    this.rng = new E.Rng(grpoSeed);
    this.state = { phase: recipe.caption ? 'caption' : recipe.sft ? 'sft' : 'grpo', captionStep: 0, sftStep: 0, grpoStep: 0, rng: this.rng.state(), badSteps: 0, grpoSeed, genBatches: 0 };
  }

  private emit(e: TrainEvent): void {
    this.env.onEvent?.(e);
  }

  /**
   * Builds tokenizer, model, data and tools; resumes from the store's checkpoint when there is one.
   * Hub files are downloaded first (or served by env.hub's cache), with 'download' progress events; the
   * world's generation reports 'data' progress, and leaves out the warm start's drills past SFT.
   * @throws Error naming the file (and row and field, for bad data rows) when a model or data file is
   *   missing or malformed, when an `hf:` source has no env.hub, when the proxy backend has no
   *   env.proxyTools, or when the training split is smaller than one GRPO step's prompts
   */
  async setup(): Promise<void> {
    const hub = this.env.hub && { ...this.env.hub, onProgress: (p: DownloadProgress) => this.reportDownload(p) };
    const ckpt = await this.env.store.load();
    // Only SFT reads the warm start's drills, most of a drilled world's generation time: a run past SFT
    // (resumed, an --init-from ablation, an evaluation) does without them.
    const phase = ckpt ? readTrainerState(ckpt, this.recipe).phase : this.state.phase;
    const run = await buildRunEnvironment(this.recipe, this.env.backend, {
      readFile: (path) => this.env.readFile(path), proxyTools: this.env.proxyTools, hub, log: (message) => this.emit({ type: 'log', message }),
      onProgress: (p) => p.total !== null && this.reportData(p.done, p.total),
    }, { warmStartDrills: phase === 'caption' || phase === 'sft' });
    ({ model: this.model, tok: this.tok, imageSize: this.imageSize, data: this.data, tools: this.tools, rowTools: this.rowTools } = run);
    if (this.recipe.caption && !('imageSeqLen' in this.model)) throw new Error(`recipe caption: ${this.recipe.model.source} is a text-only model; captioning needs a vision-language model (or set caption to null)`);
    if (ckpt) await this.restore(ckpt);
  }

  /** A log line when a file starts downloading, then 'download' progress at most 4 times a second; cache hits are silent. */
  private reportDownload(p: DownloadProgress): void {
    if (p.fromCache) return;
    const now = performance.now();
    if (p.file !== this.download.file) {
      this.emit({ type: 'log', message: `downloading ${p.file} (${(p.total / 2 ** 20).toFixed(1)} MiB)` });
      this.download = { file: p.file, at: -Infinity };
    }
    // A report with every byte but not yet `done` is followed by the done one.
    if (!p.done && (p.loaded === p.total || now - this.download.at < 250)) return;
    this.download.at = now;
    this.emit({ type: 'progress', phase: 'download', done: p.loaded, total: p.total, etaSeconds: p.etaSeconds ?? null });
  }

  /** 'data' progress (the world's generation, then the warm start's encoding) at most 4 times a second, and each phase's last report. */
  private reportData(done: number, total: number): void {
    const now = performance.now();
    if (done < total && now - this.dataReportAt < 250) return;
    this.dataReportAt = now;
    this.emit({ type: 'progress', phase: 'data', done, total, etaSeconds: null });
  }

  /** Trainable parameters in a fixed order (the optimizer's and its checkpoint's). */
  private trainable(): E.Tensor[] {
    return this.model.parameters().filter((p) => p.requiresGrad);
  }
  /** AdamW over the trainable parameters with a phase's settings (captioning and SFT: their section's rate and decay; GRPO: the grpo section's). */
  private newOptimizer(phase: 'caption' | 'sft' | 'grpo'): E.AdamW {
    const g = this.recipe.grpo, c = this.recipe.caption, s = this.recipe.sft;
    if (phase === 'caption' && c) return new E.AdamW(this.trainable(), { lr: c.learning_rate, weightDecay: c.weight_decay });
    return phase === 'sft' && s
      ? new E.AdamW(this.trainable(), { lr: s.learning_rate, weightDecay: s.weight_decay })
      : new E.AdamW(this.trainable(), { lr: g.learning_rate, betas: [g.adam_beta1, g.adam_beta2], eps: g.adam_epsilon, weightDecay: g.weight_decay });
  }
  private trainableNames(): string[] {
    return this.model.namedParameters().filter(([, p]) => p.requiresGrad).map(([n]) => n);
  }

  private rolloutOptions(sampling: RolloutOptions['sampling']): Omit<RolloutOptions, 'mode'> {
    return { ...recipeRolloutOptions(this.recipe, this.imageSize), sampling, rowTools: this.rowTools };
  }

  /** Runs the remaining phases. `maxGrpoSteps` caps GRPO steps in this call (CI's few-step run). */
  async run(opts: { maxGrpoSteps?: number; signal?: AbortSignal } = {}): Promise<void> {
    if (this.state.phase === 'caption') await this.runCaption(opts.signal);
    if (this.state.phase === 'sft') await this.runSft(opts.signal);
    if (this.state.phase === 'grpo') await this.runGrpo(opts.maxGrpoSteps, opts.signal);
    if (this.state.phase === 'eval') await this.runEval();
  }

  /**
   * The warm-start rows replayed on their search tools and encoded as SFT trains them, in split order
   * (rows whose replayed search failed are left out and logged), each marked when it is a drill
   * (reading or look drill). `lossMask` marks the trained tokens: every assistant turn, except the
   * imposed first turn of a RAG-workflow row (`extra_info.search_mode` 'rag'); a reading drill's first
   * turn still trains the look it observed and, with recognition_first, that it does not recognise the
   * creature (`observedOpening`). Call after `setup()`; a run set up past SFT
   * has no drills in its sft split (setup generates them only for SFT).
   */
  async warmStartConversations(): Promise<WarmStartConversation[]> {
    const enc = new TurnEncoder(this.tok, 'imageSeqLen' in this.model ? this.model.imageSeqLen : 0, this.recipe.model.compact_instructions);
    const out: WarmStartConversation[] = [];
    let dropped = 0;
    const rows = this.data.splits.sft;
    for (const [i, row] of rows.entries()) {
      this.reportData(i + 1, rows.length);
      const replay = await replayWarmStart(row, await this.rowTools(row), this.recipe.grpo.search.results_per_search);
      const drill = drillWorldOf(row) !== null;
      const creature = row.extra_info?.entity_id ?? null;
      if (!replay) dropped++;
      else if (row.extra_info?.search_mode !== 'rag') {
        const decision = { kind: row.extra_info?.question_kind ?? row.category ?? '', searches: replay.messages.filter((m) => m.role === 'assistant').length > 1 };
        out.push({ ...encodeConversation(enc, replay.messages, replay.images), drill, creature, decision });
      } else {
        // A reading drill also trains the look it observed (many looks teach perception, not a dozen
        // creatures) and, with recognition_first, that it is new to the policy; the world's RAG-workflow
        // rows keep their whole first turn as context, as the documented reproduction ran
        // (docs/fvqa-mini-warm-start.md).
        const observed = drill ? observedOpening(replay.messages[1].content) : '';
        out.push({ ...encodeConversation(enc, replay.messages, replay.images, 1, observed), drill, creature, decision: null });
      }
    }
    if (dropped) this.emit({ type: 'log', message: `warm start: ${dropped} trajectories dropped (a search failed)` });
    return out;
  }

  /**
   * The caption stage (recipe.caption, ./captioning.ts): captions of fresh random looks at the stage's own
   * learning rate, then the warm start. Metrics (phase 'caption'): loss, grad_norm, learning_rate per step;
   * caption/parsed, caption/pattern, caption/colour, caption/shape, caption/marks (percent of eval_looks unseen
   * looks read right) every eval_steps steps and at the end. The steps are the perception probe's
   * (perceptionProbe) with the recipe's seed: the same looks, images and weights. With caption.name_copies,
   * each step from name_copies_from_step on also trains that many name copies (./copying.ts), and each evaluation adds copy/reasoning and
   * copy/action (percent of eval_looks unseen names copied).
   */
  private async runCaption(signal?: AbortSignal): Promise<void> {
    const c = this.recipe.caption!;
    const model = this.model as PolicyModel & { imageSeqLen: number };
    const enc = new TurnEncoder(this.tok, model.imageSeqLen, this.recipe.model.compact_instructions);
    const looks = captionLookStream(this.recipe.seed, c.per_device_train_batch_size, this.state.captionStep);
    const evalLooks = captionEvalLooks(this.recipe.seed, c.eval_looks);
    const evalCopies = c.name_copies ? copyEvalItems(this.recipe.seed, c.eval_looks) : [];
    const params = this.trainable();
    this.optimizer ??= this.newOptimizer('caption');
    const schedule = sftSchedule(c, c.max_steps);
    const t0 = performance.now();
    const startStep = this.state.captionStep;
    while (this.state.captionStep < c.max_steps) {
      if (signal?.aborted) return;
      const step = this.state.captionStep;
      const captions = captionBatch(enc, looks, this.recipe.seed, step, c.per_device_train_batch_size);
      const copies = step >= c.name_copies_from_step ? copyBatch(enc, this.recipe.seed, step, c.name_copies) : [];
      const batch = [...captions, ...copies];
      const ts = performance.now();
      // Captions and copies each at their own token-mean: the copies' longer replies do not thin the captions' gradient.
      const groups = copies.length ? [captions.length, copies.length] : undefined;
      const r = await sftStep(model, batch, { optimizer: this.optimizer, params, maxGradNorm: c.max_grad_norm, lr: schedule(step), microBatch: c.per_device_train_batch_size, padId: this.tok.specialIds.imEnd, imageSize: this.imageSize, groups });
      this.trackBadSteps(r.stepped, `caption step ${step}`);
      this.state.captionStep++;
      const sec = (performance.now() - ts) / 1000;
      const metrics: Record<string, number> = { loss: r.loss, grad_norm: r.gradNorm, learning_rate: schedule(step), 'time/step_s': sec, tokens_per_second: batch.reduce((n, b) => n + b.tokens.length, 0) / sec };
      if (this.state.captionStep % c.eval_steps === 0 || this.state.captionStep === c.max_steps) {
        const read = await captionAccuracy(model, this.tok, enc, evalLooks, this.recipe.seed, this.imageSize);
        for (const [k, v] of Object.entries(read)) metrics[`caption/${k}`] = v;
        this.emit({ type: 'log', message: `caption step ${this.state.captionStep}: unseen looks read right: pattern ${read.pattern}%, colour ${read.colour}%, shape ${read.shape}%, marks ${read.marks}%` });
        if (evalCopies.length) {
          const copied = await copyAccuracy(model, this.tok, enc, evalCopies, this.recipe.seed, this.imageSize);
          metrics['copy/reasoning'] = copied.reasoning;
          metrics['copy/action'] = copied.action;
          this.emit({ type: 'log', message: `caption step ${this.state.captionStep}: unseen names copied: into the reasoning ${copied.reasoning}%, into the query or answer ${copied.action}%` });
        }
      }
      this.emit({ type: 'metrics', phase: 'caption', step, metrics });
      this.emitProgress('caption', this.state.captionStep, c.max_steps, startStep, t0);
      if (this.state.captionStep % this.recipe.checkpoint_steps === 0) await this.save();
    }
    this.state.phase = this.recipe.sft ? 'sft' : 'grpo';
    this.optimizer?.dispose();
    this.optimizer = null;
    await this.save();
  }

  private async runSft(signal?: AbortSignal): Promise<void> {
    const s = this.recipe.sft!;
    const convs = await this.warmStartConversations();
    const plan = sftPlan(convs, s, this.recipe.seed);
    const total = plan.total;
    const params = this.trainable();
    this.optimizer ??= this.newOptimizer('sft');
    const schedule = sftSchedule(s, total);
    const t0 = performance.now();
    const startStep = this.state.sftStep;
    while (this.state.sftStep < total) {
      if (signal?.aborted) return;
      const step = this.state.sftStep;
      const { rows, normalizer, epoch, index, steps } = plan.step(step);
      // Sorted by length so that each micro-batch pads little.
      const batch = rows.map((i) => convs[i]).sort((a, b) => a.tokens.length - b.tokens.length);
      const ts = performance.now();
      const r = await sftStep(this.model, batch.map((c) => ({ tokens: c.tokens, completion_mask: c.lossMask, images: c.images })), { optimizer: this.optimizer, params, maxGradNorm: s.max_grad_norm, lr: schedule(step), microBatch: s.per_device_train_batch_size, padId: this.tok.specialIds.imEnd, imageSize: this.imageSize, normalizer });
      this.trackBadSteps(r.stepped, `SFT step ${step}`);
      this.state.sftStep++;
      const sec = (performance.now() - ts) / 1000;
      this.emit({ type: 'metrics', phase: 'sft', step, metrics: { loss: r.loss, grad_norm: r.gradNorm, learning_rate: schedule(step), 'time/step_s': sec, tokens_per_second: batch.reduce((n, c) => n + c.tokens.length, 0) / sec, epoch: epoch + index / steps, 'memory/peak_bytes': this.env.backend.memory().peakBytes } });
      this.emitProgress('sft', this.state.sftStep, total, startStep, t0);
      if (this.state.sftStep % this.recipe.checkpoint_steps === 0) await this.save();
    }
    if (this.recipe.eval.after_sft) {
      this.sftEvalResult = await this.evaluateSplit(['on_demand']);
      this.emit({ type: 'log', message: `warm-start policy before GRPO:\n${this.sftEvalResult.table}` });
    }
    this.state.phase = 'grpo';
    this.optimizer?.dispose();
    this.optimizer = null;
    await this.save();
  }

  private grpoTotalSteps(): number {
    const g = this.recipe.grpo;
    if (g.max_steps > 0) return g.max_steps;
    const { generation_batch_size } = resolveGenerationBatch(g);
    return Math.ceil((g.num_train_epochs * this.data.splits.train.length * g.num_generations) / generation_batch_size);
  }

  /**
   * The prompts of GRPO generation batch `b` (0-based over the run): each epoch is a permutation of the
   * training rows seeded by grpoSeed and the epoch, cut into batches of `prompts` (a remainder is skipped).
   */
  private promptBatch(b: number, prompts: number): FvqaRow[] {
    const train = this.data.splits.train;
    const perEpoch = Math.floor(train.length / prompts);
    const order = new E.Rng(this.state.grpoSeed * 104729 + Math.floor(b / perEpoch)).shuffle(train.map((_, i) => i));
    return order.slice((b % perEpoch) * prompts, (b % perEpoch + 1) * prompts).map((i) => train[i]);
  }

  /** The knobs in force at GRPO step `step`: the recipe's values with every change made for that step or earlier. */
  knobsAt(step: number): Knobs {
    const g = this.recipe.grpo;
    const k: Knobs = { search_penalty: g.reward.search_penalty, temperature: g.temperature, learning_rate: g.learning_rate };
    for (const c of this.state.knobs ?? []) if (c.step <= step) k[c.knob] = c.value;
    return k;
  }

  /**
   * Changes a knob from the next GRPO step on (the step in progress, if any, keeps its value). The change
   * is saved with the checkpoint, and every later step logs the knobs as `knobs/<name>` metrics.
   * @returns the change, with the step it applies from
   * @throws Error naming the knob when the value is out of range
   */
  setKnob(knob: keyof Knobs, value: number): KnobChange {
    if (!KNOB_NAMES.includes(knob)) throw new Error(`unknown knob ${JSON.stringify(knob)} (one of ${KNOB_NAMES.join(', ')})`);
    const ok = knob === 'search_penalty' ? value >= 0 && value <= 1 : value > 0 && Number.isFinite(value);
    if (!ok) throw new Error(`${knob} ${value}: ${knob === 'search_penalty' ? 'a number in [0, 1]' : 'a positive number'}`);
    const change = { step: this.state.grpoStep + (this.stepInFlight ? 1 : 0), knob, value };
    this.state.knobs = [...(this.state.knobs ?? []).filter((c) => !(c.step === change.step && c.knob === knob)), change];
    return change;
  }

  private async runGrpo(maxSteps?: number, signal?: AbortSignal): Promise<void> {
    const base = this.recipe.grpo;
    const total = this.grpoTotalSteps();
    const { generation_batch_size } = resolveGenerationBatch(base);
    const promptsPerStep = generation_batch_size / base.num_generations;
    const params = this.trainable();
    this.optimizer ??= this.newOptimizer('grpo');
    const ref = base.beta !== 0 && !this.recipe.model.lora ? this.frozenCopy() : undefined;
    // Metrics of the steps since the last log; an interval interrupted by a stop is not carried over a resume.
    const log = new MetricsWindow(base.logging_steps);
    const t0 = performance.now();
    const startStep = this.state.grpoStep;
    let ran = 0;
    try {
      while (this.state.grpoStep < total && (maxSteps === undefined || ran < maxSteps)) {
        if (signal?.aborted) return;
        const step = this.state.grpoStep;
        this.stepInFlight = true;
        const knobs = this.knobsAt(step);
        const g = { ...base, temperature: knobs.temperature, learning_rate: knobs.learning_rate, reward: { ...base.reward, search_penalty: knobs.search_penalty } };
        const schedule = grpoSchedule(g, total);
        this.rng.setState(this.state.rng);
        const tr = performance.now();
        const stats: (RolloutStats & { trajectories: number })[] = [];
        const batch = await collectTrainBatch(
          async (i) => {
            const rows = this.promptBatch(this.state.genBatches + i, promptsPerStep).flatMap((p) => Array<FvqaRow>(g.num_generations).fill(p));
            const r = await rollout(this.model, this.tok, rows, this.tools, { ...this.rolloutOptions({ temperature: g.temperature, topK: g.top_k, topP: g.top_p, rng: this.rng }), mode: 'on_demand' });
            stats.push({ ...r.stats, trajectories: r.trajectories.length });
            const scored = r.trajectories.map((t) => ({ t, score: scoreTrajectory(t, g.reward) }));
            return { items: scored, rewards: scored.map((x) => x.score.reward) };
          },
          { groups: promptsPerStep, num_generations: g.num_generations, filter_groups: g.filter_groups },
        );
        this.state.rng = this.rng.state();
        this.state.genBatches += batch.genBatches;
        const rolloutMs = performance.now() - tr;
        const trajectories = batch.items.map((x) => x.t), scores = batch.items.map((x) => x.score);
        if (g.filter_groups.enable && batch.genBatches > 1)
          this.emit({ type: 'log', message: `GRPO step ${step}: filter_groups drew ${batch.genBatches} generation batches; ${batch.keptGroups} groups had differing rewards, ${batch.filteredGroups} were dropped` });
        const adv = computeAdvantages(batch.rewards, g.num_generations, g.scale_rewards);
        const tt = performance.now();
        // TRL's mask_truncated_completions zeroes a truncated completion's completion_mask.
        const seqs = trajectories.map((t) => ({ tokens: t.tokens, completion_mask: g.mask_truncated_completions && t.truncated ? t.completion_mask.map(() => 0) : t.completion_mask, tool_mask: t.tool_mask, images: t.images }));
        const score = () => scoreTokens(this.model, seqs, { microBatch: g.per_device_train_batch_size, padId: this.tok.specialIds.imEnd, imageSize: this.imageSize, temperature: g.temperature });
        const before = this.env.inspect ? await score() : null;
        const m = await grpoUpdate(this.model, seqs, adv.advantages, {
          loss_type: g.loss_type, beta: g.beta, epsilon: g.epsilon, epsilon_high: g.epsilon_high, temperature: g.temperature,
          max_completion_length: g.max_completion_length, num_iterations: g.num_iterations, microBatch: g.per_device_train_batch_size,
          gradient_accumulation_steps: g.gradient_accumulation_steps, padId: this.tok.specialIds.imEnd, imageSize: this.imageSize,
          ref, withReference: (fn) => this.withAdapterDisabled(fn),
          optimizer: this.optimizer, params, maxGradNorm: g.max_grad_norm, lr: schedule(step),
        });
        const trainMs = performance.now() - tt;
        this.emit({
          type: 'rollouts', step, trajectories, rewards: batch.rewards, advantages: Array.from(adv.advantages), scores,
          meanGroupedRewards: Array.from(adv.meanGroupedRewards), stdRewards: Array.from(adv.stdRewards),
          logprobs: before ? { before, after: await score() } : undefined,
        });
        this.trackBadSteps(m.skipped_steps === 0, `GRPO step ${step}`);
        this.state.grpoStep++;
        ran++;
        const metrics = this.grpoMetrics(trajectories, scores, adv.metrics, m, mergeStats(stats), rolloutMs, trainMs, schedule(step));
        if (this.state.knobs?.length) for (const k of KNOB_NAMES) metrics[`knobs/${k}`] = knobs[k];
        if (g.filter_groups.enable) Object.assign(metrics, { 'train/num_gen_batches': batch.genBatches, 'filter_groups/kept_groups': batch.keptGroups, 'filter_groups/filtered_groups': batch.filteredGroups });
        const logged = log.add(this.state.grpoStep, metrics);
        if (logged) this.emit({ type: 'metrics', phase: 'grpo', step, metrics: logged });
        this.emitProgress('grpo', this.state.grpoStep, total, startStep, t0);
        this.stepInFlight = false;
        if (this.state.grpoStep % this.recipe.checkpoint_steps === 0) await this.save();
      }
      if (this.state.grpoStep >= total) this.state.phase = 'eval';
      await this.save();
    } finally {
      this.stepInFlight = false;
      ref?.dispose();
    }
  }

  /**
   * A GRPO step's metrics. Rollout counters (`stats`: searches, failures, truncated prompts, time) cover
   * every generation batch the step drew, and the per-trajectory tool rates are over those
   * `stats.trajectories`; the rest describes the trained batch `trajs`.
   */
  private grpoMetrics(
    trajs: Trajectory[], scores: RewardComponents[], advMetrics: Record<string, number>, m: Record<string, number>,
    stats: RolloutStats & { trajectories: number }, rolloutMs: number, trainMs: number, lr: number,
  ): Record<string, number> {
    const n = trajs.length;
    const mean = (f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i)).reduce((a, b) => a + b, 0) / n;
    const searched = (i: number) => +(trajs[i].toolTurns.length > 0);
    const byCat = (cat: string) => {
      const idx = trajs.map((t, i) => (t.row.category === cat ? i : -1)).filter((i) => i >= 0);
      return idx.length ? idx.reduce((a, i) => a + searched(i), 0) / idx.length : NaN;
    };
    const lengths = trajs.map((t) => t.tokens.length - t.promptLength);
    return {
      ...advMetrics,
      ...m,
      'rewards/accuracy/mean': mean((i) => scores[i].accuracy),
      'rewards/format/mean': mean((i) => scores[i].format),
      search_ratio: mean(searched),
      'search_ratio/search_free': byCat('search_free'),
      'search_ratio/search_required': byCat('search_required'),
      'tools/image_search_per_traj': stats.imageSearches / stats.trajectories,
      'tools/text_search_per_traj': stats.textSearches / stats.trajectories,
      'tools/failures': stats.imageSearchFailures + stats.textSearchFailures,
      'completions/mean_length': lengths.reduce((a, b) => a + b, 0) / n,
      'completions/clipped_ratio': mean((i) => +trajs[i].truncated),
      'prompts/truncated_ratio': stats.truncatedPrompts / stats.trajectories,
      learning_rate: lr,
      'time/rollout_s': (rolloutMs - stats.searchMs) / 1000,
      'time/search_s': stats.searchMs / 1000,
      'time/train_s': trainMs / 1000,
      tokens_per_second: trajs.reduce((a, t) => a + t.tokens.length, 0) / ((rolloutMs + trainMs) / 1000),
      'memory/peak_bytes': this.env.backend.memory().peakBytes,
    };
  }

  private async withAdapterDisabled<T>(fn: () => Promise<T>): Promise<T> {
    setAdapterEnabled(this.model, false);
    try {
      return await fn();
    } finally {
      setAdapterEnabled(this.model, true);
    }
  }

  /** A frozen copy of the policy (the reference for the KL term when every weight trains). */
  private frozenCopy(): PolicyModel {
    const copy = createModel(this.model.config as Parameters<typeof createModel>[0], this.env.backend, 0, true);
    const src = new Map(this.model.namedParameters());
    for (const [prefix, mod] of copy.namedModules())
      for (const [local] of mod.namedParameters().filter(([n]) => !n.includes('.'))) {
        const full = prefix ? `${prefix}.${local}` : local;
        mod.setParameter(local, E.noGrad(() => E.clone(src.get(full)!)).keep());
      }
    for (const p of copy.parameters()) p.requiresGrad = false;
    return copy;
  }

  private trackBadSteps(ok: boolean, what: string): void {
    this.state.badSteps = ok ? 0 : this.state.badSteps + 1;
    if (!ok) this.emit({ type: 'log', message: `${what}: loss or gradient not finite, step skipped` });
    if (this.state.badSteps >= 5) throw new Error(`${what}: 5 steps in a row had a non-finite loss or gradient; training stopped, the last good checkpoint is kept`);
  }

  private emitProgress(phase: Phase, done: number, total: number, start: number, t0: number): void {
    const rate = (done - start) / ((performance.now() - t0) / 1000);
    this.emit({ type: 'progress', phase, done, total, etaSeconds: rate > 0 ? (total - done) / rate : null });
  }

  /** Evaluation of the current policy on the recipe's split in `modes`: greedy, or eval.num_samples trajectories per row at eval.temperature (seeded by the recipe seed). */
  private async evaluateSplit(modes: readonly SearchMode[]): Promise<EvalResult> {
    const e = this.recipe.eval;
    const split = this.data.splits[e.split];
    if (!split) throw new Error(`eval.split ${e.split}: the data has ${Object.keys(this.data.splits).join(', ')}`);
    const subset = e.max_rows ? evalSubset(split, e.max_rows) : split;
    const samples = e.temperature > 0 ? e.num_samples : 1;
    const rows = subset.flatMap((r) => Array.from({ length: samples }, () => r));
    const sampling = { temperature: e.temperature, rng: new E.Rng(e.temperature > 0 ? this.recipe.seed : 0) };
    const r = await evaluate(this.model, this.tok, rows, this.tools, modes, { ...this.rolloutOptions(sampling), batchSize: e.batch_size }, (done, total) =>
      this.emit({ type: 'progress', phase: 'eval', done, total, etaSeconds: null }),
    );
    return { ...r, table: table1(r.summaries) };
  }

  private async runEval(): Promise<void> {
    this.evalResult = await this.evaluateSplit(this.recipe.eval.modes);
    this.state.phase = 'done';
    await this.save();
  }

  /** Writes the checkpoint (./checkpoint.ts): weights at full precision, optimizer state, trainer state, eval results. */
  async save(): Promise<void> {
    const optimizer = this.optimizer && { optimizer: this.optimizer, names: this.trainableNames() };
    await this.env.store.save(await checkpointFiles({ recipe: this.recipe, model: this.model, state: this.state, optimizer, evals: { eval: this.evalResult, 'eval-sft': this.sftEvalResult } }));
  }

  private async restore(files: Map<string, Uint8Array>): Promise<void> {
    const st = readTrainerState(files, this.recipe);
    await loadCheckpointWeights(this.model, files);
    this.sftEvalResult = readEvalResult(files, 'eval-sft') ?? this.sftEvalResult;
    this.state = st;
    this.rng.setState(st.rng);
    if (files.has('optimizer.safetensors') && (st.phase === 'caption' || st.phase === 'sft' || st.phase === 'grpo')) {
      this.optimizer = this.newOptimizer(st.phase);
      await loadOptimizerState(files, this.optimizer, this.trainableNames());
    }
    this.emit({ type: 'log', message: `resumed at ${st.phase}, ${this.recipe.caption ? `caption step ${st.captionStep}, ` : ''}SFT step ${st.sftStep}, GRPO step ${st.grpoStep}` });
  }
}

/** Rollout counters of several generation batches added up, with the number of trajectories they cover. */
function mergeStats(all: readonly (RolloutStats & { trajectories: number })[]): RolloutStats & { trajectories: number } {
  const out = { imageSearches: 0, textSearches: 0, imageSearchFailures: 0, textSearchFailures: 0, generateMs: 0, searchMs: 0, generatedTokens: 0, truncatedPrompts: 0, trajectories: 0 };
  for (const s of all) for (const k of Object.keys(out) as (keyof typeof out)[]) out[k] += s[k];
  return out;
}
