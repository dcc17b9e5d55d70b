/**
 * Rollouts: for a GRPO step, each group's G trajectories side by side: the image, each turn with its
 * tool call, returned results with thumbnails, tokens shaded by loss mask, reward parts and advantage.
 */
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { useLab, type Lab } from '../lab.js';
import type { RolloutView } from '../runs-store.js';
import { Card } from './setup.js';

type Filter = 'all' | 'yes' | 'no';

function Trajectory({ t }: { t: RolloutView }) {
  const [tokens, setTokens] = useState(false);
  return h('div', { class: `traj ${t.accuracy ? 'correct' : ''}` },
    h('div', { class: 'traj-head' },
      h('span', { class: 'badge' }, `#${t.index}`),
      h('span', { class: 'metric' }, 'reward ', h('b', null, t.reward.toFixed(2))),
      h('span', { class: 'metric' }, 'acc ', h('b', null, t.accuracy)),
      h('span', { class: 'metric' }, 'format ', h('b', null, t.format)),
      h('span', { class: `metric ${t.advantage >= 0 ? 'pos' : 'neg'}` }, 'adv ', h('b', null, t.advantage.toFixed(2))),
      t.truncated ? h('span', { class: 'badge warn' }, 'truncated') : null),
    t.turns.map((turn) => turn.role === 'assistant'
      ? h('div', { class: 'turn assistant' }, h('div', { class: 'turn-label' }, 'assistant', h('span', { class: `call call-${turn.call}` }, turn.call)), h('div', { class: 'turn-text' }, turn.text || '∅'))
      : h('div', { class: `turn tool ${turn.error ? 'error' : ''}` }, h('div', { class: 'turn-label' }, 'tool result'),
        h('div', { class: 'turn-text' }, turn.parts.map((p) => (p.type === 'image' ? h('img', { class: 'thumb', src: p.url, alt: 'search result thumbnail' }) : h('span', null, p.text.length > 400 ? p.text.slice(0, 400) + '…' : p.text)))))),
    h('button', { class: 'link', onClick: () => setTokens(!tokens) }, tokens ? 'hide tokens' : 'tokens by loss mask'),
    tokens ? h('div', { class: 'tokens' }, t.tokens.map((k) => h('span', { class: k.m ? 'tok gen' : 'tok ins', title: k.m ? 'generated (in the loss)' : 'inserted (masked out)' }, k.t))) : null);
}

/** The Rollouts view. */
export function RolloutsView({ lab }: { lab: Lab }) {
  useLab(lab);
  const runId = lab.run?.id ?? lab.resumable?.id ?? null;
  const [steps, setSteps] = useState<number[]>([]);
  const [step, setStep] = useState<number | null>(null);
  const [views, setViews] = useState<RolloutView[]>([]);
  const [searched, setSearched] = useState<Filter>('all');
  const [correct, setCorrect] = useState<Filter>('all');
  const [category, setCategory] = useState('all');
  useEffect(() => {
    if (!runId) return;
    void lab.runs().then((db) => db.rolloutSteps(runId)).then((s) => {
      setSteps(s);
      if (step === null || !s.includes(step)) setStep(s.at(-1) ?? null);
    });
  }, [runId, lab.rolloutStep]);
  useEffect(() => {
    if (runId && step !== null) void lab.runs().then((db) => db.rollouts(runId, step)).then(setViews);
  }, [runId, step]);
  const keep = (f: Filter, v: boolean) => f === 'all' || (f === 'yes') === v;
  const shown = views.filter((t) => keep(searched, t.searched) && keep(correct, !!t.accuracy) && (category === 'all' || t.category === category));
  const groups = [...new Set(shown.map((t) => t.group))].map((g) => shown.filter((t) => t.group === g));
  const select = (label: string, value: string, set: (v: never) => void, options: string[]) =>
    h('label', null, `${label} `, h('select', { value, onChange: (e: Event) => set((e.target as HTMLSelectElement).value as never) }, options.map((o) => h('option', { value: o }, o))));
  return h('div', { class: 'view rollouts' },
    h('div', { class: 'toolbar' },
      h('label', null, 'GRPO step ', h('select', { id: 'rollout-step', value: step ?? '', onChange: (e: Event) => setStep(Number((e.target as HTMLSelectElement).value)) }, steps.map((s) => h('option', { value: s }, String(s))))),
      select('searched', searched, setSearched, ['all', 'yes', 'no']),
      select('correct', correct, setCorrect, ['all', 'yes', 'no']),
      select('category', category, setCategory, ['all', 'search_free', 'search_required']),
      h('span', { class: 'muted' }, `${shown.length} of ${views.length} trajectories`)),
    !runId || !steps.length ? h('div', { class: 'notice info' }, 'No rollouts yet: GRPO steps store their trajectories here (the last 20 steps of a run).') : null,
    groups.map((g) => h(Card, { title: `Group ${g[0].group}: ${g[0].question}` },
      h('div', { class: 'group' },
        h('div', { class: 'group-info' }, h('img', { class: 'question-image', src: g[0].image, alt: 'question image' }),
          h('div', null, 'answer ', h('b', null, g[0].groundTruth)), h('div', { class: 'muted' }, g[0].category ?? '')),
        h('div', { class: 'trajs' }, g.map((t) => h(Trajectory, { t })))))));
}
