import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * docs/metrics.md as data: the rows of its metric tables (header
 * `Metric | Type | Labels | Published by | Meaning`), for the drift tests of `/metrics` and of
 * the dashboard and alert rules in deploy/.
 */

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const METRICS_DOC = join(REPO_ROOT, 'docs', 'metrics.md');

/** The processes that serve `/metrics`, and `scrub`, which publishes to nobody. */
export const PUBLISHERS = [
  'server',
  'gateway',
  'registry-api',
  'pull-through-cache',
  'worker',
  'scrub',
] as const;
export type Publisher = (typeof PUBLISHERS)[number];

export type MetricType = 'counter' | 'gauge' | 'histogram';

export interface DocumentedMetric {
  readonly name: string;
  readonly type: MetricType;
  /** Label names, sorted; empty for `none`. */
  readonly labels: readonly string[];
  readonly publishedBy: readonly Publisher[];
}

/** prom-client's process metrics, on every process and documented as a family, not one by one. */
export const isProcessMetric = (name: string): boolean =>
  name.startsWith('process_') || name.startsWith('nodejs_');

const HEADER = 'Metric|Type|Labels|Published by|Meaning';
const TYPES: ReadonlySet<string> = new Set(['counter', 'gauge', 'histogram']);

const cellsOf = (line: string): string[] =>
  line
    .trim()
    .replace(/^\||\|$/g, '')
    .split('|')
    .map((cell) => cell.trim());

/** The code spans of a cell (`` `a`, `b` `` → a, b). */
const codeSpans = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((match) => match[1] ?? '');

function parseRow(line: string): DocumentedMetric {
  const [metric = '', type = '', labels = '', publishedBy = ''] = cellsOf(line);
  const [name] = codeSpans(metric);
  if (name === undefined || codeSpans(metric).length !== 1)
    throw new Error(`row without one metric name: ${line}`);
  if (!TYPES.has(type)) throw new Error(`${name}: unknown type "${type}"`);
  const labelNames = labels === 'none' ? [] : codeSpans(labels);
  if (labels !== 'none' && labelNames.length === 0)
    throw new Error(`${name}: labels are "none" or code spans`);
  const publishers = codeSpans(publishedBy);
  for (const publisher of publishers) {
    if (!(PUBLISHERS as readonly string[]).includes(publisher)) {
      throw new Error(`${name}: unknown publisher "${publisher}"`);
    }
  }
  if (publishers.length === 0) throw new Error(`${name}: published by nobody`);
  return {
    name,
    type: type as MetricType,
    labels: [...labelNames].sort(),
    publishedBy: publishers as Publisher[],
  };
}

/** Every metric row of the reference, outside code blocks. Throws on a malformed row or a repeat. */
export function documentedMetrics(text = readFileSync(METRICS_DOC, 'utf8')): DocumentedMetric[] {
  const metrics: DocumentedMetric[] = [];
  let fenced = false;
  let inTable = false;
  let previous = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    if (fenced || !line.startsWith('|')) inTable = false;
    else if (/^\|(\s*:?-+:?\s*\|)+$/.test(line.trim())) inTable = cellsOf(previous).join('|') === HEADER;
    else if (inTable) metrics.push(parseRow(line));
    previous = line;
  }
  const seen = new Set<string>();
  for (const { name } of metrics) {
    if (seen.has(name)) throw new Error(`${name} is documented twice`);
    seen.add(name);
  }
  return metrics;
}

/** The values of the `route` label, from the reference's route table (header `route | Request`). */
export function documentedRoutes(text = readFileSync(METRICS_DOC, 'utf8')): string[] {
  const routes: string[] = [];
  let inTable = false;
  let previous = '';
  for (const line of text.split('\n')) {
    if (!line.startsWith('|')) inTable = false;
    else if (/^\|(\s*:?-+:?\s*\|)+$/.test(line.trim()))
      inTable = cellsOf(previous).join('|') === '`route`|Request';
    else if (inTable) routes.push(...codeSpans(cellsOf(line)[0] ?? ''));
    previous = line;
  }
  return routes;
}

/** The series names a metric exposes (a histogram's `_bucket`, `_sum` and `_count`). */
export function seriesNames(metric: Pick<DocumentedMetric, 'name' | 'type'>): string[] {
  return metric.type === 'histogram'
    ? [`${metric.name}_bucket`, `${metric.name}_sum`, `${metric.name}_count`]
    : [metric.name];
}
