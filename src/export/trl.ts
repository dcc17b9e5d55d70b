/**
 * A lab recipe as a TRL project (issue 18 item 2): GRPOTrainer with the recipe mapped onto GRPOConfig
 * (the lab's GRPO section already uses GRPOConfig's names), MMSearch-R1's multi-turn search loop as
 * TRL's `rollout_func` hook (tool-result tokens masked through its `env_mask`), the MMSearch-R1 reward
 * and the lab's search proxy over HTTP. The Python side is python/trl_project/ (copied into the
 * export); this module builds its trl_config.json and protocol.json.
 *
 * Read in huggingface/trl 1.13.0 (the version python/requirements.txt pins), trainer/grpo_trainer.py:
 * `rollout_func(prompts, trainer)` returns prompt_ids / completion_ids / logprobs plus extra fields for
 * the reward functions; an `env_mask` extra field becomes the tool mask (0 = inserted tokens, left out
 * of the loss and of completion lengths); GRPOConfig has no max_prompt_length and no warmup_ratio
 * (transformers 5 takes a ratio as a float warmup_steps).
 */
import { compactInstructions, firstUserTurn, formatImageSearchResults, formatTextSearchResults, IMAGE_PLACEHOLDER, IMAGE_RESULTS_HEADER, QUESTION_MARKER, TEXT_RESULTS_HEADER, toolResultTurn } from '../protocol/prompts.js';
import { renderToolError } from '../protocol/tools.js';
import { SPECIAL_TOKENS } from '../models/tokenizer.js';
import type { Recipe } from '../rl/recipe.js';

/** trl_config.json: GRPOConfig keyword arguments, the lab's rollout and reward settings, LoRA, and what does not carry over. */
export interface TrlConfig {
  /** GRPOConfig(**grpo) (output_dir, report_to, use_cpu are added by train.py). */
  grpo: Record<string, unknown>;
  lab: {
    /** `model` (the exported folder) or a hub id. */
    model: string;
    proxy_url: string;
    max_turns: number;
    image_search_limit: number;
    text_search_limit: number;
    results_per_search: number;
    max_turn_tokens: number;
    /** Tokens never sampled (image and template specials), by name; the lab suppresses the same. */
    suppress_tokens: string[];
    reward: { format_penalty: number; search_penalty: number; reward_mode: string; use_search_count_penalty: boolean };
  };
  /** peft LoraConfig fields, or null (full fine-tuning). */
  lora: { r: number; lora_alpha: number; lora_dropout: number; target_modules: string } | null;
  /** Recipe fields with no TRL equivalent: field -> why. */
  not_carried: Record<string, string>;
}

/**
 * The recipe mapped onto TRL: GRPOConfig fields by their own names, the rest in `lab`.
 * @param model `model` when the export carries the weights, else the hub id
 */
