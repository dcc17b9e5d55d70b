/**
 * Setup: the WebGPU adapter and the compute backend, the model, the FVQA-mini world, every recipe field with its default and
 * help (load/save as JSON), and the search backend.
 */
import { h, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { DEFAULT_FVQA_MINI } from '../../data/fvqa-mini.js';
import { resolveUrl, parseHfRef } from '../../hub/ref.js';
import { fvqaMiniConfig, fvqaMiniRecipeKey, parseRecipe } from '../../rl/recipe.js';
import { openIdbStore } from '../../storage/idb-store.js';
import type { DatasetInfo } from '../../storage/store.js';
import { download, formatBytes, useLab, type Lab } from '../lab.js';
import { fullRecipe, MICRO_SOURCE, RUN_SOURCE, shippedCheckpoints, SHIPPED_GRPO, SHIPPED_WARM_START, watchRecipe } from '../../lab/lab-env.js';
import { FVQA_KNOBS, getPath, RECIPE_SECTIONS, setPath, type FieldSpec } from '../recipe-fields.js';
import type { RunRecord } from '../../lab/runs-store.js';
import { STORE_PREFIX, storedDataFile } from '../../lab/stored-data.js';
import type { BackendChoice } from '../../engine/select.js';

/** A titled card. */
export function Card(p: { title: string; actions?: ComponentChildren; children?: ComponentChildren; id?: string }) {
  return h('section', { class: 'card', id: p.id }, h('div', { class: 'card-head' }, h('h2', null, p.title), p.actions ?? null), p.children);
}

const BACKENDS: [BackendChoice, string][] = [
  ['auto', 'Auto: a hardware GPU, else the faster of WebAssembly and software WebGPU (measured here)'],
  ['webgpu', 'WebGPU'],
  ['wasm', 'WebAssembly SIMD on the CPU (multithreaded when the page is cross-origin isolated)'],
  ['cpu', 'CPU reference (float64; correct but very slow)'],
];

function Adapter({ lab }: { lab: Lab }) {
  const a = lab.adapter;
  if (!a) return h('p', { class: 'muted' }, 'Looking for a WebGPU adapter…');
  const info = lab.backendInfo;
  const choose = (c: BackendChoice) => {
    lab.backend = c;
    void lab.describeBackend();
  };
  return h('div', null,
    a.available
      ? h('p', null, h('span', { class: 'badge ok' }, 'WebGPU'), ' ', h('strong', { id: 'adapter-name' }, a.name))
      : h('div', { class: 'notice warn' }, h('strong', null, 'No WebGPU. '), a.problem),
    h('div', { class: 'chips' }, ['shader-f16', 'subgroups', 'timestamp-query'].map((f) => h('span', { class: `chip ${a.features.includes(f) ? 'on' : 'off'}` }, f))),
    Object.keys(a.limits).length ? h('table', { class: 'kv' }, h('tbody', null, Object.entries(a.limits).map(([k, v]) => h('tr', null, h('td', null, k), h('td', { class: 'num' }, k.includes('Size') && v > 65536 ? formatBytes(v) : String(v)))))) : null,
    h('h3', null, 'Compute backend'),
    BACKENDS.map(([c, label]) => h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'backend', value: c, checked: lab.backend === c, onChange: () => choose(c) }), ' ', label)),
    h('p', { id: 'backend-choice' }, info
      ? info.error
        ? h('span', { class: 'notice error' }, info.error)
        : [h('span', { class: 'badge ok' }, 'Runs on'), ' ', h('strong', null, info.description), h('span', { class: 'muted' }, ` (${info.reason})`), info.warning ? h('div', { class: 'notice warn' }, info.warning) : null]
      : h('span', { class: 'muted' }, 'Starting the backend…')));
}

