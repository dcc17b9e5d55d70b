/**
 * Chat: pick an image from the world's dataset (or upload one), ask a question, and watch the policy
 * reason, call image or text search, read the results and answer, streamed token by token; or sample
 * its decision on the question many times (how often it searches, what it answers).
 */
import * as Comlink from 'comlink';
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import type { ChatEvent, ChatSample, ModelSpec, SampledDecisions } from '../../lab/worker-api.js';
import type { TurnPart } from '../../protocol/tools.js';
import { useLab, type Lab } from '../lab.js';
import { defaultModel, ModelPicker } from './evaluate.js';
import { Card } from './setup.js';

/** How many trajectories "Sample its decision" draws. */
const DECISION_SAMPLES = 16;

type Bubble = { role: 'assistant'; text: string; call?: string } | { role: 'tool'; parts: TurnPart[]; error: boolean };

const bytesOfDataUrl = (url: string) => Uint8Array.from(atob(url.slice(url.indexOf(',') + 1)), (c) => c.charCodeAt(0));

/** The Chat view. */
export function ChatView({ lab }: { lab: Lab }) {
  useLab(lab);
  const [spec, setSpec] = useState(defaultModel);
  const [loaded, setLoaded] = useState('');
  const [modelKey, setModelKey] = useState('');
  const [samples, setSamples] = useState<ChatSample[]>([]);
  const [image, setImage] = useState<string | null>(null);
  const [question, setQuestion] = useState('');
  const [expected, setExpected] = useState('');
  const [temperature, setTemperature] = useState(0);
  const [maxTurns, setMaxTurns] = useState(3);
  const [bubbles, setBubbles] = useState<Bubble[]>([]);
  const [status, setStatus] = useState('');
  const [useProxy, setUseProxy] = useState(false);
  const [rag, setRag] = useState(false);
  const [decisions, setDecisions] = useState<SampledDecisions | null>(null);
  // Load is disabled while a load runs (the worker would queue a second one; the button says it is busy); the model
  // line appears once the model and its world's samples are ready.
  const load = async () => {
    setStatus('loading…');
    setLoaded('');
    setSamples([]);
    try {
      const chosen = spec || JSON.stringify({ kind: 'fresh', recipe: lab.recipe });
      const info = await lab.inference.load(JSON.parse(chosen) as ModelSpec, { backend: lab.backend, proxyUrl: useProxy && lab.proxy.reachable ? lab.proxy.url ?? undefined : undefined });
      setSamples(await lab.inference.samples(info.key, 'test', 12));
      setModelKey(info.key);
      setLoaded(`${info.label} · ${(info.parameters / 1e6).toFixed(2)} M parameters${info.loraModules ? ` · LoRA adapter on ${info.loraModules} modules` : ''} · search: ${info.search}`);
      setStatus('');
    } catch (e) {
      setStatus(`failed: ${(e as Error).message}`);
    }
  };
  // First visit with a shipped trained policy: load it at once, ready to ask.
  useEffect(() => void (defaultModel() && !loaded && load()), []);
  // A new image or sample starts afresh: the last conversation and sampled decision were about another question.
  const choose = (img: string, q: string | null, answer: string) => {
    setImage(img);
    if (q !== null) setQuestion(q);
    setExpected(answer);
    setBubbles([]);
    setDecisions(null);
    setStatus('');
  };
  const upload = (e: Event) => {
    const f = (e.target as HTMLInputElement).files?.[0];
    if (!f) return;
    const reader = new FileReader();
    reader.onload = () => choose(reader.result as string, null, '');
    reader.readAsDataURL(f);
  };
  const send = async () => {
    if (!image || !question) return;
    setBubbles([]);
    setStatus('thinking…');
    const out: Bubble[] = [];
    const onEvent = (e: ChatEvent) => {
      if (e.type === 'turn') out.push({ role: 'assistant', text: '' });
      else if (e.type === 'token') (out.at(-1) as Extract<Bubble, { role: 'assistant' }>).text += e.text;
      else if (e.type === 'call') (out.filter((b) => b.role === 'assistant').at(-1) as Extract<Bubble, { role: 'assistant' }>).call = e.call;
      else if (e.type === 'tool') out.push({ role: 'tool', parts: e.parts, error: e.error });
      else if (e.type === 'done') setStatus(e.answer === null ? 'finished without an <answer>' : `answer: ${e.answer}`);
      setBubbles([...out]);
    };
    try {
      await lab.inference.chat({ model: modelKey, image: bytesOfDataUrl(image), question, temperature, maxTurns, rag }, Comlink.proxy(onEvent));
    } catch (e) {
      setStatus(`failed: ${(e as Error).message}`);
    }
  };
  const sample = async () => {
    if (!image || !question) return;
    setDecisions(null);
    setStatus('sampling…');
    try {
      const onProgress = (done: number, total: number) => setStatus(`sampling ${done} / ${total}…`);
      setDecisions(await lab.inference.sampleDecisions({ model: modelKey, image: bytesOfDataUrl(image), question, expected: expected || undefined, samples: DECISION_SAMPLES }, Comlink.proxy(onProgress)));
      setStatus('');
    } catch (e) {
      setStatus(`failed: ${(e as Error).message}`);
    }
  };
  const busy = status === 'loading…' || status === 'thinking…' || status.startsWith('sampling');
  return h('div', { class: 'view chat' },
    h(Card, { title: 'Model' },
      h('div', { class: 'row' }, h(ModelPicker, { lab, value: spec, onChange: setSpec, id: 'chat-model' }),
        h('label', { class: 'check', title: lab.proxy.message }, h('input', { type: 'checkbox', id: 'chat-proxy', disabled: !lab.proxy.reachable, checked: useProxy, onChange: (e: Event) => setUseProxy((e.target as HTMLInputElement).checked) }), ' search through the proxy'),
        h('button', { class: 'primary', id: 'chat-load', disabled: busy, onClick: load }, 'Load')),
      loaded ? h('p', { class: 'muted', id: 'chat-loaded' }, loaded) : null),
    h('div', { class: 'chat-layout' },
      h(Card, { title: 'Image and question' },
        samples.length ? h('div', { class: 'samples' }, samples.map((s) => h('button', { class: `sample ${image === s.image ? 'chosen' : ''}`, title: `${s.question} (${s.answer}; ${s.category ?? 'no category'})`, onClick: () => choose(s.image, s.question, s.answer) }, h('img', { src: s.image, alt: s.question })))) : h('p', { class: 'muted' }, 'Load a model to pick images from its FVQA-mini world.'),
        h('label', { class: 'button' }, 'Upload an image', h('input', { type: 'file', accept: 'image/png,image/jpeg', hidden: true, onChange: upload })),
        image ? h('img', { class: 'question-image big', src: image, alt: 'chosen image' }) : null,
        h('textarea', { id: 'chat-question', rows: 2, placeholder: 'Ask about the image…', value: question, onInput: (e: Event) => setQuestion((e.target as HTMLTextAreaElement).value) }),
        expected ? h('p', { class: 'muted' }, 'dataset answer: ', h('b', null, expected)) : null,
        h('div', { class: 'row' },
          h('label', null, 'temperature ', h('input', { type: 'range', min: 0, max: 1.5, step: 0.1, value: temperature, onInput: (e: Event) => setTemperature(Number((e.target as HTMLInputElement).value)) }), ` ${temperature.toFixed(1)}`),
          h('label', null, 'max turns ', h('input', { type: 'number', class: 'short', min: 1, max: 3, value: maxTurns, onChange: (e: Event) => setMaxTurns(Number((e.target as HTMLInputElement).value)) })),
          h('label', { class: 'check', title: 'The RAG workflow of Table 1: the first turn is a scripted image search, the next one must end in a text search (the policy writes the query), then the policy answers' }, h('input', { type: 'checkbox', id: 'chat-rag', checked: rag, onChange: (e: Event) => setRag((e.target as HTMLInputElement).checked) }), ' RAG workflow'),
          h('button', { class: 'primary', id: 'chat-send', disabled: !loaded || !image || !question || busy, onClick: send }, 'Ask')),
        h('div', { class: 'row' },
          h('button', { id: 'chat-sample', disabled: !loaded || !image || !question || busy, onClick: sample, title: `${DECISION_SAMPLES} on-demand conversations sampled at the recipe's GRPO temperature: the per-question search ratio that the GRPO search-ratio curves average` }, `Sample its decision ×${DECISION_SAMPLES}`)),
        decisions ? h(DecisionSummary, { d: decisions }) : null),
      h(Card, { title: 'Conversation' },
        h('div', { class: 'transcript', id: 'chat-transcript' },
          bubbles.map((b) => b.role === 'assistant'
            ? h('div', { class: 'bubble assistant' }, h('div', { class: 'turn-label' }, 'assistant', b.call ? h('span', { class: `call call-${b.call.split(':')[0]}` }, b.call) : null), h('div', { class: 'turn-text' }, b.text))
            : h('div', { class: `bubble tool ${b.error ? 'error' : ''}` }, h('div', { class: 'turn-label' }, 'search results'), h('div', { class: 'turn-text' }, b.parts.map((p) => (p.type === 'image' ? h('img', { class: 'thumb', src: p.url, alt: 'result' }) : h('span', null, p.text)))))),
          !bubbles.length ? h('p', { class: 'muted' }, 'The answer streams here, with every search call and its results.') : null),
        status ? h('p', { class: 'status', id: 'chat-status' }, status) : null)));
}

/** The counts of a sampled decision: how often the policy searched, and its answers (right or wrong when the dataset answer is known). */
function DecisionSummary({ d }: { d: SampledDecisions }) {
  const memory = d.samples - d.searched;
  return h('div', { class: 'decisions', id: 'chat-decisions' },
    h('p', null, `${d.samples} samples at temperature ${d.temperature}: `, h('b', null, `searched ${d.searched}`),
      ` (image search ${d.imageSearched}, text search ${d.textSearched}), answered from memory ${memory}`),
    h('div', { class: 'bar', title: `search ratio ${((100 * d.searched) / d.samples).toFixed(0)}%` }, h('div', { style: { width: `${(100 * d.searched) / d.samples}%` } })),
    h('p', { class: 'muted' }, 'answers: ', d.answers.map((a, i) => h('span', { class: a.correct === null ? '' : a.correct ? 'right' : 'wrong' }, `${i ? ', ' : ''}${a.answer ?? '(none)'} ×${a.count}${a.correct === null ? '' : a.correct ? ' ✓' : ' ✗'}`))));
}