export function trlConfig(recipe: Recipe, model: string, proxyUrl: string): TrlConfig {
  const g = recipe.grpo;
  const grpo: Record<string, unknown> = {
    learning_rate: g.learning_rate,
    num_generations: g.num_generations,
    per_device_train_batch_size: g.per_device_train_batch_size,
    gradient_accumulation_steps: g.gradient_accumulation_steps,
    ...(g.generation_batch_size !== null ? { generation_batch_size: g.generation_batch_size } : {}),
    ...(g.steps_per_generation !== null ? { steps_per_generation: g.steps_per_generation } : {}),
    max_steps: g.max_steps,
    num_train_epochs: g.num_train_epochs,
    beta: g.beta,
    epsilon: g.epsilon,
    ...(g.epsilon_high !== null && g.epsilon_high !== undefined ? { epsilon_high: g.epsilon_high } : {}),
    loss_type: g.loss_type,
    scale_rewards: g.scale_rewards,
    num_iterations: g.num_iterations,
    temperature: g.temperature,
    top_p: g.top_p,
    top_k: g.top_k,
    max_completion_length: g.max_completion_length,
    mask_truncated_completions: g.mask_truncated_completions,
    lr_scheduler_type: g.lr_scheduler_type === 'sigmoid_decay' ? 'constant' : g.lr_scheduler_type,
    warmup_steps: g.warmup_steps > 0 ? g.warmup_steps : g.warmup_ratio,
    weight_decay: g.weight_decay,
    adam_beta1: g.adam_beta1,
    adam_beta2: g.adam_beta2,
    adam_epsilon: g.adam_epsilon,
    max_grad_norm: g.max_grad_norm,
    logging_steps: g.logging_steps,
    save_steps: recipe.checkpoint_steps,
    seed: recipe.seed,
    // The lab's policies have no dropout at training time either.
    disable_dropout: true,
    // TRL 1.13 weights the k3 KL term by the importance ratio by default; the lab (and veRL's low_var_kl) do not.
    use_bias_correction_kl: false,
  };
  const notCarried: Record<string, string> = {
    'grpo.max_prompt_length': 'GRPOConfig has no max_prompt_length (TRL 1.x): prompts are not truncated',
    'grpo.filter_groups': 'no dynamic sampling in TRL\'s GRPOTrainer: zero-variance groups stay (advantage 0)',
    sft: 'no warm-start SFT here: export the lab\'s SFT checkpoint (--checkpoint) as the model',
    'search.backend local': 'searches go through the lab\'s proxy (npm run proxy serves the same FVQA-mini corpus with the local backend)',
    'image-search thumbnails': 'results are the titles only: with rollout_func TRL feeds the dataset\'s images to the loss forward, so inserted thumbnails could not be seen by it',
    'eval.*': 'the lab\'s three-mode evaluation: run npm run eval on the trained model imported back into the lab',
  };
  if (model !== 'model') notCarried['model.source (hub)'] = `${model} runs with its own processor from the hub (SmolVLM splits large images into tiles); the lab feeds one global image`;
  if (g.lr_scheduler_type === 'sigmoid_decay') notCarried['grpo.lr_scheduler_type sigmoid_decay'] = 'not a transformers schedule: constant instead';
  if (g.filter_groups.enable === false) delete notCarried['grpo.filter_groups'];
  if (!recipe.sft) delete notCarried.sft;
  if (recipe.search.backend !== 'local') delete notCarried['search.backend local'];
  const lora = recipe.model.lora;
  return {
    grpo,
    lab: {
      model,
      proxy_url: proxyUrl,
      max_turns: g.search.max_turns,
      image_search_limit: g.search.image_search_limit,
      text_search_limit: g.search.text_search_limit,
      results_per_search: g.search.results_per_search,
      max_turn_tokens: recipe.rollout.max_turn_tokens,
      suppress_tokens: [SPECIAL_TOKENS.image, SPECIAL_TOKENS.fakeTokenAroundImage, SPECIAL_TOKENS.globalImg, '<|im_start|>', '<|im_end|>'],
      reward: { format_penalty: g.reward.format_penalty, search_penalty: g.reward.search_penalty, reward_mode: g.reward.reward_mode, use_search_count_penalty: g.reward.use_search_count_penalty },
    },
    lora: lora ? { r: lora.r, lora_alpha: lora.lora_alpha, lora_dropout: lora.lora_dropout, target_modules: lora.target_modules } : null,
    not_carried: notCarried,
  };
}

/**
 * protocol.json: the lab's tool-result turns as templates (`{results}`, `{question}`), result headers
 * and the token text of an inserted user turn, with the recipe's compact instructions applied, so the
 * Python rollout writes what the lab's rollout writes (src/protocol/, src/rl/conversation.ts userTurn).
 */
