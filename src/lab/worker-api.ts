/**
 * The two web workers' APIs, as the page (src/ui/lab.ts, the views) and the command line's Chromium
 * page (scripts/chromium/) call them through comlink: {@link TrainerApi}, implemented by
 * workers/trainer.worker.ts, and {@link InferenceApi}, implemented by workers/inference.worker.ts, with
 * the options, events and results that cross between the page and a worker.
 */
import type * as E from '../engine/index.js';
import type { FvqaMiniConfig } from '../data/fvqa-mini.js';
import type { RolloutRecord } from '../export/rollouts.js';
import type { TurnPart } from '../protocol/tools.js';
import type { KnobChange, Knobs, Phase } from '../rl/checkpoint.js';
import type { EvalRecord, ModeSummary } from '../rl/evaluate.js';
import type { Recipe } from '../rl/recipe.js';
import type { SearchMode } from '../rl/rollout.js';
import type { TrainEvent } from '../rl/trainer.js';
import type { ImageQuery, ImageSearchResult, TextSearchResult } from '../search/types.js';
import type { CheckpointStore } from '../storage/checkpoint-store.js';
import type { DatasetInfo } from '../storage/store.js';
import type { AdapterReport } from './lab-env.js';
import type { MetricRow, RunRecord } from './runs-store.js';

/** Messages from the trainer worker to the page (delivered in batches). */
export type TrainerUpdate =
  | Extract<TrainEvent, { type: 'progress' | 'log' }>
  | { type: 'metrics'; row: MetricRow }
  | { type: 'rollouts'; step: number }
  | { type: 'status'; run: RunRecord };

/** Options of {@link TrainerApi.start}. */
export interface StartOptions {
  /** Resume this stored run from its checkpoint (its stored recipe is used). */
  resumeRunId?: string;
  /** The compute backend: auto (default), webgpu, wasm or cpu (engine/select.ts). */
  backend?: E.BackendChoice;
  /** The search proxy's URL, for recipes with search.backend "proxy". */
  proxyUrl?: string;
  /** The hub endpoint for `hf:` models and data files (default https://huggingface.co). */
  hubEndpoint?: string;
  /**
   * A new run starts from this shipped warm-start checkpoint (`checkpoints/fvqa-mini/warm-start`): its
   * files become the run's first checkpoint, as `npm run train -- --init-from` does.
   */
  initFrom?: string;
  /** Re-score every GRPO batch before and after its update for the step inspector (default true). */
  inspect?: boolean;
}

/** What the page supplies to {@link TrainerApi.runHosted} (a Comlink.proxy): the run's files, checkpoint, searches and event sink. */
export interface TrainerHost {
  /** Reads a file a recipe names, e.g. `models/tiny-vlm/config.json`. @throws Error naming the file when it is missing */
  readFile(path: string): Promise<Uint8Array>;
  loadCheckpoint: CheckpointStore['load'];
  saveCheckpoint: CheckpointStore['save'];
  /** The proxy backend's searches, run by the host (a page on another origin than the lab's may not reach the proxy). @throws Error when the search fails */
  textSearch(query: string, k: number): Promise<TextSearchResult[]>;
  /** @throws Error when the search fails */
  imageSearch(query: ImageQuery, k: number): Promise<ImageSearchResult[]>;
  onEvent(e: HostedEvent): void;
}

/** The Trainer's events, with a GRPO step's trajectories as rollouts.jsonl records (src/export/rollouts.ts). */
export type HostedEvent = Exclude<TrainEvent, { type: 'rollouts' }> | { type: 'rollouts'; step: number; records: RolloutRecord[] };

/** Options of {@link TrainerApi.runHosted}. */
export interface HostedOptions {
  /** Stop after this many GRPO steps in this call (the checkpoint is written). */
  maxGrpoSteps?: number;
  /** The compute backend (default auto). */
  backend?: E.BackendChoice;
  /** Only evaluate the restored checkpoint (`npm run eval`). */
  evalOnly?: boolean;
  /** Send each GRPO step's trajectories as `rollouts` events (else they are not sent). */
  rolloutRecords?: boolean;
  /** The hub for `hf:` models and data files: endpoint (default https://huggingface.co) and request headers (a token). */
  hub?: { endpoint?: string; headers?: Record<string, string> };
}

/** Where a hosted run stopped, and its evaluation when it reached one. */
export interface HostedResult {
  phase: Phase;
  sftStep: number;
  grpoStep: number;
  eval: { summaries: ModeSummary[]; records: EvalRecord[]; table: string } | null;
}

