/**
 * A run's metrics.jsonl (one JSON object per logged step, as scripts/train.ts writes it:
 * `{phase, step, ...metrics}`) as CSV (RFC 4180): one header row with the union of keys in order of
 * first appearance, one row per line; numbers in JavaScript's shortest round-trip form, missing or
 * null values empty, text quoted when it holds a comma, quote or line break.
 */

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  const s = typeof v === 'number' ? String(v) : typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** CSV text (header + one row per record, `\n` line ends) of metric records. */
export function metricsToCsv(records: readonly Record<string, unknown>[]): string {
  const columns: string[] = [];
  const seen = new Set<string>();
  for (const r of records) for (const k of Object.keys(r)) if (!seen.has(k)) (seen.add(k), columns.push(k));
  const lines = [columns.map(csvField).join(','), ...records.map((r) => columns.map((c) => csvField(r[c])).join(','))];
  return lines.join('\n') + '\n';
}
