/**
 * The options of MMSearch-R1's trainer that the veRL export sets, with their types, recorded from
 * EvolvingLMMs-Lab/multimodal-search-r1@583c6b4 (facts, not its text):
 *  - YAML_KEYS: keys of `mmsearch_r1/trainer/multimodal/config/ppo_trainer.yaml` (a plain Hydra
 *    override must name one; Hydra refuses an unknown key without `+`). `type` is what the code uses
 *    the value as; where the yaml default is null or of another type, `yaml` records the default;
 *  - CODE_KEYS: keys that yaml lacks but its Python reads (`config.get(...)` or attribute access in
 *    ray_trainer.py / fsdp_workers.py), so passed as `+key=value`.
 * Used by the export's tests to check every override of a launch script against the trainer's config.
 */

/** Value kinds of a Hydra override: bool (True/False), int, float (an int is accepted), str, list. */
export type HydraType = 'bool' | 'int' | 'float' | 'str' | 'list' | 'str_or_list';

export interface ConfigKey {
  type: HydraType;
  /** The yaml default when it is null or not of `type` (e.g. use_remove_padding's "Falseva"). */
  yaml?: string;
  /** Allowed values, where the code checks them. */
  values?: readonly string[];
}

const T = (type: HydraType, extra: Omit<ConfigKey, 'type'> = {}): ConfigKey => ({ type, ...extra });

/** Keys of ppo_trainer.yaml at 583c6b4 that the export sets, with the type the code reads. */
export const YAML_KEYS: Readonly<Record<string, ConfigKey>> = {
  'data.train_files': T('str_or_list'),
  'data.val_files': T('str_or_list'),
  'data.train_batch_size': T('int'),
  'data.max_prompt_length': T('int'),
  'data.max_response_length': T('int'),
  'data.image_key': T('str'),
  'data.user_prompt_round_1': T('str', { yaml: 'null' }),
  'data.user_prompt_after_image_search': T('str', { yaml: 'null' }),
  'data.user_prompt_after_text_search': T('str', { yaml: 'null' }),
  'actor_rollout_ref.model.path': T('str'),
  'actor_rollout_ref.model.use_remove_padding': T('bool', { yaml: '"Falseva" (a string)' }),
  'actor_rollout_ref.actor.ppo_mini_batch_size': T('int'),
  'actor_rollout_ref.actor.ppo_micro_batch_size_per_gpu': T('int', { yaml: 'null' }),
  'actor_rollout_ref.actor.grad_clip': T('float'),
  'actor_rollout_ref.actor.clip_ratio': T('float'),
  'actor_rollout_ref.actor.clip_ratio_high': T('float'),
  'actor_rollout_ref.actor.clip_ratio_low': T('float'),
  'actor_rollout_ref.actor.entropy_coeff': T('float'),
  'actor_rollout_ref.actor.use_multi_turn_response_mask': T('bool'),
  'actor_rollout_ref.actor.use_kl_loss': T('bool'),
  'actor_rollout_ref.actor.kl_loss_coef': T('float'),
  'actor_rollout_ref.actor.kl_loss_type': T('str'),
  'actor_rollout_ref.actor.ppo_epochs': T('int'),
  'actor_rollout_ref.actor.optim.lr': T('float'),
  'actor_rollout_ref.actor.optim.lr_warmup_steps_ratio': T('float'),
  'actor_rollout_ref.actor.optim.warmup_style': T('str', { values: ['constant', 'cosine'] }),
  'actor_rollout_ref.actor.optim.lr_sigmoid_decay_warmup': T('bool'),
  'actor_rollout_ref.actor.fsdp_config.param_offload': T('bool'),
  'actor_rollout_ref.actor.fsdp_config.optimizer_offload': T('bool'),
  'actor_rollout_ref.ref.fsdp_config.param_offload': T('bool'),
  'actor_rollout_ref.ref.log_prob_micro_batch_size_per_gpu': T('int', { yaml: 'null' }),
  'actor_rollout_ref.rollout.name': T('str'),
  'actor_rollout_ref.rollout.temperature': T('float'),
  'actor_rollout_ref.rollout.top_k': T('int'),
  'actor_rollout_ref.rollout.top_p': T('float'),
  'actor_rollout_ref.rollout.tensor_model_parallel_size': T('int'),
  'actor_rollout_ref.rollout.log_prob_micro_batch_size_per_gpu': T('int', { yaml: 'null' }),
  'actor_rollout_ref.rollout.n': T('int'),
  'actor_rollout_ref.rollout.max_gen_round': T('int'),
  'actor_rollout_ref.rollout.response_length_total': T('int'),
  'actor_rollout_ref.rollout.search.topk': T('int'),
  'actor_rollout_ref.rollout.search.image_search_limit': T('int'),
  'actor_rollout_ref.rollout.search.text_search_limit': T('int'),
  'algorithm.adv_estimator': T('str'),
  'trainer.total_epochs': T('int'),
  'trainer.total_training_steps': T('int', { yaml: 'null' }),
  'trainer.logger': T('list'),
  'trainer.nnodes': T('int'),
  'trainer.n_gpus_per_node': T('int'),
  'trainer.save_freq': T('int'),
  'trainer.test_freq': T('int'),
  'trainer.critic_warmup': T('int'),
  'trainer.experiment_name': T('str'),
};