function Model({ lab, runs }: { lab: Lab; runs: RunRecord[] }) {
  const r = lab.recipe;
  const [hub, setHub] = useState('hf:HuggingFaceTB/SmolVLM-256M-Instruct');
  const [estimate, setEstimate] = useState('');
  const set = (source: string, init: 'scratch' | 'pretrained') => lab.useRecipe({ ...r, model: { ...r.model, source, init } });
  const estimateSize = async () => {
    setEstimate('asking the hub…');
    try {
      const ref = parseHfRef(hub);
      const res = await fetch(resolveUrl(ref, 'model.safetensors'), { method: 'HEAD' });
      const size = Number(res.headers.get('x-linked-size') ?? res.headers.get('content-length'));
      setEstimate(res.ok && size ? `model.safetensors: ${formatBytes(size)} to download (cached in IndexedDB; usable in Chat and Evaluate)` : `HTTP ${res.status}: no single model.safetensors (sharded or missing)`);
    } catch (e) {
      setEstimate(`hub unreachable: ${(e as Error).message}. Retry when online.`);
    }
  };
  const withCkpt = runs.filter((x) => x.checkpointAt);
  return h('div', { class: 'stack' },
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'model', checked: r.model.source === MICRO_SOURCE, onChange: () => set(MICRO_SOURCE, 'scratch') }), ' micro VLM (~0.1 M parameters, from scratch: smoke runs only, too small to learn the task)'),
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'model', checked: r.model.source === 'models/tiny-vlm', onChange: () => set('models/tiny-vlm', 'scratch') }), ' tiny-vlm preset (1.14 M parameters, Idefics3 architecture, from scratch)'),
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'model', checked: r.model.source === 'models/tiny-vlm-name-pieces', onChange: () => set('models/tiny-vlm-name-pieces', 'scratch') }), ' tiny-vlm with the name-piece tokenizer (creature names split into pieces; the caption recipe\'s)'),
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'model', checked: r.model.source.startsWith(RUN_SOURCE), disabled: !withCkpt.length, onChange: () => withCkpt[0] && set(RUN_SOURCE + withCkpt[0].id, 'pretrained') }), ' a stored checkpoint: ',
      h('select', { disabled: !withCkpt.length, value: r.model.source.startsWith(RUN_SOURCE) ? r.model.source.slice(RUN_SOURCE.length) : '', onChange: (e: Event) => set(RUN_SOURCE + (e.target as HTMLSelectElement).value, 'pretrained') },
        h('option', { value: '' }, withCkpt.length ? '(choose a run)' : '(none stored yet)'), withCkpt.map((x) => h('option', { value: x.id }, `${x.id} · ${formatBytes(x.checkpointBytes)}`)))),
    h('div', { class: 'row' }, h('span', null, 'Hub model '), h('input', { class: 'wide', value: hub, onInput: (e: Event) => setHub((e.target as HTMLInputElement).value) }), h('button', { onClick: estimateSize }, 'Estimate size')),
    estimate ? h('p', { class: 'muted' }, estimate) : null);
}

