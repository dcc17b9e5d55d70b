/**
 * The GRPO step inspector: for a step of the run (live, as steps finish), each group's G trajectories
 * side by side with the question, the group's mean and std, each trajectory's reward components and
 * advantage; every token shaded by how much that step's update changed its log-probability (the trainer
 * re-scores the same tokens before and after the update: green reinforced, red suppressed), tool results
 * shown as masked. A second stored run can be shown next to it at the same step (e.g. the main run and
 * the no-penalty ablation).
 */
import { h } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { useLab, type Lab } from '../lab.js';
import type { RolloutView, RunRecord } from '../../lab/runs-store.js';
import { Card } from './setup.js';

type Filter = 'all' | 'yes' | 'no';

const ADVANTAGE_HELP = 'Advantage A = (reward − group mean) / (group std + 1e-4): how much better this trajectory did than the others sampled for the same question. The update raises the log-probability of every token the policy wrote in trajectories with A > 0 and lowers it where A < 0; a group whose rewards all agree (std 0) teaches nothing.';
const SHADING_HELP = 'Each token the policy wrote is shaded by how much this step\'s update changed its log-probability (the same tokens re-scored with the policy before and after the update): green = reinforced (more likely now), red = suppressed; the stronger the colour, the larger the change (full colour from the step\'s 95th percentile of |Δ log p| up; hover a token for its numbers). Grey italics: tool results and other inserted text, masked out of the loss (tool_mask 0).';

/** Background for a log-prob change `d` on the step's scale `max` (changes beyond it get the full colour). */
function shade(d: number, max: number): string {
  const a = Math.sqrt(Math.min(1, Math.abs(d) / (max || 1))) * 0.75;
  return d >= 0 ? `rgba(22, 163, 74, ${a.toFixed(3)})` : `rgba(220, 38, 38, ${a.toFixed(3)})`;
}

function Tokens({ t, max }: { t: RolloutView; max: number }) {
  return h('div', { class: 'tokens' }, t.tokens.map((k) => {
    if (!k.m) return h('span', { class: 'tok ins', title: 'inserted (tool result or follow-up turn): masked out of the loss' }, k.t);
    if (k.d === undefined) return h('span', { class: 'tok gen', title: 'generated (in the loss)' }, k.t);
    return h('span', { class: 'tok gen', 'data-i': k.i, 'data-d': k.d, style: { background: shade(k.d, max) }, title: `log p before ${k.lp!.toFixed(3)}, after ${(k.lp! + k.d).toFixed(3)} (Δ ${k.d >= 0 ? '+' : ''}${k.d.toFixed(4)})` }, k.t);
  }));
}

function Trajectory({ t, max }: { t: RolloutView; max: number }) {
  const [turns, setTurns] = useState(false);
  const generated = t.tokens.filter((k) => k.d !== undefined);
  const meanD = generated.length ? generated.reduce((a, k) => a + k.d!, 0) / generated.length : null;
  return h('div', { class: `traj ${t.accuracy ? 'correct' : ''}`, 'data-index': t.index },
    h('div', { class: 'traj-head' },
      h('span', { class: 'badge' }, `#${t.index}`),
      h('span', { class: 'metric', title: 'reward = 0.9 · accuracy · P + 0.1 · format' }, 'reward ', h('b', null, t.reward.toFixed(2))),
      h('span', { class: 'metric', title: 'accuracy: the final answer matches the dataset\'s exactly (after normalisation)' }, 'acc ', h('b', null, t.accuracy)),
      h('span', { class: 'metric', title: 'format: every turn reasons first, then ends with exactly one action tag' }, 'format ', h('b', null, t.format)),
      h('span', { class: 'metric', title: `P: 1 − search penalty (${t.searchPenalty}) when the trajectory searched, else 1` }, 'P ', h('b', null, t.penalty.toFixed(2))),
      h('span', { class: 'metric' }, `searches ${t.imageSearches} img / ${t.textSearches} text`),
      h('span', { class: `metric ${t.advantage >= 0 ? 'pos' : 'neg'}`, title: ADVANTAGE_HELP }, 'advantage ', h('b', null, t.advantage.toFixed(2))),
      meanD !== null ? h('span', { class: 'metric', title: 'mean change of log p over the tokens the policy wrote' }, 'mean Δ log p ', h('b', null, `${meanD >= 0 ? '+' : ''}${meanD.toFixed(4)}`)) : null,
      t.truncated ? h('span', { class: 'badge warn' }, 'truncated') : null),
    h(Tokens, { t, max }),
    h('button', { class: 'link', onClick: () => setTurns(!turns) }, turns ? 'hide turns' : 'turns with tool results'),
    turns ? t.turns.map((turn) => turn.role === 'assistant'
      ? h('div', { class: 'turn assistant' }, h('div', { class: 'turn-label' }, 'assistant', h('span', { class: `call call-${turn.call}` }, turn.call)), h('div', { class: 'turn-text' }, turn.text || '∅'))
      : h('div', { class: `turn tool ${turn.error ? 'error' : ''}` }, h('div', { class: 'turn-label' }, 'tool result (masked)'),
        h('div', { class: 'turn-text' }, turn.parts.map((p) => (p.type === 'image' ? h('img', { class: 'thumb', src: p.url, alt: 'search result thumbnail' }) : h('span', null, p.text.length > 400 ? p.text.slice(0, 400) + '…' : p.text)))))) : null);
}

