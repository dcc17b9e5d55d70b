/**
 * The recipe as a form: every editable field of RecipeSchema (captioning, SFT, GRPO with TRL names, rollout,
 * evaluation) with its kind, default and one-line help, read from the schema's own documentation.
 */
import { z } from 'zod';
import { DEFAULT_FVQA_MINI } from '../data/fvqa-mini.js';
import { GRPO_CONFIG_DOCS } from '../rl/config.js';
import { RecipeSchema } from '../rl/recipe.js';

/** One form field. */
export interface FieldSpec {
  path: string[];
  kind: 'number' | 'boolean' | 'enum' | 'string' | 'modes';
  nullable: boolean;
  options?: readonly string[];
  help: string;
  default: unknown;
}

type Def = { innerType?: z.ZodType; out?: z.ZodType; type?: string };
const def = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** Strips defaults, nullables and pipes; reports whether null is allowed. */
function unwrap(s: z.ZodType): { inner: z.ZodType; nullable: boolean; help: string } {
  let nullable = false;
  let help = '';
  for (;;) {
    help ||= s.description ?? (s.meta() as { help?: string } | undefined)?.help ?? '';
    if (s instanceof z.ZodNullable) nullable = true;
    const d = def(s);
    const next = d.innerType ?? (s instanceof z.ZodPipe ? d.out : undefined);
    if (!next) return { inner: s, nullable, help };
    s = next;
  }
}

function fieldsOf(obj: z.ZodObject, prefix: string[], defaults: Record<string, unknown>, skip: string[] = []): FieldSpec[] {
  return Object.entries(obj.shape as Record<string, z.ZodType>).flatMap(([key, schema]): FieldSpec[] => {
    if (skip.includes(key)) return [];
    const { inner, nullable, help } = unwrap(schema);
    const path = [...prefix, key];
    const doc = GRPO_CONFIG_DOCS.find((d) => prefix[0] === 'grpo' && d.path === path.slice(1).join('.'));
    if (inner instanceof z.ZodObject) return fieldsOf(inner, path, (defaults[key] ?? {}) as Record<string, unknown>);
    const kind: FieldSpec['kind'] = inner instanceof z.ZodNumber ? 'number' : inner instanceof z.ZodBoolean ? 'boolean' : inner instanceof z.ZodEnum ? 'enum' : inner instanceof z.ZodArray ? 'modes' : 'string';
    return [{ path, kind, nullable, options: inner instanceof z.ZodEnum ? (inner.options as string[]) : undefined, help: doc?.help || help || EXTRA_HELP[path.join('.')] || '', default: defaults[key] }];
  });
}

/** Help for recipe fields whose schema carries none. */
const EXTRA_HELP: Record<string, string> = {
  'caption.warmup_ratio': 'Share of caption steps spent warming the learning rate up.',
  'caption.weight_decay': 'Decoupled AdamW weight decay.',
  'caption.max_grad_norm': 'Clip the global gradient L2 norm to this.',
  'sft.learning_rate': 'Peak AdamW learning rate of the warm start (cosine schedule).',
  'sft.warmup_ratio': 'Share of SFT steps spent warming the learning rate up.',
  'sft.weight_decay': 'Decoupled AdamW weight decay.',
  'sft.max_grad_norm': 'Clip the global gradient L2 norm to this.',
  'eval.split': 'FVQA-mini split evaluated after training (test, heldout, train).',
  'eval.modes': 'Table-1 modes: direct answer, RAG workflow, on-demand search.',
  'eval.batch_size': 'Rows decoded together during evaluation.',
};

const shape = RecipeSchema.shape;
const captionObject = unwrap(shape.caption).inner as z.ZodObject;
const sftObject = unwrap(shape.sft).inner as z.ZodObject;

/** Form sections in display order. */
export const RECIPE_SECTIONS: { title: string; fields: FieldSpec[] }[] = [
  { title: 'Run', fields: [
    { path: ['name'], kind: 'string', nullable: false, help: 'Run name (checkpoints belong to it).', default: '' },
    ...fieldsOf(z.object({ seed: shape.seed, checkpoint_steps: shape.checkpoint_steps }), [], { seed: 1, checkpoint_steps: 10 }),
  ] },
  { title: 'Captioning', fields: fieldsOf(captionObject, ['caption'], captionObject.parse({})) },
  { title: 'Warm-start SFT', fields: fieldsOf(sftObject, ['sft'], sftObject.parse({})) },
  { title: 'GRPO', fields: fieldsOf(unwrap(shape.grpo).inner as z.ZodObject, ['grpo'], RecipeSchema.shape.grpo.parse(undefined) as Record<string, unknown>) },
  { title: 'Rollout and evaluation', fields: [
    ...fieldsOf(unwrap(shape.rollout).inner as z.ZodObject, ['rollout'], { max_turn_tokens: 64 }),
    ...fieldsOf(unwrap(shape.eval).inner as z.ZodObject, ['eval'], shape.eval.parse(undefined) as Record<string, unknown>),
  ] },
];

/** FVQA-mini generator knobs shown in Setup (src/data/fvqa-mini.ts FvqaMiniConfig). */
export const FVQA_KNOBS: { key: keyof typeof DEFAULT_FVQA_MINI; help: string }[] = [
  { key: 'entities', help: 'Creatures in the world (each has an image look and facts).' },
  { key: 'heldOutEntities', help: 'Entities kept out of training (the heldout split).' },
  { key: 'familiarShare', help: 'Share of entities whose facts the model may learn without search.' },
  { key: 'testSize', help: 'Test rows.' },
  { key: 'trainSamplesPerFact', help: 'Train questions per (entity, fact).' },
  { key: 'distractorPages', help: 'Distractor pages in the search corpus.' },
];

/** The value at `path` in a nested object. */
export function getPath(o: unknown, path: readonly string[]): unknown {
  return path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
}

/** A copy of `o` with `path` set to `value` (intermediate objects created). */
export function setPath<T>(o: T, path: readonly string[], value: unknown): T {
  if (!path.length) return value as T;
  const src = (o && typeof o === 'object' ? o : {}) as Record<string, unknown>;
  return { ...src, [path[0]]: setPath(src[path[0]], path.slice(1), value) } as T;
}
