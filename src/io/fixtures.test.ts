import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { writeFixtureHub } from '../../scripts/make-fixtures.js';
import { buildFixtures, initTensor, type FixtureRepo } from './fixtures.js';
import { bf16ToF32, f32ToBf16 } from '../engine/dtype.js';
import { openSafetensorsBuffer, openShardedSafetensors, type TensorSource } from './safetensors.js';

const repos = buildFixtures(0);
const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
const byName = (n: string): FixtureRepo => repos.find((r) => r.repo === `fixtures/${n}`)!;

async function open(r: FixtureRepo): Promise<TensorSource> {
  const index = r.files.get('model.safetensors.index.json');
  if (!index) return openSafetensorsBuffer(r.files.get('model.safetensors')!, `${r.repo}/model.safetensors`);
  return openShardedSafetensors(new TextDecoder().decode(index), (f) => openSafetensorsBuffer(r.files.get(f)!, f));
}

/**
 * Reference names and shapes, written out by hand from transformers' modeling_llama.py /
 * modeling_qwen2.py (nn.Linear weight = [out_features, in_features]) for hidden 32, 4 heads of 8,
 * 2 KV heads, intermediate `inter`, vocab 96.
 */
function llamaLayer(prefix: string, i: number, inter: number, qkvBias: boolean): [string, number[]][] {
  const l = `${prefix}layers.${i}.`;
  return [
    [`${l}self_attn.q_proj.weight`, [32, 32]],
    [`${l}self_attn.k_proj.weight`, [16, 32]],
    [`${l}self_attn.v_proj.weight`, [16, 32]],
    [`${l}self_attn.o_proj.weight`, [32, 32]],
    ...((qkvBias
      ? [
          [`${l}self_attn.q_proj.bias`, [32]],
          [`${l}self_attn.k_proj.bias`, [16]],
          [`${l}self_attn.v_proj.bias`, [16]],
        ]
      : []) as [string, number[]][]),
    [`${l}mlp.gate_proj.weight`, [inter, 32]],
    [`${l}mlp.up_proj.weight`, [inter, 32]],
    [`${l}mlp.down_proj.weight`, [32, inter]],
    [`${l}input_layernorm.weight`, [32]],
    [`${l}post_attention_layernorm.weight`, [32]],
  ];
}

function expectExactly(src: TensorSource, expected: [string, number[]][]): void {
  expect(new Set(src.names())).toEqual(new Set(expected.map(([n]) => n)));
  for (const [n, shape] of expected) expect(src.expectTensor(n, shape).shape).toEqual(shape);
}