/** One run's groups at one step. */
function Step({ views, title }: { views: RolloutView[]; title?: string }) {
  const changes = views.flatMap((t) => t.tokens.flatMap((k) => (k.d === undefined ? [] : [Math.abs(k.d)]))).sort((a, b) => a - b);
  // A few tokens move far more than the rest: colour on the 95th percentile so that the others show.
  const max = changes[Math.floor(0.95 * (changes.length - 1))] ?? 0;
  const groups = [...new Set(views.map((t) => t.group))].map((g) => views.filter((t) => t.group === g));
  const searched = views.filter((t) => t.searched).length;
  return h('div', { class: 'step-col' },
    title ? h('h3', { class: 'run-title' }, title) : null,
    views.length ? h('p', { class: 'muted step-summary' }, `${views.length} trajectories · mean reward ${(views.reduce((a, t) => a + t.reward, 0) / views.length).toFixed(3)} · search ratio ${((100 * searched) / views.length).toFixed(0)}% · |Δ log p| 95th percentile ${max.toFixed(4)}, largest ${(changes.at(-1) ?? 0).toFixed(4)}`) : null,
    groups.map((g) => h(Card, { title: `Group ${g[0].group}: ${g[0].question}` },
      h('div', { class: 'group' },
        h('div', { class: 'group-info' }, h('img', { class: 'question-image', src: g[0].image, alt: 'question image' }),
          h('div', null, 'answer ', h('b', null, g[0].groundTruth)), h('div', { class: 'muted' }, g[0].category ?? ''),
          h('div', { class: 'group-stats', title: ADVANTAGE_HELP }, 'group mean ', h('b', null, g[0].groupMean.toFixed(3)), h('br', null), 'group std ', h('b', null, g[0].groupStd.toFixed(3)))),
        h('div', { class: 'trajs' }, g.map((t) => h(Trajectory, { t, max })))))));
}

/** The Step inspector view. */
export function RolloutsView({ lab }: { lab: Lab }) {
  useLab(lab);
  const runId = lab.run?.id ?? lab.resumable?.id ?? null;
  const [steps, setSteps] = useState<number[]>([]);
  const [step, setStep] = useState<number | null>(null);
  const [views, setViews] = useState<RolloutView[]>([]);
  const [runs, setRuns] = useState<RunRecord[]>([]);
  const [other, setOther] = useState('');
  const [otherViews, setOtherViews] = useState<RolloutView[]>([]);
  const [searched, setSearched] = useState<Filter>('all');
  const [correct, setCorrect] = useState<Filter>('all');
  const [category, setCategory] = useState('all');
  useEffect(() => {
    if (!runId) return;
    void lab.runs().then((db) => db.rolloutSteps(runId)).then((s) => {
      setSteps(s);
      // Follow the newest step unless another one was picked.
      if (step === null || !s.includes(step) || step === steps.at(-1)) setStep(s.at(-1) ?? null);
    });
  }, [runId, lab.rolloutStep]);
  useEffect(() => void lab.runs().then((db) => db.listRuns()).then((r) => setRuns(r.filter((x) => x.id !== runId))), [runId]);
  useEffect(() => {
    if (runId && step !== null) void lab.runs().then((db) => db.rollouts(runId, step)).then(setViews);
  }, [runId, step]);
  useEffect(() => {
    if (other && step !== null) void lab.runs().then((db) => db.rollouts(other, step)).then(setOtherViews);
    else setOtherViews([]);
  }, [other, step]);
  const keep = (f: Filter, v: boolean) => f === 'all' || (f === 'yes') === v;
  const filter = (vs: RolloutView[]) => vs.filter((t) => keep(searched, t.searched) && keep(correct, !!t.accuracy) && (category === 'all' || t.category === category));
  const shown = filter(views);
  const select = (label: string, value: string, set: (v: never) => void, options: string[]) =>
    h('label', null, `${label} `, h('select', { value, onChange: (e: Event) => set((e.target as HTMLSelectElement).value as never) }, options.map((o) => h('option', { value: o }, o))));
  return h('div', { class: 'view rollouts' },
    h('div', { class: 'toolbar' },
      h('label', null, 'GRPO step ', h('select', { id: 'rollout-step', value: step ?? '', onChange: (e: Event) => setStep(Number((e.target as HTMLSelectElement).value)) }, steps.map((s) => h('option', { value: s }, String(s))))),
      select('searched', searched, setSearched, ['all', 'yes', 'no']),
      select('correct', correct, setCorrect, ['all', 'yes', 'no']),
      select('category', category, setCategory, ['all', 'search_free', 'search_required']),
      h('label', { title: 'Show another stored run at the same GRPO step, side by side' }, 'side by side with ',
        h('select', { id: 'inspect-compare', value: other, onChange: (e: Event) => setOther((e.target as HTMLSelectElement).value) },
          h('option', { value: '' }, '(no second run)'), runs.map((r) => h('option', { value: r.id }, r.id)))),
      h('span', { class: 'muted' }, `${shown.length} of ${views.length} trajectories`)),
    h('div', { class: 'legend' },
      h('span', { class: 'tok gen', style: { background: shade(1, 1) } }, 'reinforced'), h('span', { class: 'tok gen', style: { background: shade(-1, 1) } }, 'suppressed'),
      h('span', { class: 'tok ins' }, 'tool result (masked)'), h('span', { class: 'muted' }, SHADING_HELP)),
    h('p', { class: 'muted legend-note' }, ADVANTAGE_HELP, ' Reward components per trajectory: reward = 0.9 · acc · P + 0.1 · format (hover each for its meaning).'),
    !runId || !steps.length ? h('div', { class: 'notice info' }, 'No steps yet: each GRPO step stores its trajectories here as it finishes (the last 20 steps of a run). Turn on step-through in Train to stop after every step.') : null,
    other
      ? h('div', { class: 'side-by-side' }, h(Step, { views: shown, title: `A: ${runId}` }), h(Step, { views: filter(otherViews), title: `B: ${other}${otherViews.length ? '' : ' (no rollouts stored at this step)'}` }))
      : h(Step, { views: shown }));
}
