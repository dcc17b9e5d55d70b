/**
 * Test helper shared by the trainer's tests: a micro VLM served as the lab folder `models/micro` (tiny-vlm's
 * tokenizer files with a 1-layer config `textWidth` wide), so a whole SFT + GRPO run takes seconds.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('../../', import.meta.url).pathname;

/**
 * A TrainerEnv.readFile (repository-relative paths -> bytes) that serves `models/micro/config.json` as the
 * micro config and every other `models/micro/` file from `models/tiny-vlm/`.
 * @param textWidth the language model's hidden size (intermediate size twice it; 4 heads, 2 KV heads)
 */
export function microModelFiles(textWidth: number): (path: string) => Promise<Uint8Array> {
  const tiny = JSON.parse(readFileSync(join(root, 'models/tiny-vlm/config.json'), 'utf8'));
  const micro = {
    ...tiny,
    vision_config: { ...tiny.vision_config, hidden_size: 16, intermediate_size: 32, num_hidden_layers: 1, num_attention_heads: 2 },
    text_config: { ...tiny.text_config, hidden_size: textWidth, intermediate_size: 2 * textWidth, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2 },
  };
  return async (p) =>
    p === 'models/micro/config.json' ? new TextEncoder().encode(JSON.stringify(micro)) : new Uint8Array(readFileSync(join(root, p.replace('models/micro/', 'models/tiny-vlm/'))));
}
