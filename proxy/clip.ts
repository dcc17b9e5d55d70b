/**
 * CLIP image embeddings for the local backend, through @huggingface/transformers, used when
 * LOCAL_CLIP_MODEL names a folder with a CLIP model (config.json, preprocessor_config.json,
 * onnx/vision_model*.onnx, as in the Xenova/clip-vit-base-patch32 layout). Nothing is downloaded.
 */
import { AutoProcessor, CLIPVisionModelWithProjection, env, RawImage, type PreTrainedModel, type Processor } from '@huggingface/transformers';
import { existsSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { cosine, type ImageEmbedder } from '../src/search/embed.js';
import type { RgbaImage } from '../src/search/image.js';

export class ClipEmbedder implements ImageEmbedder {
  private constructor(
    readonly name: string,
    private readonly processor: Processor,
    private readonly model: PreTrainedModel,
  ) {}

  /** Loads the model from a local folder. @throws Error when the folder is missing or not a CLIP model. */
  static async load(dir: string): Promise<ClipEmbedder> {
    if (!existsSync(dir)) throw new Error(`LOCAL_CLIP_MODEL: folder ${dir} not found`);
    env.allowRemoteModels = false;
    env.localModelPath = dirname(dir) + '/';
    const id = basename(dir);
    const processor = await AutoProcessor.from_pretrained(id);
    const model = await CLIPVisionModelWithProjection.from_pretrained(id);
    return new ClipEmbedder(`clip:${id}`, processor, model);
  }

  /** The image's `image_embeds` (projection output), as float32. */
  async embed(img: RgbaImage): Promise<Float32Array> {
    const raw = new RawImage(new Uint8ClampedArray(img.data), img.width, img.height, 4).rgb();
    const inputs = await this.processor(raw);
    const { image_embeds } = await this.model(inputs);
    return Float32Array.from(image_embeds.data as Float32Array);
  }

  similarity(a: Float32Array, b: Float32Array): number {
    return cosine(a, b);
  }
}