export function protocolJson(compact: boolean): Record<string, unknown> {
  const c = (s: string) => (compact ? compactInstructions(s) : s);
  const R = '\u0000R\u0000', Q = '\u0000Q\u0000';
  const template = (kind: 'image_search' | 'text_search') => c(toolResultTurn(kind, R, Q)).replace(R, '{results}').replace(Q, '{question}');
  const error = (kind: 'image_search' | 'text_search') => renderToolError(kind, R).text.replace(R, '{message}');
  const { endOfUtterance: eou } = SPECIAL_TOKENS;
  return {
    image_turn: template('image_search'),
    text_turn: template('text_search'),
    image_results_header: c(IMAGE_RESULTS_HEADER),
    text_results_header: c(TEXT_RESULTS_HEADER),
    no_image_results: formatImageSearchResults([], false),
    no_text_results: formatTextSearchResults([]),
    tool_error: { image_search: error('image_search'), text_search: error('text_search') },
    question_marker: QUESTION_MARKER,
    first_turn: c(firstUserTurn(Q)).replace(Q, '{question}'),
    user_turn: `${eou}\nUser: {content}${eou}\nAssistant:`,
    user_turn_image_first: `${eou}\nUser:{content}${eou}\nAssistant:`,
    image_placeholder: IMAGE_PLACEHOLDER,
  };
}

/** README.md of a TRL export. */
export function trlReadme(recipe: Recipe, cfg: TrlConfig): string {
  return [
    `# "${recipe.name}" on TRL's GRPOTrainer with MMSearch-R1's multi-turn search`,
    '',
    'Written by `npm run export -- trl`. Files: `train.py` (the run), `mmsearch_trl.py` (rollout, reward, search client, data),',
    '`trl_config.json` (GRPOConfig fields under "grpo", the lab\'s rollout and reward settings under "lab", LoRA), `protocol.json`',
    `(the lab's turn texts), \`data/*.parquet\` (FVQA schema)${cfg.lab.model === 'model' ? ', `model/` (the model in transformers\' format)' : `; the model is ${cfg.lab.model} from the hub`}.`,
    '',
    '## Run',
    '',
    '    pip install torch transformers peft trl accelerate pyarrow pillow   # versions: the lab\'s python/requirements.txt',
    `    npm run proxy                                  # in the lab: the search proxy (${cfg.lab.proxy_url})`,
    '    python train.py --output-dir out               # one process: CPU or one GPU',
    '    accelerate launch train.py --output-dir out    # many GPUs (after `accelerate config`)',
    '    accelerate launch --multi_gpu --num_processes 2 train.py --cpu --output-dir out   # two processes on a CPU (gloo)',
    '',
    '`--set FIELD=JSON` overrides a GRPOConfig field, `--max-steps N` the step count, `--rollout-mode rag` runs the paper\'s',
    'RAG-workflow baseline (image search after the first reasoning, then a text search) instead of on-demand search. On a',
    'CPU, small models train faster with `OMP_NUM_THREADS=1`.',
    '',
    'The trained model (or LoRA adapter) is written to `out/` in transformers\' format; the lab imports it (Storage view, or',
    '`loadPretrained` / `loadAdapter`).',
    '',
    '## How it maps',
    '',
    '- GRPOConfig: every field of the recipe\'s `grpo` section under its own name (the lab uses TRL\'s names), `checkpoint_steps` as',
    '  `save_steps`; `loss_type`, `beta`, `epsilon(_high)`, `scale_rewards`, `num_iterations` are TRL\'s own implementations.',
    '- The rollout: TRL\'s `rollout_func` hook runs the lab\'s protocol: at most `max_turns` assistant turns, each ended by its action tag;',
    '  searches the budget allows go to the proxy, their result turns are appended as tokens with `env_mask` 0 (TRL leaves them',
    '  out of the loss, as the lab\'s tool_mask).',
    '- The reward: MMSearch-R1\'s, (1 - a)·acc·P + a·format, with the recipe\'s penalties.',
    ...(cfg.lora ? [`- LoRA: peft LoraConfig(r=${cfg.lora.r}, lora_alpha=${cfg.lora.lora_alpha}, lora_dropout=${cfg.lora.lora_dropout}, target_modules=${JSON.stringify(cfg.lora.target_modules)}) (a regex, matched whole by PEFT).`] : []),
    '',
    '## Not carried over',
    '',
    ...Object.entries(cfg.not_carried).map(([k, v]) => `- \`${k}\`: ${v}`),
    '',
  ].join('\n');
}