function Dataset({ lab }: { lab: Lab }) {
  const r = lab.recipe;
  const [status, setStatus] = useState('');
  const [made, setMade] = useState<DatasetInfo[]>([]);
  const cfg = { ...DEFAULT_FVQA_MINI, ...fvqaMiniConfig(r) };
  const setKnob = (k: string, v: number) => ((lab.recipe = { ...r, data: { ...r.data, fvqa_mini: { ...r.data.fvqa_mini, [fvqaMiniRecipeKey(k)]: v } } }), lab.changed());
  const generate = async () => {
    setStatus('generating…');
    try {
      const infos = await lab.trainer.generateDataset(fvqaMiniConfig(r), 'fvqa-mini');
      setMade(infos);
      setStatus(`stored ${infos.reduce((n, d) => n + d.rows, 0)} rows in IndexedDB`);
    } catch (e) {
      setStatus(`failed: ${(e as Error).message}`);
    }
  };
  return h('div', null,
    h('p', { class: 'muted' }, 'FVQA-mini: a synthetic world of creatures with images, facts and a search corpus; the recipe trains on the world these settings generate.'),
    h('div', { class: 'grid-form' }, FVQA_KNOBS.map((k) => h('label', { title: k.help }, h('span', null, fvqaMiniRecipeKey(k.key)), h('input', { type: 'number', step: 'any', value: String(cfg[k.key]), onChange: (e: Event) => setKnob(k.key, Number((e.target as HTMLInputElement).value)) }), h('small', null, k.help)))),
    h('div', { class: 'row' }, h('button', { id: 'generate-dataset', onClick: generate }, 'Generate and store FVQA-mini'), h('span', { id: 'dataset-status', class: 'muted' }, status)),
    made.length ? h('table', { class: 'data' }, h('tbody', null, made.map((d) => h('tr', null, h('td', null, d.name), h('td', { class: 'num' }, `${d.rows} rows`), h('td', { class: 'num' }, formatBytes(d.bytes)), h('td', null, `${d.categories.search_free} search-free / ${d.categories.search_required} search-required`))))) : null,
    h(StoredData, { lab, refresh: made }));
}

/**
 * Picks stored datasets (imports, generated splits) as the recipe's train and test data: data.source
 * parquet with `store:NAME` files, which the trainer worker exports from the dataset store. Parquet data
 * has no warm-start trajectories and no generated corpus, so this also sets sft to null and the proxy search.
 */
function StoredData({ lab, refresh }: { lab: Lab; refresh: unknown }) {
  const r = lab.recipe;
  const [names, setNames] = useState<string[]>([]);
  useEffect(() => {
    void (async () => {
      const store = await openIdbStore();
      try {
        setNames((await store.list()).map((d) => d.name));
      } finally {
        await store.close();
      }
    })();
  }, [refresh]);
  const current = (split: 'train' | 'test') => (r.data.source === 'parquet' && r.data[split]?.startsWith(STORE_PREFIX) ? r.data[split].slice(STORE_PREFIX.length) : '');
  const pick = (split: 'train' | 'test', name: string) => {
    const data = r.data.source === 'parquet' ? r.data : { ...r.data, source: 'parquet' as const, train: undefined, test: undefined };
    lab.recipe = { ...r, sft: null, search: { ...r.search, backend: 'proxy' }, data: { ...data, [split]: name ? storedDataFile(name) : undefined } };
    lab.changed();
  };
  const useGenerated = () => ((lab.recipe = { ...r, data: { ...r.data, source: 'fvqa-mini', train: undefined, test: undefined } }), lab.changed());
  return h('div', { class: 'row', id: 'stored-data' },
    h('span', null, 'Train on stored datasets: '),
    (['train', 'test'] as const).map((split) => h('label', null, ` ${split} `,
      h('select', { id: `stored-${split}`, value: current(split), disabled: !names.length, onChange: (e: Event) => pick(split, (e.target as HTMLSelectElement).value) },
        h('option', { value: '' }, names.length ? '(choose)' : '(none stored yet)'), names.map((n) => h('option', { value: n }, n))))),
    r.data.source === 'parquet' ? h('button', { onClick: useGenerated }, 'Use generated FVQA-mini') : null);
}

