/**
 * A lab recipe as a veRL run with MMSearch-R1's multi-turn search rollout: the option mapping, the
 * launch script (`run_mmsearch_r1_grpo.sh`) and the README that says what does not carry over.
 *
 * Every option name below was read in the code it names (no name is guessed):
 *  - MMS_YAML: EvolvingLMMs-Lab/multimodal-search-r1@583c6b4 `mmsearch_r1/trainer/multimodal/config/ppo_trainer.yaml`
 *    (plain Hydra override `key=value`);
 *  - MMS_CODE: read by MMSearch-R1's Python (`ray_trainer.py`, `fsdp_workers.py`) but absent from that
 *    yaml, so passed with Hydra's `+key=value`, as the authors' `scripts/run_mmsearch_r1_grpo.sh` does;
 *  - UPSTREAM: volcengine/verl (`verl/trainer/config/*.yaml`, `core_algos.py` agg_loss at b178a3c and at
 *    8e9e737, the commit MMSearch-R1 pins as its `verl` submodule) but not read by MMSearch-R1's
 *    `main_ppo`, whose actor (`workers/multimodal/actor/dp_actor.py`) is its own: written as comments.
 */
import type { FvqaRow } from '../data/types.js';
import { resolveGenerationBatch } from '../rl/config.js';
import type { Recipe } from '../rl/recipe.js';

/** How an option reaches the run. */
export type MappingStatus = 'override' | 'append' | 'upstream' | 'none';

/** One recipe field and its veRL / MMSearch-R1 option. */
export interface MappingEntry {
  /** Dotted recipe path (e.g. `grpo.beta`), or a description for derived values. */
  field: string;
  /** Hydra option path; empty when `status` is `none`. */
  option: string;
  /** The value as written in the script (Hydra override syntax). */
  value: string;
  /** override: in MMSearch-R1's yaml; append: read by its code, passed as `+option`; upstream: veRL only (comment); none: no equivalent. */
  status: MappingStatus;
  /** Where the name was verified (repository file, line or key). */
  verified: string;
  /** How the run differs, when it does. */
  note?: string;
}

const MMS = 'multimodal-search-r1@583c6b4';
const YAML = `${MMS} trainer/multimodal/config/ppo_trainer.yaml`;
const UPSTREAM = 'volcengine/verl@b178a3c';

/** Hydra override value: numbers in JS shortest form, booleans as True/False, null, lists, strings quoted when needed. */
export function hydraValue(v: unknown): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new Error(`hydraValue: ${v} is not a finite number`);
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(hydraValue).join(',')}]`;
  const s = String(v);
  return /^[\w./$-]+$/.test(s) && !/^(true|false|null|[-\d.e+]+)$/i.test(s) ? s : `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** TRL loss_type -> upstream veRL loss_agg_mode (agg_loss modes in core_algos.py). */
const LOSS_AGG_MODE: Record<Recipe['grpo']['loss_type'], { mode: string; note: string }> = {
  grpo: { mode: 'seq-mean-token-mean', note: 'per-sequence token means, averaged over sequences: same as TRL grpo' },
  bnpo: { mode: 'token-mean', note: 'token mean: at 8e9e737 over the micro-batch (= bnpo); at b178a3c over the global batch' },
  dr_grpo: { mode: 'seq-mean-token-sum-norm', note: 'token sums divided by the padded response length (TRL also divides by the batch size B)' },
  dapo: { mode: 'token-mean', note: 'b178a3c divides by the tokens of the global batch (= dapo); 8e9e737 by those of the micro-batch (= bnpo)' },
};