/**
 * The trainer worker: owns its backend, runs a recipe through the Trainer (warm-start SFT -> GRPO ->
 * evaluation) with its run stored in IndexedDB (./runs-store.ts), streams progress, metrics and logs to
 * the page; generates FVQA-mini into the dataset store; runs a hosted recipe for the command line.
 */
export interface TrainerApi {
  /** The WebGPU adapter this worker sees. */
  adapter(): Promise<AdapterReport>;

  /** Sets the function that receives batched updates (a Comlink.proxy from the page). */
  listen(fn: (batch: TrainerUpdate[]) => void): void;

  /** Generates FVQA-mini and stores its splits as datasets `<prefix>-train`, ... in the dataset store (prefix default `fvqa-mini`). */
  generateDataset(config: Partial<FvqaMiniConfig>, prefix?: string): Promise<DatasetInfo[]>;

  /**
   * Starts a new run of `recipe` (or resumes a stored one). Resolves with the run record once the
   * model, data and tools are built (and the checkpoint restored); training goes on in the background.
   * @throws ConfigError for an invalid recipe; Error when WebGPU is missing and cpu is not set
   */
  start(recipe: unknown, opts?: StartOptions): Promise<RunRecord>;

  /**
   * Step-through mode on or off: when on, a run pauses after each GRPO step (the one in progress
   * finishes first) and {@link TrainerApi.step} takes the next one.
   */
  setStepThrough(on: boolean): void;

  /** Takes exactly one GRPO step of the paused run, then pauses again. @throws Error when no run is paused */
  step(): void;

  /**
   * Changes a GRPO knob of the current run from its next step on (see Trainer.setKnob); a paused run's
   * checkpoint is saved with the change, so a resume keeps it.
   * @throws Error when there is no run, or the knob or value is invalid
   */
  setKnob(knob: keyof Knobs, value: number): Promise<KnobChange>;

  /** The backend a run trains on for `choice` (default auto): its description, why it was picked, and any warning. */
  describeBackend(choice?: E.BackendChoice): Promise<{ name: E.Backend['name']; description: string; reason: string; warning?: string }>;

  /**
   * Runs `recipe` on WebGPU until it is done (or `maxGrpoSteps` GRPO steps were taken) with the
   * host's files, checkpoint store, searches (search.backend proxy) and event sink: only hub downloads
   * go to IndexedDB (its hub cache). Resumes from the host's checkpoint when there is one. Independent
   * of the lab's run (`start`).
   * @throws ConfigError for an invalid recipe; Error from the Trainer (missing file, GPU lost, ...)
   */
  runHosted(recipe: unknown, host: TrainerHost, opts?: HostedOptions): Promise<HostedResult>;

  /** Pauses at the next step boundary and writes a checkpoint. */
  pause(): Promise<void>;

  /** Continues a paused run in this worker (one GRPO step in step-through mode). */
  resume(): Promise<void>;

  /** Stops at the next step boundary, writes a checkpoint and frees the model. */
  stop(): Promise<void>;
}

/** Which policy to load: untrained, a stored run's checkpoint, a shipped checkpoint folder (`checkpoints/fvqa-mini/grpo`), or a hub model. */
export type ModelSpec = { kind: 'fresh'; recipe?: Recipe } | { kind: 'run'; runId: string } | { kind: 'shipped'; folder: string } | { kind: 'hub'; ref: string; endpoint?: string };

/** What a chat streams to the page. */
export type ChatEvent =
  | { type: 'turn'; index: number }
  | { type: 'token'; index: number; text: string }
  | { type: 'call'; index: number; call: string }
  | { type: 'tool'; parts: TurnPart[]; error: boolean }
  | { type: 'done'; answer: string | null };

/**
 * How a policy decides on one question, sampled (InferenceApi.sampleDecisions): `samples` on-demand
 * trajectories at `temperature`, counted by whether they searched (the per-question search ratio the
 * GRPO curves average) and by their final answers, most frequent first.
 */
export interface SampledDecisions {
  samples: number;
  temperature: number;
  /** Trajectories with at least one executed search. */
  searched: number;
  /** Trajectories with an executed image search, and with an executed text search. */
  imageSearched: number;
  textSearched: number;
  /** Final answers (null: none given) with their counts and, when an expected answer was given, whether each is right (exact match after normalisation, the reward's EM). */
  answers: { answer: string | null; count: number; correct: boolean | null }[];
}

