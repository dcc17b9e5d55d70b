/**
 * Lab entry point. The full lab UI (issue 7) builds on this; for now the page reports the WebGPU
 * adapter the engine will run on, so a user can see at once whether their browser is ready.
 */
const app = document.querySelector<HTMLDivElement>('#app')!;

async function describeAdapter(): Promise<string> {
  if (!('gpu' in navigator)) return 'This browser has no WebGPU (navigator.gpu). Use a recent Chrome or Chromium.';
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) return 'WebGPU is present but no adapter was granted (blocked GPU or driver).';
  const { vendor, architecture, description } = adapter.info;
  const features = ['shader-f16', 'subgroups', 'timestamp-query'].filter((f) => adapter.features.has(f));
  const mib = (n: number) => `${(n / 2 ** 20).toFixed(0)} MiB`;
  return [
    `Adapter: ${[vendor, architecture, description].filter(Boolean).join(' / ') || 'unknown'}`,
    `Features: ${features.join(', ') || 'none of shader-f16, subgroups, timestamp-query'}`,
    `maxBufferSize ${mib(adapter.limits.maxBufferSize)}, maxStorageBufferBindingSize ${mib(adapter.limits.maxStorageBufferBindingSize)}`,
  ].join('\n');
}

app.innerHTML = '<h1>MMSearch Lab</h1><pre id="adapter">Looking for a WebGPU adapter…</pre>';
describeAdapter().then(
  (text) => (app.querySelector('#adapter')!.textContent = text),
  (e) => (app.querySelector('#adapter')!.textContent = `WebGPU check failed: ${e}`),
);