describe('fixture checkpoints', () => {
  test('LlamaForCausalLM, tied: HF names and shapes, BF16, no lm_head', async () => {
    const r = byName('tiny-llama');
    const src = await open(r);
    expectExactly(src, [
      ['model.embed_tokens.weight', [96, 32]],
      ...llamaLayer('model.', 0, 64, false),
      ...llamaLayer('model.', 1, 64, false),
      ['model.norm.weight', [32]],
    ]);
    expect(src.info('model.norm.weight').dtype).toBe('BF16');
    const cfg = JSON.parse(new TextDecoder().decode(r.files.get('config.json')));
    expect(cfg).toMatchObject({ architectures: ['LlamaForCausalLM'], model_type: 'llama', tie_word_embeddings: true, torch_dtype: 'bfloat16', rms_norm_eps: 1e-5 });
  });

  test('sharded Llama, untied: index + 2 shards, lm_head present, total_size is the data bytes', async () => {
    const r = byName('tiny-llama-sharded');
    expect([...r.files.keys()].sort()).toEqual(['config.json', 'model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors', 'model.safetensors.index.json']);
    const src = await open(r);
    expectExactly(src, [
      ['model.embed_tokens.weight', [96, 32]],
      ...llamaLayer('model.', 0, 64, false),
      ...llamaLayer('model.', 1, 64, false),
      ['model.norm.weight', [32]],
      ['lm_head.weight', [96, 32]],
    ]);
    const index = JSON.parse(new TextDecoder().decode(r.files.get('model.safetensors.index.json')));
    const params = 96 * 32 * 2 + 2 * (32 * 32 * 2 + 16 * 32 * 2 + 64 * 32 * 3 + 64) + 32;
    expect(index.metadata.total_size).toBe(params * 4);
    expect(new Set(Object.values(index.weight_map))).toEqual(new Set(['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors']));
  });

  test('Qwen2ForCausalLM: q/k/v biases, no o_proj bias, rope_theta 1e6', async () => {
    const r = byName('tiny-qwen2');
    const src = await open(r);
    expectExactly(src, [
      ['model.embed_tokens.weight', [96, 32]],
      ...llamaLayer('model.', 0, 48, true),
      ...llamaLayer('model.', 1, 48, true),
      ['model.norm.weight', [32]],
    ]);
    expect(r.config).toMatchObject({ model_type: 'qwen2', rope_theta: 1e6, tie_word_embeddings: true });
  });

  test('Idefics3ForConditionalGeneration: SigLIP tower, connector, text model, lm_head', async () => {
    const r = byName('tiny-idefics3');
    const src = await open(r);
    const v = 'model.vision_model.';
    const vLayer = (i: number): [string, number[]][] => {
      const l = `${v}encoder.layers.${i}.`;
      return [
        ...['q_proj', 'k_proj', 'v_proj', 'out_proj'].flatMap((p): [string, number[]][] => [
          [`${l}self_attn.${p}.weight`, [16, 16]],
          [`${l}self_attn.${p}.bias`, [16]],
        ]),
        [`${l}layer_norm1.weight`, [16]],
        [`${l}layer_norm1.bias`, [16]],
        [`${l}layer_norm2.weight`, [16]],
        [`${l}layer_norm2.bias`, [16]],
        [`${l}mlp.fc1.weight`, [32, 16]],
        [`${l}mlp.fc1.bias`, [32]],
        [`${l}mlp.fc2.weight`, [16, 32]],
        [`${l}mlp.fc2.bias`, [16]],
      ];
    };
    expectExactly(src, [
      [`${v}embeddings.patch_embedding.weight`, [16, 3, 4, 4]],
      [`${v}embeddings.patch_embedding.bias`, [16]],
      [`${v}embeddings.position_embedding.weight`, [16, 16]], // (16 px / 4 px)^2 positions
      ...vLayer(0),
      ...vLayer(1),
      [`${v}post_layernorm.weight`, [16]],
      [`${v}post_layernorm.bias`, [16]],
      ['model.connector.modality_projection.proj.weight', [32, 16 * 2 * 2]], // [text hidden, vision hidden * scale^2]
      ['model.text_model.embed_tokens.weight', [96, 32]],
      ...llamaLayer('model.text_model.', 0, 64, false),
      ...llamaLayer('model.text_model.', 1, 64, false),
      ['model.text_model.norm.weight', [32]],
      ['lm_head.weight', [96, 32]],
    ]);
    expect(r.config).toMatchObject({ model_type: 'idefics3', scale_factor: 2, image_token_id: 95, vision_config: { patch_size: 4, image_size: 16 } });
    expect((r.config.text_config as Record<string, unknown>).model_type).toBe('llama');
  });

  test('deterministic from the seed; stored values are the generated ones', async () => {
    const again = buildFixtures(0);
    for (const [i, r] of repos.entries()) for (const [f, b] of r.files) expect(same(again[i].files.get(f)!, b), f).toBe(true);
    expect(same(buildFixtures(1)[0].files.get('model.safetensors')!, repos[0].files.get('model.safetensors')!)).toBe(false);
    const r = byName('tiny-llama');
    const spec = r.tensors.find((t) => t.name === 'model.layers.1.mlp.down_proj.weight')!;
    const src = await open(r);
    expect(await src.readF32(spec.name)).toEqual(bf16ToF32(f32ToBf16(initTensor(spec, 0))));
    // Norm weights scatter around 1, linear weights around 0 with std 1/sqrt(fan_in).
    const normW = await src.readF32('model.norm.weight');
    expect(Math.abs(normW.reduce((a, b) => a + b) / normW.length - 1)).toBeLessThan(0.1);
  });
});

describe('scripts/make-fixtures.ts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fixtures-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  test('writes <out>/<org>/<name>/resolve/main/<file> with the in-memory bytes', () => {
    const written = writeFixtureHub(dir, 0);
    for (const r of written) {
      for (const [f, b] of r.files) expect(same(readFileSync(join(dir, r.repo, 'resolve', 'main', f)), b), f).toBe(true);
    }
  });
});
