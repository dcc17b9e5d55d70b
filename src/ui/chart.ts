/**
 * Streaming line charts on uPlot: one chart per metric group, x = step, EMA smoothing (TensorBoard's
 * debiased form), a log-scale y axis, marks at given steps (knob changes), PNG export of the canvas.
 */
import { h } from 'preact';
import { useEffect, useMemo, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { download } from './lab.js';

const COLOURS = ['#2563eb', '#dc2626', '#16a34a', '#9333ea', '#ea580c', '#0891b2'];

/** EMA with weight `w` in [0, 1), debiased at the start; NaN/null points are carried through. */
export function smooth(ys: (number | null)[], w: number): (number | null)[] {
  if (w <= 0) return ys;
  let last = 0, n = 0;
  return ys.map((y) => {
    if (y === null || !Number.isFinite(y)) return null;
    last = last * w + (1 - w) * y;
    n++;
    return last / (1 - w ** n);
  });
}

/** Props of {@link MetricChart}. */
export interface MetricChartProps {
  title: string;
  /** Points per step: `step -> {key: value}`. */
  points: { step: number; metrics: Record<string, number> }[];
  keys: string[];
  /** Legend labels (default the keys). */
  labels?: string[];
  smoothing: number;
  log: boolean;
  /** Value transform (e.g. bytes -> MiB). */
  scale?: number;
  /** A caption that explains the metric. */
  help?: string;
  /** Vertical marks: at `step`, labelled (e.g. a knob change applied from that step). */
  marks?: ChartMark[];
  /** A fixed y range (two runs side by side share one), else fitted to the data. */
  yRange?: [number, number];
  /** The last step of the x axis (a run's planned steps, so that the lines grow across the chart), else fitted to the data. */
  xMax?: number;
}

/** A vertical mark on a chart. */
export interface ChartMark {
  step: number;
  label: string;
}

/** A uPlot line chart that updates in place as points arrive. */
export function MetricChart(p: MetricChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = useMemo<uPlot.AlignedData>(() => {
    const pts = p.points.filter((pt) => p.keys.some((k) => k in pt.metrics));
    const xs = pts.map((pt) => pt.step);
    const ys = p.keys.map((k) => {
      const raw = pts.map((pt) => (k in pt.metrics && Number.isFinite(pt.metrics[k]) ? pt.metrics[k] * (p.scale ?? 1) : null));
      return smooth(raw, p.smoothing).map((v) => (p.log && v !== null && v <= 0 ? null : v));
    });
    return [xs, ...ys];
  }, [p.points, p.points.length, p.keys.join(), p.smoothing, p.log, p.scale]);

  const marks = useRef<ChartMark[]>([]);
  marks.current = p.marks ?? [];
  useEffect(() => {
    const el = box.current!;
    const u = new uPlot({
      hooks: { draw: [(u) => drawMarks(u, marks.current)] },
      width: Math.max(240, el.clientWidth), height: 190,
      scales: { x: { time: false, ...(p.xMax ? { range: [0, p.xMax] as [number, number] } : {}) }, y: { ...(p.log ? { distr: 3 } : {}), ...(p.yRange ? { range: p.yRange } : {}) } },
      axes: [{ label: 'step', size: 36, labelSize: 16, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000] }, { size: 56 }],
      legend: { live: true },
      series: [{ label: 'step' }, ...p.keys.map((k, i) => ({ label: p.labels?.[i] ?? k, stroke: COLOURS[i % COLOURS.length], width: 1.6, points: { size: 5 }, spanGaps: true }))],
    }, data, el);
    plot.current = u;
    const ro = new ResizeObserver(() => u.setSize({ width: Math.max(240, el.clientWidth), height: 190 }));
    ro.observe(el);
    return () => (ro.disconnect(), u.destroy(), (plot.current = null));
  }, [p.keys.join(), p.log, p.yRange?.join(), p.xMax]);

  useEffect(() => plot.current?.setData(data), [data]);
  // New marks on drawn data: draw again (uPlot cannot lay out axes without data).
  useEffect(() => void (data[0].length && plot.current?.redraw(false)), [JSON.stringify(p.marks ?? [])]);

  const png = () => plot.current && download(`${p.title.replace(/\W+/g, '_')}.png`, dataUrlToBytes(plot.current.ctx.canvas.toDataURL('image/png')), 'image/png');
  const points = data[0].length;
  return h('div', { class: 'card chart', 'data-chart': p.title, 'data-points': points, 'data-marks': (p.marks ?? []).map((m) => m.step).join(',') },
    h('div', { class: 'chart-head' }, h('h3', { title: p.help }, p.title), h('span', { class: 'muted' }, points ? `${points} pts` : 'waiting for data'), h('button', { class: 'link', title: 'Save as PNG', onClick: png }, 'PNG')),
    h('div', { ref: box, class: 'chart-body' }),
    p.help ? h('p', { class: 'chart-help' }, p.help) : null,
    p.marks?.length ? h('p', { class: 'chart-marks' }, p.marks.map((m) => h('span', { class: 'mark-chip' }, `step ${m.step}: ${m.label}`))) : null);
}

/** Dashed vertical lines at the marks' steps, their labels stacked beside them (uPlot draw hook). */
function drawMarks(u: uPlot, marks: readonly ChartMark[]): void {
  const ctx = u.ctx;
  const { left, top, width, height } = u.bbox;
  const px = devicePixelRatio;
  ctx.save();
  ctx.strokeStyle = '#b45309';
  ctx.fillStyle = '#b45309';
  ctx.lineWidth = 1.5 * px;
  ctx.font = `${11 * px}px sans-serif`;
  for (const step of new Set(marks.map((m) => m.step))) {
    const x = Math.round(u.valToPos(step, 'x', true));
    ctx.setLineDash([5 * px, 4 * px]);
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, top + height);
    ctx.stroke();
    // Labels on the side with room: left of the line in the right half of the plot.
    const right = x > left + width / 2;
    ctx.textAlign = right ? 'right' : 'left';
    marks.filter((m) => m.step === step).forEach((m, i) => ctx.fillText(m.label, x + (right ? -4 : 4) * px, top + (12 + 13 * i) * px));
  }
  ctx.restore();
}

function dataUrlToBytes(url: string): Uint8Array<ArrayBuffer> {
  const bin = atob(url.slice(url.indexOf(',') + 1));
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}