/** Options the multi-turn search run needs regardless of the recipe (MMSearch-R1's own launch script sets them). */
const FIXED: MappingEntry[] = [
  { field: '(GRPO)', option: 'algorithm.adv_estimator', value: 'grpo', status: 'override', verified: YAML },
  { field: '(multi-turn rollout)', option: 'actor_rollout_ref.rollout.name', value: 'vllm_multiturn_mmsearch', status: 'override', verified: `${MMS} trainer/multimodal/main_ppo.py:142` },
  { field: '(multi-turn loss mask)', option: 'actor_rollout_ref.actor.use_multi_turn_response_mask', value: 'True', status: 'override', verified: `${MMS} main_ppo.py:143 asserts it with vllm_multiturn_mmsearch` },
  { field: '(no entropy bonus in the lab)', option: 'actor_rollout_ref.actor.entropy_coeff', value: '0', status: 'override', verified: `${YAML}; dp_actor.py:309` },
  { field: '(images column)', option: 'data.image_key', value: 'images', status: 'override', verified: YAML },
  { field: '(prompts)', option: 'data.user_prompt_round_1', value: 'mmsearch_r1/prompts/round_1_user_prompt_qwenvl.pkl', status: 'override', verified: `${MMS} scripts/run_mmsearch_r1_grpo.sh` },
  { field: '(prompts)', option: 'data.user_prompt_after_image_search', value: 'mmsearch_r1/prompts/after_image_search_prompt_qwenvl.pkl', status: 'override', verified: `${MMS} scripts/run_mmsearch_r1_grpo.sh` },
  { field: '(prompts)', option: 'data.user_prompt_after_text_search', value: 'mmsearch_r1/prompts/after_text_search_prompt_qwenvl.pkl', status: 'override', verified: `${MMS} scripts/run_mmsearch_r1_grpo.sh` },
  { field: '(GRPO has no critic)', option: 'trainer.critic_warmup', value: '0', status: 'override', verified: YAML },
  { field: '(cluster)', option: 'trainer.n_gpus_per_node', value: '$N_GPUS', status: 'override', verified: YAML },
  { field: '(cluster)', option: 'trainer.nnodes', value: '$N_NODES', status: 'override', verified: YAML },
  { field: '(logging)', option: 'trainer.logger', value: "['console']", status: 'override', verified: YAML },
  { field: '(vLLM on each GPU)', option: 'actor_rollout_ref.rollout.tensor_model_parallel_size', value: '1', status: 'override', verified: `${YAML} (default 2: fails on 1 GPU); the authors' script sets 1` },
  { field: '(log-prob micro-batch)', option: 'actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu', value: '$MICRO', status: 'override', verified: `${MMS} ray_trainer.py:352 check_mutually_exclusive (ValueError when unset)` },
  { field: '(log-prob micro-batch)', option: 'actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu', value: '$MICRO', status: 'override', verified: `${MMS} ray_trainer.py:345 check_mutually_exclusive (ValueError when unset)` },
  { field: '(padding-free forward)', option: 'actor_rollout_ref.model.use_remove_padding', value: 'True', status: 'override', verified: `${YAML} (default is the string "Falseva"); the authors' script sets True` },
  { field: '(memory: fewer than the authors\' 8 GPUs)', option: 'actor_rollout_ref.actor.fsdp_config.param_offload', value: '$OFFLOAD', status: 'override', verified: `${YAML}; fsdp_workers.py:104`, note: 'True below 8 GPUs: the 7B model\'s weights, gradients and AdamW state in fp32 take about 112 GB, more than one 80 GB GPU holds (an estimate, not measured)' },
  { field: '(memory: fewer than the authors\' 8 GPUs)', option: 'actor_rollout_ref.actor.fsdp_config.optimizer_offload', value: '$OFFLOAD', status: 'override', verified: `${YAML}; fsdp_workers.py:105` },
  { field: '(memory: reference policy)', option: 'actor_rollout_ref.ref.fsdp_config.param_offload', value: 'True', status: 'override', verified: `${YAML}; the authors' script sets True` },
];

/** Qwen2.5-VL, the model MMSearch-R1's rollout, prompts and loader are written for (its scripts/run_mmsearch_r1_grpo.sh trains the 7B). */
export const DEFAULT_VERL_MODEL = 'Qwen/Qwen2.5-VL-7B-Instruct';

/**
 * data.max_prompt_length of the export: the authors' value (scripts/run_mmsearch_r1_grpo.sh). The
 * loader tokenises the chat-templated round-1 prompt (1,934 characters) + question with every
 * `<image>` expanded to Qwen2.5-VL's image tokens (a 512x512 image after its resize: 324) and raises
 * when that exceeds max_prompt_length (truncation='error'), so the lab's max_prompt_length, counted in
 * tiny-vlm tokens, does not carry over.
 */
export const VERL_MAX_PROMPT_LENGTH = 4096;

/** Facts about MMSearch-R1's round-1 user prompt (mmsearch_r1/prompts/round_1_user_prompt_qwenvl.pkl at 583c6b4), which its loader prepends to each row's first message. */
export const ROUND_1_PROMPT = { chars: 1934, asciiOnly: true, imagePlaceholders: 1, endsWith: '<image> ' } as const;

/**
 * A lab row as MMSearch-R1's loader expects it (the authors' mmsearch_r1/data/mini_data.pq): the first
 * user message is the bare question (the loader prepends the round-1 prompt, which ends in `<image>`),
 * data_source `mmsearch_r1/<name>` (its reward routes only names containing `mmsearch_r1` or
 * `imsearch` to the search reward), no extra_info. images, reward_model, category, data_id and
 * image_urls are kept.
 * @param name data_source suffix, e.g. `fvqa_mini_train`
 * @throws when the row has no bare question (extra_info.question) and its first message holds lab
 *   instructions or `<image>`, or when it has other than one image
 */