/** A dataset row offered to the chat as a starting point. */
export interface ChatSample {
  id: string;
  question: string;
  answer: string;
  category: string | null;
  image: string;
}

/**
 * A policy the inference worker loaded (InferenceApi.load). `key` names it in the calls that use it (chat,
 * samples, sampleDecisions, evaluate): the views share one worker, so when another view has loaded another
 * model since, the worker loads this one again before answering, instead of answering with the other. A call
 * with a key that load did not return is refused with an Error naming the key.
 */
export interface LoadedModel {
  key: string;
  label: string;
  parameters: number;
  search: string;
  loraModules: number;
}

/**
 * The inference worker: loads a policy on its own backend and chats with it or evaluates it, exports a
 * stored run's checkpoint as Hugging Face files and imports such files as a run. Loads and the calls that use
 * a model run one at a time, in the order they were made (a load never swaps the model under a running chat).
 */
export interface InferenceApi {
  /**
   * Loads a policy with the tokenizer, world and search tools of its recipe (the main recipe's for
   * hub models). `proxyUrl` routes searches through the proxy instead of the in-worker engine.
   * @throws Error naming the run, folder or file that is missing or does not load
   */
  load(spec: ModelSpec, opts?: { backend?: E.BackendChoice; proxyUrl?: string }): Promise<LoadedModel>;

  /**
   * A run's checkpoint as one ZIP of Hugging Face files: the model folder (config.json,
   * model.safetensors with any LoRA merged, tokenizer files) or, with `adapter`, the PEFT adapter
   * with its base model under base/; plus the run's recipe (`mmsearch_lab_recipe.json`).
   * @throws when the run has no checkpoint, or `adapter` is asked of a run without LoRA
   */
  exportModel(runId: string, opts?: { adapter?: boolean; backend?: E.BackendChoice }): Promise<Uint8Array>;

  /**
   * Stores a model folder (a ZIP from {@link InferenceApi.exportModel}, or loose config.json +
   * model.safetensors [+ tokenizer files]) as a finished run whose checkpoint Chat, Evaluate and Setup
   * can use. The weights are loaded once to check them. The run's recipe is the ZIP's own when it
   * carries one (world, tokenizer), else `recipe` (the lab's current one); its model is the imported checkpoint.
   * @throws naming the file or tensor when the folder is incomplete or does not load
   */
  importModel(picked: File[], opts: { recipe: Recipe; backend?: E.BackendChoice }): Promise<RunRecord>;

  /** Rows of `model`'s world to chat about (split default test), `n` (default 12) taken round-robin over the question kinds. */
  samples(model: string, split?: 'test' | 'train', n?: number): Promise<ChatSample[]>;

  /**
   * One conversation, through the same agent loop as training and evaluation (rl/rollout.ts `rollout`)
   * with a batch of one: the question with its image, then assistant turns streamed token by token;
   * searches run through the tools within the recipe's limits and their results are inserted. With
   * `rag`, the RAG workflow of Table 1 (ragAction): image search, then text search, each inserted after
   * the policy's reasoning.
   */
  chat(req: { model: string; image: Uint8Array; question: string; temperature: number; maxTurns: number; seed?: number; rag?: boolean }, onEvent: (e: ChatEvent) => void): Promise<{ turns: string[]; answer: string | null }>;

  /**
   * The policy's decision on one question, sampled: `samples` (1-64) on-demand trajectories of the
   * question with its image at `temperature` (default the recipe's GRPO temperature, where the search
   * ratio curves are measured), seeded by `seed` (default 0), run in batches of the recipe's
   * eval.batch_size. `expected` (a dataset answer) marks each distinct answer right or wrong.
   * @throws Error for a sample count outside 1-64 or a negative temperature
   */
  sampleDecisions(req: { model: string; image: Uint8Array; question: string; expected?: string; samples: number; temperature?: number; seed?: number }, onProgress: (done: number, total: number) => void): Promise<SampledDecisions>;

  /** The three-mode evaluation (greedy) on a split of the loaded recipe's world, on `maxRows` rows taken round-robin over the question kinds. */
  evaluate(req: { model: string; split: 'test' | 'heldout' | 'train'; modes: SearchMode[]; maxRows: number | null }, onProgress: (done: number, total: number) => void): Promise<{ label: string; summaries: ModeSummary[]; table: string }>;
}
