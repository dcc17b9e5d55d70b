/**
 * A Llama-style decoder layer written directly with engine ops (RMSNorm, RoPE, GQA causal attention
 * with padding mask, SwiGLU), with Hugging Face parameter names. Used by the engine benchmark and the
 * engine's whole-graph gradient test; the model library (src/nn, src/models) builds its own modules.
 */
import * as E from '../src/engine/index.js';

export interface LayerConfig {
  hidden: number;
  heads: number;
  kvHeads: number;
  ffn: number;
  eps: number;
}

/** Parameter shapes of layer `l` by HF name (`model.layers.{l}.…`). */
export function layerShapes(c: LayerConfig, l: number): [string, number[]][] {
  const hd = c.hidden / c.heads;
  const p = `model.layers.${l}.`;
  return [
    [p + 'input_layernorm.weight', [c.hidden]],
    [p + 'self_attn.q_proj.weight', [c.heads * hd, c.hidden]],
    [p + 'self_attn.k_proj.weight', [c.kvHeads * hd, c.hidden]],
    [p + 'self_attn.v_proj.weight', [c.kvHeads * hd, c.hidden]],
    [p + 'self_attn.o_proj.weight', [c.hidden, c.heads * hd]],
    [p + 'post_attention_layernorm.weight', [c.hidden]],
    [p + 'mlp.gate_proj.weight', [c.ffn, c.hidden]],
    [p + 'mlp.up_proj.weight', [c.ffn, c.hidden]],
    [p + 'mlp.down_proj.weight', [c.hidden, c.ffn]],
  ];
}

/**
 * One decoder layer: h [B, T, hidden] -> [B, T, hidden]. positions, keyMask [B, T] i32; table from
 * ropeTable(theta, head_dim, max positions).
 */
export function llamaLayer(c: LayerConfig, l: number, P: (name: string) => E.Tensor, h: E.Tensor, positions: E.Tensor, keyMask: E.Tensor, table: E.Tensor): E.Tensor {
  const [b, t] = h.shape;
  const hd = c.hidden / c.heads;
  const p = `model.layers.${l}.`;
  const lin = (x: E.Tensor, w: string) => E.matmul(x, P(p + w), { transB: true });
  const x = E.rmsNorm(h, P(p + 'input_layernorm.weight'), c.eps);
  const q = E.rope(lin(x, 'self_attn.q_proj.weight').reshape([b, t, c.heads, hd]), positions, table);
  const k = E.rope(lin(x, 'self_attn.k_proj.weight').reshape([b, t, c.kvHeads, hd]), positions, table);
  const v = lin(x, 'self_attn.v_proj.weight').reshape([b, t, c.kvHeads, hd]);
  const a = E.attention(q, k, v, { causal: true, keyMask }).reshape([b, t, c.hidden]);
  const h2 = E.add(h, lin(a, 'self_attn.o_proj.weight'));
  const y = E.rmsNorm(h2, P(p + 'post_attention_layernorm.weight'), c.eps);
  return E.add(h2, lin(E.mul(E.silu(lin(y, 'mlp.gate_proj.weight')), lin(y, 'mlp.up_proj.weight')), 'mlp.down_proj.weight'));
}