/** Keys read by MMSearch-R1's Python at 583c6b4 but absent from its yaml (passed with `+`). */
export const CODE_KEYS: Readonly<Record<string, ConfigKey>> = {
  'data.seed': T('int'), // ray_trainer.py:431 data.get('seed', 1)
  'trainer.format_penalty': T('float'), // ray_trainer.py:651
  'trainer.search_penalty': T('float'), // ray_trainer.py:647
  'trainer.reward_mode': T('str', { values: ['EM', 'SubEM'] }), // ray_trainer.py:655 asserts these
  'trainer.use_search_count_penalty': T('bool'), // ray_trainer.py:661
  'trainer.grpo_denormalize': T('bool'), // ray_trainer.py:1204
  'trainer.val_before_train': T('bool'), // ray_trainer.py:972 get('val_before_train', True)
  'algorithm.filter_groups.enable': T('bool'), // ray_trainer.py:1114 (read unconditionally: must be set)
  'algorithm.filter_groups.metric': T('str', { values: ['seq_final_reward', 'seq_reward'] }), // ray_trainer.py:1117-1124
  'algorithm.filter_groups.max_num_gen_batches': T('int'), // ray_trainer.py:1158
  'actor_rollout_ref.actor.optim.weight_decay': T('float'), // fsdp_workers.py:297 get('weight_decay', 1e-2)
  'actor_rollout_ref.actor.optim.betas': T('list'), // fsdp_workers.py:296 get('betas', (0.9, 0.999))
};

/**
 * The kind of a Hydra override value as Hydra's grammar reads it (after the shell has expanded it):
 * True/False (any case) bool, integers int, decimals and exponents float, `[...]` list, null, else str.
 */
export function hydraKind(value: string): HydraType | 'null' {
  const v = value.trim();
  if (/^(true|false)$/i.test(v)) return 'bool';
  if (/^null$/i.test(v)) return 'null';
  if (/^[+-]?\d+$/.test(v)) return 'int';
  if (/^[+-]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][+-]?\d+)$/.test(v)) return 'float';
  if (v.startsWith('[') && v.endsWith(']')) return 'list';
  return 'str';
}

/**
 * Checks one override against the recorded config: the key exists (plain) or is read by the code
 * (`+`), and the value's kind fits the key's type.
 * @returns null when it fits, else the problem in words
 */
export function checkOverride(option: string, value: string): string | null {
  const append = option.startsWith('+');
  const key = append ? option.slice(1) : option;
  const spec = append ? CODE_KEYS[key] : YAML_KEYS[key];
  if (!spec) {
    if (append && YAML_KEYS[key]) return `${option}: ${key} is in ppo_trainer.yaml, so "+" makes Hydra fail (key exists); drop the "+"`;
    if (!append && CODE_KEYS[key]) return `${option}: not in ppo_trainer.yaml; Hydra needs "+${key}"`;
    return `${option}: neither in MMSearch-R1's ppo_trainer.yaml nor read by its code`;
  }
  const kind = hydraKind(value);
  const ok = kind === spec.type || (spec.type === 'float' && kind === 'int') || (spec.type === 'str_or_list' && (kind === 'str' || kind === 'list'));
  if (!ok) return `${option}=${value}: a ${kind}, the trainer reads a ${spec.type}`;
  const bare = value.trim().replace(/^'(.*)'$/, '$1');
  if (spec.values && !spec.values.includes(bare)) return `${option}=${value}: one of ${spec.values.join(', ')}`;
  return null;
}