function Field({ f, value, onChange }: { f: FieldSpec; value: unknown; onChange: (v: unknown) => void }) {
  const id = `f-${f.path.join('-')}`;
  let input;
  if (f.kind === 'boolean') input = h('input', { id, type: 'checkbox', checked: !!value, onChange: (e: Event) => onChange((e.target as HTMLInputElement).checked) });
  else if (f.kind === 'enum') input = h('select', { id, value: String(value), onChange: (e: Event) => onChange((e.target as HTMLSelectElement).value) }, f.options!.map((o) => h('option', { value: o }, o)));
  else if (f.kind === 'modes') input = h('span', { class: 'chips' }, ['direct', 'rag', 'on_demand'].map((m) => h('label', { class: 'check' }, h('input', { type: 'checkbox', checked: (value as string[]).includes(m), onChange: (e: Event) => onChange((e.target as HTMLInputElement).checked ? [...(value as string[]), m] : (value as string[]).filter((x) => x !== m)) }), ` ${m}`)));
  else input = h('input', { id, type: f.kind === 'number' ? 'number' : 'text', step: 'any', value: value === null || value === undefined ? '' : String(value), placeholder: f.nullable ? 'null' : '',
    onChange: (e: Event) => { const t = (e.target as HTMLInputElement).value; onChange(t === '' && f.nullable ? null : f.kind === 'number' ? Number(t) : t); } });
  const changed = JSON.stringify(value) !== JSON.stringify(f.default);
  return h('tr', { class: changed ? 'changed' : '' }, h('td', null, h('label', { for: id }, h('code', null, f.path.slice(1).join('.') || f.path[0]))), h('td', null, input), h('td', { class: 'muted num' }, JSON.stringify(f.default)), h('td', { class: 'help' }, f.help));
}

const noWarm = `The shipped warm start (${SHIPPED_WARM_START}) is not in this build`;

function RecipeForm({ lab }: { lab: Lab }) {
  const warm = shippedCheckpoints().includes(SHIPPED_WARM_START);
  const [error, setError] = useState('');
  const [open, setOpen] = useState('GRPO');
  const update = (path: string[], v: unknown) => {
    try {
      lab.recipe = parseRecipe(setPath(lab.recipe, path, v));
      setError('');
      lab.changed();
    } catch (e) {
      setError((e as Error).message);
    }
  };
  const load = async (e: Event) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (!file) return;
    try {
      lab.useRecipe(parseRecipe(JSON.parse(await file.text()), file.name));
      setError('');
    } catch (err) {
      setError((err as Error).message);
    }
  };
  return h('div', null,
    h('div', { class: 'row' },
      h('button', { id: 'preset-watch', class: lab.recipe.name === 'watch-grpo' ? 'primary' : '', disabled: !warm, title: warm ? 'GRPO from the shipped warm start: Train -> Start, and watch the search ratios of the two question categories split' : noWarm, onClick: () => lab.useRecipe(watchRecipe('main'), SHIPPED_WARM_START) }, 'Watch GRPO learn when to search'),
      h('button', { id: 'preset-watch-no-penalty', class: lab.recipe.name === 'watch-grpo-no-penalty' ? 'primary' : '', disabled: !warm, title: warm ? 'The same, without the search penalty (the paper\'s ablation): compare the two runs side by side in Train' : noWarm, onClick: () => lab.useRecipe(watchRecipe('no-penalty'), SHIPPED_WARM_START) }, 'the same without the search penalty'),
      h('button', { id: 'preset-full', class: lab.recipe.name === 'fvqa-mini' ? 'primary' : '', title: 'The main recipe, every stage here: captioning (1500 steps, so the policy learns to see creatures it never met), the decision-neutral warm start, then GRPO (the longest preset: docs/reproduction-fvqa-mini.md has its wall times)', onClick: () => lab.useRecipe(fullRecipe()) }, 'fvqa-mini from scratch (captioning + SFT + GRPO)'),
      h('span', { class: 'spacer' }),
      h('label', { class: 'button' }, 'Load JSON', h('input', { type: 'file', accept: '.json,application/json', hidden: true, onChange: load })),
      h('button', { onClick: () => download(`${lab.recipe.name}.json`, JSON.stringify(lab.recipe, null, 2) + '\n', 'application/json') }, 'Save JSON')),
    h('p', { class: 'muted' }, lab.recipe.description),
    lab.initFrom ? h('p', { class: 'notice info', id: 'init-from' }, `Starts from the shipped warm start ${lab.initFrom} (its SFT is done: the run begins at GRPO step 0).`) : null,
    error ? h('div', { class: 'notice error' }, error) : null,
    RECIPE_SECTIONS.map((s) => h('details', { open: open === s.title, onToggle: (e: Event) => (e.target as HTMLDetailsElement).open && setOpen(s.title) },
      h('summary', null, s.title, h('span', { class: 'muted' }, ` · ${s.fields.length} fields`)),
      s.title === 'Warm-start SFT' && !lab.recipe.sft ? h('p', { class: 'muted' }, 'SFT is off in this recipe.') :
      s.title === 'Captioning' && !lab.recipe.caption ? h('p', { class: 'muted' }, 'Captioning is off in this recipe.') :
      h('table', { class: 'fields' }, h('thead', null, h('tr', null, h('th', null, 'field'), h('th', null, 'value'), h('th', null, 'default'), h('th', null, ''))),
        h('tbody', null, s.fields.map((f) => h(Field, { f, value: getPath(lab.recipe, f.path), onChange: (v) => update(f.path, v) })))))));
}

