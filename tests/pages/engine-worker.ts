/** Worker side of the engine browser test: the same check on the worker's own GPUDevice. */
import { engineCheck } from './engine-check.js';

self.onmessage = async () => {
  try {
    self.postMessage(await engineCheck(navigator.gpu));
  } catch (e) {
    self.postMessage({ error: String(e) });
  }
};