export function verlRow(row: FvqaRow, name: string): FvqaRow {
  const content = row.extra_info?.question ?? row.prompt[0]?.content;
  if (!content || content.includes('<image>')) throw new Error(`verlRow ${row.data_id}: needs the bare question (extra_info.question); its prompt holds <image> or instructions`);
  if (row.images.length !== 1) throw new Error(`verlRow ${row.data_id}: ${row.images.length} images; the round-1 prompt has one <image>`);
  return { ...row, prompt: [{ role: 'user', content }], data_source: `mmsearch_r1/${name}`, extra_info: null };
}

/** Where the export's files are, as the script sees them. */
export interface VerlPaths {
  /** actor_rollout_ref.model.path: a Qwen2.5-VL folder or hub id (shell word; may expand $MODEL_PATH). */
  modelPath: string;
  /** Train and validation parquet (shell words, or a Hydra list of them; `$HERE` is the script's folder). */
  trainFiles: string;
  valFiles: string;
}

/** The recipe's batch sizes in veRL's units, before the launch script fits them to the GPUs. */
export interface VerlBatchPlan {
  /** actor_rollout_ref.rollout.n (= grpo.num_generations). */
  n: number;
  /** data.train_batch_size: prompts per step (generation batch / n). */
  trainPrompts: number;
  /** actor_rollout_ref.actor.ppo_mini_batch_size: prompts per optimizer step. */
  miniPrompts: number;
  /** ppo_micro_batch_size_per_gpu wanted (grpo.per_device_train_batch_size), capped by the script at each GPU's mini-batch share. */
  micro: number;
}

/**
 * The recipe's batch sizes as veRL counts them (prompts for train / mini-batch, rollouts for micro).
 * @throws when the optimizer mini-batch does not hold whole groups of num_generations
 */
export function verlBatchPlan(recipe: Recipe): VerlBatchPlan {
  const g = recipe.grpo;
  const G = g.num_generations;
  const { generation_batch_size } = resolveGenerationBatch(g);
  const miniRollouts = g.per_device_train_batch_size * g.gradient_accumulation_steps;
  if (miniRollouts % G !== 0) throw new Error(`grpo: the optimizer mini-batch (per_device_train_batch_size ${g.per_device_train_batch_size} x gradient_accumulation_steps ${g.gradient_accumulation_steps} = ${miniRollouts} rollouts) must hold whole groups of ${G} for veRL's ppo_mini_batch_size (counted in prompts)`);
  return { n: G, trainPrompts: generation_batch_size / G, miniPrompts: Math.min(miniRollouts, generation_batch_size) / G, micro: g.per_device_train_batch_size };
}

/**
 * Maps every recipe field to its veRL / MMSearch-R1 option (or to none, with the reason), in the
 * order the launch script writes them.
 * @throws when the recipe's batch sizes cannot be expressed in whole prompts (generation batch or
 *   mini-batch not a multiple of num_generations)
 */