function Search({ lab }: { lab: Lab }) {
  const p = lab.proxy;
  const r = lab.recipe;
  const set = (backend: 'local' | 'proxy') => ((lab.recipe = { ...r, search: { ...r.search, backend, proxy_url: p.url ?? r.search.proxy_url } }), lab.changed());
  const health = p.health as { backends?: Record<string, unknown> } | undefined;
  return h('div', { class: 'stack' },
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'search', checked: r.search.backend === 'local', onChange: () => set('local') }), ' In-worker local engine (BM25 text search and image nearest neighbours over the world\'s corpus; no network)'),
    h('label', { class: 'radio' }, h('input', { type: 'radio', name: 'search', disabled: !p.reachable, checked: r.search.backend === 'proxy', onChange: () => set('proxy') }), ' Search proxy ', p.url ? h('code', null, p.url) : null),
    h('div', { class: `notice ${p.reachable ? 'ok' : 'info'}`, id: 'proxy-status' }, p.message, ' ', h('button', { class: 'link', onClick: () => lab.checkProxy() }, 'check again')),
    health?.backends ? h('pre', { class: 'small' }, JSON.stringify(health.backends, null, 1)) : null);
}

/** The Setup view. */
export function SetupView({ lab }: { lab: Lab }) {
  useLab(lab);
  const [runs, setRuns] = useState<RunRecord[]>([]);
  useEffect(() => void lab.runs().then((db) => db.listRuns()).then(setRuns), [lab.run?.checkpointAt]);
  const shipped = shippedCheckpoints();
  return h('div', { class: 'view setup' },
    shipped.includes(SHIPPED_GRPO) || shipped.includes(SHIPPED_WARM_START)
      ? h('div', { class: 'notice info', id: 'first-visit' }, h('strong', null, 'Ready without training: '),
        shipped.includes(SHIPPED_GRPO) ? [h('a', { href: '#chat' }, 'Chat'), ' with the shipped GRPO-trained policy (pick a creature: it answers from memory or searches), ', h('a', { href: '#evaluate' }, 'Evaluate'), ' it in the three modes'] : null,
        shipped.includes(SHIPPED_GRPO) && shipped.includes(SHIPPED_WARM_START) ? ', or ' : null,
        shipped.includes(SHIPPED_WARM_START) ? [h('a', { href: '#train' }, 'Train'), ' -> Start to watch GRPO learn when to search from the shipped warm start (the recipe below), then look at each step in the Step inspector.'] : '.')
      : null,
    h('div', { class: 'cols' },
      h(Card, { title: 'Device' }, h(Adapter, { lab })),
      h(Card, { title: 'Model' }, h(Model, { lab, runs })),
      h(Card, { title: 'Search backend' }, h(Search, { lab }))),
    h(Card, { title: 'Dataset: FVQA-mini' }, h(Dataset, { lab })),
    h(Card, { title: `Recipe: ${lab.recipe.name}` }, h(RecipeForm, { lab })));
}
