/**
 * Policy models from a Hugging Face hub reference (`hf:ORG/NAME@REVISION`) through the lab's cached,
 * resumable downloader: config.json, then model.safetensors or its sharded index.
 */
import type * as E from '../engine/index.js';
import { HubRepo, type HubRepoOptions } from '../hub/repo.js';
import { loadPretrained, type PolicyModel } from './checkpoint.js';

/**
 * Downloads (or reads from the cache) and builds the model.
 * @param onLoad per-tensor progress of moving weights to the device (downloads report through opts.onProgress)
 * @throws HubHttpError for missing files, SafetensorsError for malformed weights, Error for bad config fields
 */
export async function loadFromHub(ref: string, backend: E.Backend, opts: HubRepoOptions, onLoad?: (done: number, total: number) => void): Promise<PolicyModel> {
  const repo = new HubRepo(ref, opts);
  const config = await repo.json<Record<string, unknown>>('config.json');
  return loadPretrained(config, await repo.weights(), backend, onLoad);
}