export function verlMapping(recipe: Recipe, paths: VerlPaths): MappingEntry[] {
  const g = recipe.grpo;
  const G = g.num_generations;
  const { steps_per_generation } = resolveGenerationBatch(g);
  verlBatchPlan(recipe);
  const e = (field: string, option: string, value: unknown, status: MappingStatus, verified: string, note?: string): MappingEntry => ({ field, option, value: typeof value === 'string' && value.includes('$') ? value : hydraValue(value), status, verified, ...(note ? { note } : {}) });
  const none = (field: string, note: string): MappingEntry => ({ field, option: '', value: '', status: 'none', verified: '-', note });
  const agg = LOSS_AGG_MODE[g.loss_type];
  const total = g.max_steps > 0 ? g.max_steps : null;
  const warmupRatio = g.warmup_steps > 0 ? (total ? g.warmup_steps / total : null) : g.warmup_ratio;
  const schedule = g.lr_scheduler_type;
  const lora = recipe.model.lora;

  const out: MappingEntry[] = [
    ...FIXED,
    e(`model.source (${recipe.model.source})`, 'actor_rollout_ref.model.path', paths.modelPath, 'override', YAML, `default ${DEFAULT_VERL_MODEL} ($MODEL_PATH): the rollout, its prompts and the loader (image_grid_thw, get_rope_index) are Qwen2.5-VL's; the lab's architectures (Idefics3 / SmolVLM, tiny-vlm, Llama, Qwen2) do not run in that trainer`),
    e('data (train split)', 'data.train_files', paths.trainFiles, 'override', YAML),
    e(`eval.split (${recipe.eval.split}) and heldout`, 'data.val_files', paths.valFiles, 'override', YAML),
    e('seed', '+data.seed', recipe.seed, 'append', `${MMS} ray_trainer.py:431 data.get('seed', 1)`, 'seeds the train dataloader shuffle only; sampling seeds are vLLM\'s'),
    e('grpo.num_generations', 'actor_rollout_ref.rollout.n', G, 'override', `${YAML}; ray_trainer.py:1051`),
    e('grpo generation batch / num_generations', 'data.train_batch_size', '$TRAIN_PROMPTS', 'override', `${YAML}; ray_trainer.py:315 (x rollout.n, divisible by the GPUs)`, 'rounded up by the script so that each GPU gets whole rollouts and whole mini-batches'),
    e('grpo.per_device_train_batch_size x gradient_accumulation_steps / num_generations', 'actor_rollout_ref.actor.ppo_mini_batch_size', '$MINI_PROMPTS', 'override', `${YAML}; fsdp_workers.py:112 (x rollout.n / GPUs)`, `rounded up by the script to a multiple of GPUs / gcd(n, GPUs)${steps_per_generation % g.gradient_accumulation_steps ? '; the generation batch is not a whole number of mini-batches' : ''}`),
    e('grpo.per_device_train_batch_size', 'actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu', '$MICRO', 'override', `${YAML}; dp_actor.py:267 (mini-batch share // micro: 0 would divide by zero)`, 'the largest divisor of each GPU\'s mini-batch share that is at most the recipe\'s value'),
    e('grpo.num_iterations', 'actor_rollout_ref.actor.ppo_epochs', g.num_iterations, 'override', `${YAML}; dp_actor.py:262`),
    e('(KL in the loss, never in the reward)', 'actor_rollout_ref.actor.use_kl_loss', true, 'override', `${YAML}; ray_trainer.py:1106 (False calls apply_kl_penalty before old log-probs exist: KeyError)`, g.beta === 0 ? 'beta 0: the KL term is computed and weighted 0' : undefined),
    e('grpo.beta', 'actor_rollout_ref.actor.kl_loss_coef', g.beta, 'override', `${YAML}; dp_actor.py:336`),
    e('grpo.beta (k3 estimator)', 'actor_rollout_ref.actor.kl_loss_type', 'low_var_kl', 'override', `${YAML}; dp_actor.py:332`),
    e('grpo.epsilon', 'actor_rollout_ref.actor.clip_ratio', g.epsilon, 'override', YAML, 'deprecated in dp_actor.py:306; low/high are used'),
    e('grpo.epsilon', 'actor_rollout_ref.actor.clip_ratio_low', g.epsilon, 'override', `${YAML}; dp_actor.py:308`),
    e('grpo.epsilon_high (else epsilon)', 'actor_rollout_ref.actor.clip_ratio_high', g.epsilon_high ?? g.epsilon, 'override', `${YAML}; dp_actor.py:307`),
    e(`grpo.loss_type (${g.loss_type})`, 'actor_rollout_ref.actor.loss_agg_mode', agg.mode, 'upstream', `${UPSTREAM} core_algos.py agg_loss; actor.yaml:82`, `MMSearch-R1's actor always takes masked_mean over the micro-batch (= TRL bnpo); upstream: ${agg.note}`),
    ...(g.scale_rewards === 'none'
      ? [e('grpo.scale_rewards (none)', '+trainer.grpo_denormalize', true, 'append', `${MMS} ray_trainer.py:1201`), e('grpo.scale_rewards (none)', 'algorithm.norm_adv_by_std_in_grpo', false, 'upstream', `${UPSTREAM} ppo_trainer.yaml:84`)]
      : g.scale_rewards === 'batch'
        ? [none('grpo.scale_rewards (batch)', 'veRL normalises by the group std only (core_algos.py compute_grpo_outcome_advantage); the run uses group')]
        : [e('grpo.scale_rewards (group)', '+trainer.grpo_denormalize', false, 'append', `${MMS} ray_trainer.py:1201`)]),
    e('grpo.learning_rate', 'actor_rollout_ref.actor.optim.lr', g.learning_rate, 'override', `${YAML}; fsdp_workers.py:295`),
    ...(warmupRatio === null
      ? [none('grpo.warmup_steps', 'max_steps is -1: the step count is not known here, so warmup_steps cannot become a ratio')]
      : [e(g.warmup_steps > 0 ? 'grpo.warmup_steps / max_steps' : 'grpo.warmup_ratio', 'actor_rollout_ref.actor.optim.lr_warmup_steps_ratio', warmupRatio, 'override', `${YAML}; fsdp_workers.py:301`)]),
    ...(schedule === 'constant' || schedule === 'constant_with_warmup'
      ? [e(`grpo.lr_scheduler_type (${schedule})`, 'actor_rollout_ref.actor.optim.warmup_style', 'constant', 'override', YAML, 'MMSearch-R1 always builds a constant schedule with linear warmup (fsdp_workers.py:306)')]
      : schedule === 'cosine'
        ? [e('grpo.lr_scheduler_type (cosine)', 'actor_rollout_ref.actor.optim.warmup_style', 'cosine', 'upstream', `${UPSTREAM} optim/fsdp.yaml:42`, 'MMSearch-R1 runs a constant schedule instead')]
        : [none('grpo.lr_scheduler_type (linear)', 'no linear decay in veRL or MMSearch-R1; the run uses a constant schedule after warmup')]),
    e('(no sigmoid decay in the lab)', 'actor_rollout_ref.actor.optim.lr_sigmoid_decay_warmup', false, 'override', `${YAML}; fsdp_workers.py:310`),
    e('grpo.weight_decay', '+actor_rollout_ref.actor.optim.weight_decay', g.weight_decay, 'append', `${MMS} fsdp_workers.py:297 optim_config.get('weight_decay', 1e-2)`),
    e('grpo.adam_beta1, adam_beta2', '+actor_rollout_ref.actor.optim.betas', [g.adam_beta1, g.adam_beta2], 'append', `${MMS} fsdp_workers.py:296 optim_config.get('betas')`),
    g.max_grad_norm > 0
      ? e('grpo.max_grad_norm', 'actor_rollout_ref.actor.grad_clip', g.max_grad_norm, 'override', `${YAML}; verl@8e9e737 dp_actor.py:248`)
      : none('grpo.max_grad_norm (0: off)', 'veRL always clips (grad_clip must be set); the run keeps the default 1.0'),
    e('grpo.temperature', 'actor_rollout_ref.rollout.temperature', g.temperature, 'override', `${YAML}; dp_actor.py:184 (log-probs at the same temperature)`),
    e('grpo.top_p', 'actor_rollout_ref.rollout.top_p', g.top_p, 'override', YAML),
    e('grpo.top_k (0 = off)', 'actor_rollout_ref.rollout.top_k', g.top_k === 0 ? -1 : g.top_k, 'override', `${YAML} (-1 = off for vLLM)`),
    e(`grpo.max_prompt_length (${g.max_prompt_length} lab tokens)`, 'data.max_prompt_length', VERL_MAX_PROMPT_LENGTH, 'override', `${YAML}; mm_rl_dataset.py (truncation='error' after image expansion)`, 'the authors\' value: Qwen2.5-VL\'s prompt holds the round-1 prompt and the image\'s tokens'),
    e('rollout.max_turn_tokens', 'data.max_response_length', recipe.rollout.max_turn_tokens, 'override', `${YAML} (rollout.response_length: per generation round)`),
    e('grpo.max_completion_length', 'actor_rollout_ref.rollout.response_length_total', g.max_completion_length, 'override', `${YAML}; vllm_rollout_spmd.py:477`),
    e('grpo.search.max_turns', 'actor_rollout_ref.rollout.max_gen_round', g.search.max_turns, 'override', `${YAML}; vllm_rollout_spmd.py:174`),
    e('grpo.search.image_search_limit', 'actor_rollout_ref.rollout.search.image_search_limit', g.search.image_search_limit, 'override', `${YAML}; vllm_rollout_spmd.py:168`),
    e('grpo.search.text_search_limit', 'actor_rollout_ref.rollout.search.text_search_limit', g.search.text_search_limit, 'override', `${YAML}; vllm_rollout_spmd.py:170`),
    e('grpo.search.results_per_search', 'actor_rollout_ref.rollout.search.topk', g.search.results_per_search, 'override', YAML, 'in the config and the authors\' script, but not read by the public Python code (its search tools are placeholders)'),
    e('grpo.reward.format_penalty', '+trainer.format_penalty', g.reward.format_penalty, 'append', `${MMS} ray_trainer.py:651`),
    e('grpo.reward.search_penalty', '+trainer.search_penalty', g.reward.search_penalty, 'append', `${MMS} ray_trainer.py:647`),
    e('grpo.reward.reward_mode', '+trainer.reward_mode', g.reward.reward_mode, 'append', `${MMS} ray_trainer.py:655`),
    e('grpo.reward.use_search_count_penalty', '+trainer.use_search_count_penalty', g.reward.use_search_count_penalty, 'append', `${MMS} ray_trainer.py:661`),
    e('grpo.filter_groups.enable', '+algorithm.filter_groups.enable', g.filter_groups.enable, 'append', `${MMS} ray_trainer.py:1114`),
    ...(g.filter_groups.enable
      ? [
          e('grpo.filter_groups (reward variance)', '+algorithm.filter_groups.metric', 'seq_final_reward', 'append', `${MMS} ray_trainer.py:1117-1120`),
          e('grpo.filter_groups.max_num_gen_batches', '+algorithm.filter_groups.max_num_gen_batches', g.filter_groups.max_num_gen_batches, 'append', `${MMS} ray_trainer.py:1158`),
        ]
      : []),
    e('grpo.max_steps (-1: by epochs)', 'trainer.total_training_steps', total, 'override', `${YAML}; ray_trainer.py:478`),
    e('grpo.num_train_epochs', 'trainer.total_epochs', Math.ceil(g.num_train_epochs), 'override', YAML, Number.isInteger(g.num_train_epochs) ? undefined : 'rounded up: veRL counts whole epochs'),
    e('checkpoint_steps', 'trainer.save_freq', recipe.checkpoint_steps, 'override', YAML),
    e(total ? '(validate after the last step: max_steps)' : '(validate at each checkpoint)', 'trainer.test_freq', total ?? recipe.checkpoint_steps, 'override', `${YAML}; ray_trainer.py:1247 (-1: last_val_metrics unbound at the last step)`),
    e('eval.after_sft (validate before GRPO)', '+trainer.val_before_train', recipe.eval.after_sft, 'append', `${MMS} ray_trainer.py:972 get('val_before_train', True)`),
    e('name', 'trainer.experiment_name', recipe.name, 'override', YAML),
    ...(lora
      ? [
          none('model.lora (r, lora_alpha, lora_dropout, target_modules)', `MMSearch-R1's workers (fsdp_workers.py at 583c6b4) build no LoRA: the veRL run trains every weight. The TRL export carries the adapter (peft LoraConfig r=${lora.r}, lora_alpha=${lora.lora_alpha}, lora_dropout=${lora.lora_dropout}, target_modules as the regex)`),
          e('model.lora.r', 'actor_rollout_ref.model.lora_rank', lora.r, 'upstream', `${UPSTREAM} model/hf_model.yaml:43; verl@8e9e737 ppo_trainer.yaml:122`, 'upstream veRL\'s own trainer only'),
          e('model.lora.lora_alpha', 'actor_rollout_ref.model.lora_alpha', lora.lora_alpha, 'upstream', `verl@8e9e737 ppo_trainer.yaml:125`),
          e('model.lora.target_modules', 'actor_rollout_ref.model.target_modules', lora.target_modules, 'upstream', `verl@8e9e737 ppo_trainer.yaml:129`, 'veRL documents "all-linear" or a module list; that it hands a regex string to PEFT unchanged is unverified'),
        ]
      : []),
    none('model.init', 'veRL starts from actor_rollout_ref.model.path, a Qwen2.5-VL checkpoint; the lab\'s weights (scratch or warm-started) do not carry over to that architecture'),
    none('model.compact_instructions', 'MMSearch-R1 renders the paper\'s instructions from data.user_prompt_* (Qwen2.5-VL prompt pickles)'),
    none('search.backend, search.proxy_url, search.summary_sentences', 'MMSearch-R1\'s search tools (mmsearch_r1/utils/tools/image_search.py, text_search.py) are placeholders to replace with a real backend'),
    none('sft.*', 'no warm-start SFT in MMSearch-R1 (the paper uses none); a lab warm start carries over in the TRL export (--checkpoint)'),
    none('grpo.mask_truncated_completions', 'no such option: truncated responses stay in the loss'),
    none('grpo.adam_epsilon', `torch AdamW default 1e-8 (fsdp_workers.py passes no eps)${g.adam_epsilon === 1e-8 ? '' : `; the recipe asks for ${g.adam_epsilon}`}`),
    none('grpo.logging_steps, grpo.save_steps, grpo.seed', 'veRL logs every step; checkpoints follow checkpoint_steps; sampling is seeded by vLLM'),
    none('eval.modes, eval.max_rows, eval.batch_size', 'veRL validates on-demand rollouts on data.val_files (trainer.test_freq); direct and RAG modes are lab-only'),
  ];
  return out;
}

/** One argument line: the Hydra override inside bash double quotes; in literal values backslash, double quote, dollar and backtick are escaped, shell expansions (`$VAR`, `$HERE/...`) stay live. */
function bashArg(m: MappingEntry): string {
  const value = m.value.startsWith('$') || m.value.includes('$HERE') ? m.value : m.value.replace(/[\\"$`]/g, (c) => `\\${c}`);
  return `    "${m.option}=${value}"`;
}

/**
 * The launch script: runs MMSearch-R1's `main_ppo` with every `override` / `append` entry as a Hydra
 * override, `upstream` entries as comments (for upstream veRL), `none` entries listed in README.md.
 * It fits the batch sizes to `N_GPUS` x `N_NODES` (default 8 x 1) before launching, as veRL requires:
 * rollouts per step and per mini-batch divisible by the GPUs (ray_trainer.py:316, fsdp_workers.py:113),
 * the micro-batch a divisor of each GPU's mini-batch share (dp_actor.py:267). `DRY_RUN=1` prints the
 * arguments, one per line, instead of running. Needs `MMSEARCH_R1_DIR` (a clone of
 * EvolvingLMMs-Lab/multimodal-search-r1 with its verl submodule) and optionally `MODEL_PATH`.
 * @throws as {@link verlBatchPlan}
 */
export function launchScript(recipe: Recipe, mapping: MappingEntry[]): string {
  const plan = verlBatchPlan(recipe);
  const active = mapping.filter((m) => m.status === 'override' || m.status === 'append');
  const upstream = mapping.filter((m) => m.status === 'upstream');
  return [
    '#!/usr/bin/env bash',
    `# veRL + MMSearch-R1 multi-turn search GRPO for the lab recipe "${recipe.name}" (written by npm run export -- verl).`,
    '# Options are MMSearch-R1\'s (trainer/multimodal/config/ppo_trainer.yaml; "+" = read by its code, not in that yaml).',
    '# See README.md next to this file for recipe fields without an equivalent.',
    '# Environment: MMSEARCH_R1_DIR (required), MODEL_PATH, N_GPUS (per node, default 8), N_NODES (default 1), DRY_RUN=1 (print the arguments).',
    'set -euo pipefail',
    'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"',
    'N_GPUS="${N_GPUS:-8}"',
    'N_NODES="${N_NODES:-1}"',
    'WORLD=$((N_GPUS * N_NODES))',
    '(( WORLD >= 1 )) || { echo "N_GPUS x N_NODES must be at least 1" >&2; exit 2; }',
    `N=${plan.n}`,
    '# Prompts rounded up until prompts x N divides by the GPUs (every GPU gets whole rollouts).',
    'fit() { local p=$1; while (( (p * N) % WORLD != 0 )); do p=$((p + 1)); done; echo "$p"; }',
    `MINI_PROMPTS=$(fit ${plan.miniPrompts})`,
    `TRAIN_PROMPTS=$(( (${plan.trainPrompts} + MINI_PROMPTS - 1) / MINI_PROMPTS * MINI_PROMPTS ))`,
    'MINI_PER_GPU=$((MINI_PROMPTS * N / WORLD))',
    `MICRO=${plan.micro}`,
    '(( MICRO > MINI_PER_GPU )) && MICRO=$MINI_PER_GPU',
    'while (( MINI_PER_GPU % MICRO != 0 )); do MICRO=$((MICRO - 1)); done',
    `if (( TRAIN_PROMPTS != ${plan.trainPrompts} || MINI_PROMPTS != ${plan.miniPrompts} || MICRO != ${plan.micro} )); then`,
    `  echo "fitted to $WORLD GPUs: train_batch_size $TRAIN_PROMPTS (recipe ${plan.trainPrompts}), ppo_mini_batch_size $MINI_PROMPTS (recipe ${plan.miniPrompts}), ppo_micro_batch_size_per_gpu $MICRO (recipe ${plan.micro})" >&2`,
    'fi',
    '# Below the authors\' 8 GPUs the actor\'s parameters and optimizer state are offloaded to the CPU.',
    'OFFLOAD=False',
    '(( WORLD < 8 )) && OFFLOAD=True',
    `MODEL_PATH="\${MODEL_PATH:-${DEFAULT_VERL_MODEL}}"`,
    ...(upstream.length
      ? ['# Upstream veRL equivalents (volcengine/verl), not read by MMSearch-R1\'s main_ppo:', ...upstream.map((m) => `#   ${m.option}=${m.value}`)]
      : []),
    'ARGS=(',
    ...active.map(bashArg),
    ')',
    'if [[ -n "${DRY_RUN:-}" ]]; then printf \'%s\\n\' "${ARGS[@]}" "$@"; exit 0; fi',
    ': "${MMSEARCH_R1_DIR:?set MMSEARCH_R1_DIR to a clone of EvolvingLMMs-Lab/multimodal-search-r1}"',
    'cd "$MMSEARCH_R1_DIR"',
    'exec python3 -m mmsearch_r1.trainer.multimodal.main_ppo "${ARGS[@]}" "$@"',
    '',
  ].join('\n');
}

/** Hydra overrides of a launch script as written (before the shell expands them): `option -> value` for its arguments and, separately, the commented upstream ones. */
export function parseLaunchScript(script: string): { overrides: Map<string, string>; upstream: Map<string, string> } {
  const overrides = new Map<string, string>();
  const upstream = new Map<string, string>();
  for (const line of script.split('\n')) {
    const arg = /^ {4}"(\+?[A-Za-z_][\w.]*)=(.*)"$/.exec(line);
    if (arg) overrides.set(arg[1], arg[2].replace(/\\([\\"$`])/g, '$1'));
    const up = /^# {3}([A-Za-z_][\w.]*)=(.*)$/.exec(line);
    if (up) upstream.set(up[1], up[2]);
  }
  return { overrides, upstream };
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The mapping as a markdown table (recipe field, option, value, status, verified in, note). */
export function mappingTable(mapping: MappingEntry[]): string {
  const rows = mapping.map((m) => `| ${cell(m.field)} | ${m.option ? `\`${m.option}\`` : '-'} | ${m.value ? `\`${cell(m.value)}\`` : '-'} | ${m.status} | ${cell(m.verified)} | ${cell(m.note ?? '')} |`);
  return ['| recipe field | veRL / MMSearch-R1 option | value | status | verified in | note |', '|---|---|---|---|---|---|', ...rows].join('\n');
}

/** Parquet files of an export (relative names). */
export interface VerlFiles {
  train: string;
  test: string;
  heldout: string;
}

/** README.md of the export folder: how to run it, fields without an equivalent, and the full mapping. */
export function verlReadme(recipe: Recipe, mapping: MappingEntry[], files: VerlFiles | null): string {
  const missing = mapping.filter((m) => m.status === 'none');
  const upstream = mapping.filter((m) => m.status === 'upstream');
  const differ = mapping.filter((m) => m.status !== 'none' && m.status !== 'upstream' && m.note);
  return [
    `# "${recipe.name}" on veRL with MMSearch-R1's multi-turn search rollout`,
    '',
    'Written by `npm run export -- verl`. Files:',
    '',
    ...(files
      ? [`- \`${files.train}\`, \`${files.test}\`, \`${files.heldout}\`: the recipe's FVQA-mini splits (seed ${recipe.seed}) as MMSearch-R1's loader reads them: the bare question as the user message (the loader prepends its round-1 prompt, which ends in \`<image>\`), data_source \`mmsearch_r1/fvqa_mini_<split>\` (routed to its search reward). Validation runs on test and heldout, reported per data_source.`]
      : ['- no parquet: the recipe reads parquet files itself (data.train / data.test), referenced by the script.']),
    '- `run_mmsearch_r1_grpo.sh`: the launch script (extra Hydra overrides may follow as arguments).',
    '',
    '## Run',
    '',
    '    git clone --recursive https://github.com/EvolvingLMMs-Lab/multimodal-search-r1',
    '    # install it and its verl submodule as its README says; replace the placeholder search tools',
    `    MMSEARCH_R1_DIR=$PWD/multimodal-search-r1 N_GPUS=8 bash run_mmsearch_r1_grpo.sh   # MODEL_PATH defaults to ${DEFAULT_VERL_MODEL}`,
    '',
    'N_GPUS (per node, 1 to 8) and N_NODES set the cluster; the script fits the batch sizes to them (it says so when it rounds)',
    'and `DRY_RUN=1` prints the arguments without running. The lab\'s own architectures do not run in this trainer: its rollout,',
    'prompts and loader are Qwen2.5-VL\'s (vision tokens, get_rope_index). Train the lab\'s models at scale with the TRL export.',
    '',
    'Option names were read in EvolvingLMMs-Lab/multimodal-search-r1@583c6b4 and volcengine/verl (b178a3c, and 8e9e737, the',
    'submodule commit MMSearch-R1 pins); the table says where. No option name is unverified; notes say "unverified" where a behaviour is.',
    '',
    '## Recipe fields with no equivalent',
    '',
    ...missing.map((m) => `- \`${m.field}\`: ${m.note}`),
    '',
    '## Upstream veRL only (comments in the script; MMSearch-R1\'s main_ppo does not read them)',
    '',
    ...(upstream.length ? upstream.map((m) => `- \`${m.field}\` -> \`${m.option}=${m.value}\`${m.note ? `: ${m.note}` : ''}`) : ['- none']),
    '',
    '## How the run differs',
    '',
    '- The model is Qwen2.5-VL (the rollout, its prompts and image handling are written for it), not the recipe\'s.',
    '- Loss aggregation: MMSearch-R1\'s actor averages token losses over each micro-batch (TRL bnpo), whatever grpo.loss_type says.',
    ...differ.map((m) => `- \`${m.option}\` (${m.field}): ${m.note}`),
    '',
    '## Mapping',
    '',
    mappingTable(mapping),
    '',
  ].join('\n');
}
