import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, skipWithout } from '@angos/test-support';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { documentedMetrics, REPO_ROOT, seriesNames } from './metrics-doc.js';

/**
 * deploy/grafana/angos-dashboard.json and deploy/prometheus/angos-alerts.yaml: they parse, have
 * the shape Grafana and Prometheus load, cover what operators watch, and use only metrics that
 * docs/metrics.md lists (so a renamed metric cannot leave a dashboard or an alert silently
 * empty). With promtool, every expression parses, the rules load, and their unit tests
 * (angos-alerts.test.yaml) pass.
 */

const DASHBOARD = join(REPO_ROOT, 'deploy', 'grafana', 'angos-dashboard.json');
const ALERTS_DIR = join(REPO_ROOT, 'deploy', 'prometheus');
const ALERTS = join(ALERTS_DIR, 'angos-alerts.yaml');
const ALERT_TESTS = join(ALERTS_DIR, 'angos-alerts.test.yaml');

/** Every series name a documented metric exposes. */
const KNOWN_SERIES = new Set(documentedMetrics().flatMap(seriesNames));

/** How Grafana spells the data source variable in a panel (not a JavaScript template). */
const DATASOURCE_VARIABLE = ['$', '{datasource}'].join('');

const PROMQL_KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
]);

/**
 * The metric names a PromQL expression selects: identifiers that are not functions, keywords,
 * label names (inside `{}` and grouping clauses) or parts of numbers and durations.
 */
export function metricNamesIn(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const before = stripped[(match.index ?? 0) - 1] ?? ' ';
    const after = stripped.slice((match.index ?? 0) + name.length).trimStart();
    if (/[0-9.$]/.test(before) || after.startsWith('(') || PROMQL_KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

interface Target {
  readonly refId: string;
  readonly expr: string;
}
interface Panel {
  readonly id: number;
  readonly type: string;
  readonly title: string;
  readonly gridPos: { h: number; w: number; x: number; y: number };
  readonly datasource?: { type: string; uid: string };
  readonly targets?: Target[];
}
interface Dashboard {
  readonly title: string;
  readonly uid: string;
  readonly schemaVersion: number;
  readonly panels: Panel[];
  readonly templating: { list: { name: string; type: string }[] };
}
interface Rule {
  readonly alert?: string;
  readonly record?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}
interface RuleFile {
  readonly groups: { name: string; rules: Rule[] }[];
}

const dashboard = async () => JSON.parse(await readFile(DASHBOARD, 'utf8')) as Dashboard;
const alertRules = async () => parseYaml(await readFile(ALERTS, 'utf8')) as RuleFile;
const dashboardExprs = (d: Dashboard) =>
  d.panels.flatMap((panel) => (panel.targets ?? []).map((t) => t.expr));
const ruleExprs = (r: RuleFile) => r.groups.flatMap((group) => group.rules.map((rule) => rule.expr));

/** The names `exprs` use that docs/metrics.md does not list. */
const undocumented = (exprs: readonly string[]) =>
  [...new Set(exprs.flatMap(metricNamesIn))].filter((name) => !KNOWN_SERIES.has(name));

describe('metricNamesIn', () => {
  it('finds the metrics and nothing else', () => {
    expect(
      metricNamesIn(
        'histogram_quantile(0.99, sum by (route, le) (rate(http_request_duration_ms_bucket{job=~"$job",route!~"a|b"}[$__rate_interval]))) > 1e3',
      ),
    ).toEqual(['http_request_duration_ms_bucket']);
    expect(
      metricNamesIn(
        '(time() - max by (downstream) (last_success) > 900) and on (downstream) sum(increase(pushes{outcome="failed"}[15m])) > 0',
      ),
    ).toEqual(['last_success', 'pushes']);
    expect(metricNamesIn('sum(up offset 5m) / bool 2')).toEqual(['up']);
  });
});

describe('deploy/grafana/angos-dashboard.json', () => {
  it('is a Grafana dashboard whose panels query the Prometheus data source variable', async () => {
    const d = await dashboard();
    expect(d).toMatchObject({ title: 'Angos', uid: 'angos-overview' });
    expect(d.schemaVersion).toBeGreaterThanOrEqual(36);
    expect(d.templating.list.map(({ name, type }) => `${name}:${type}`)).toEqual([
      'datasource:datasource',
      'job:query',
    ]);
    const ids = d.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const panel of d.panels) {
      const { x, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      expect(h, panel.title).toBeGreaterThan(0);
      if (panel.type === 'row') continue;
      expect(panel.datasource, panel.title).toEqual({ type: 'prometheus', uid: DATASOURCE_VARIABLE });
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      const refIds = (panel.targets ?? []).map((target) => target.refId);
      expect(new Set(refIds).size, panel.title).toBe(refIds.length);
      for (const target of panel.targets ?? []) expect(target.expr, panel.title).toContain('job=~"$job"');
    }
  });

  it('panels do not overlap', async () => {
    const cells = new Map<string, string>();
    for (const panel of (await dashboard()).panels) {
      const { x, y, w, h } = panel.gridPos;
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const other = cells.get(`${row}:${column}`);
          expect(other, `${panel.title} overlaps ${other}`).toBeUndefined();
          cells.set(`${row}:${column}`, panel.title);
        }
      }
    }
  });

  it('shows what operators watch, with metrics docs/metrics.md lists', async () => {
    const exprs = dashboardExprs(await dashboard());
    expect(undocumented(exprs)).toEqual([]);
    const used = new Set(exprs.flatMap(metricNamesIn));
    for (const name of [
      'http_requests_total',
      'http_request_duration_ms_bucket',
      'auth_attempts_total',
      'angos_replication_lag_seconds',
      'angos_job_queue_pending',
      'angos_job_queue_failed',
      'angos_pull_through_cache_hits_total',
      'angos_pull_through_cache_misses_total',
      'angos_upstream_requests_total',
      'lock_acquisitions_total',
      'storage_operation_errors_total',
      'event_webhook_deliveries_total',
    ]) {
      expect(used, name).toContain(name);
    }
  });
});

describe('deploy/prometheus/angos-alerts.yaml', () => {
  it('is a rule file of alerting rules, each with a severity and a summary', async () => {
    const { groups } = await alertRules();
    expect(groups.map((group) => group.name)).toEqual(['angos']);
    const names = groups.flatMap((group) => group.rules.map((rule) => rule.alert));
    expect(new Set(names).size).toBe(names.length);
    for (const rule of groups.flatMap((group) => group.rules)) {
      expect(rule.alert, rule.expr).toMatch(/^Angos[A-Z][A-Za-z]+$/);
      expect(['warning', 'critical']).toContain(rule.labels?.['severity']);
      expect(rule.annotations?.['summary'], rule.alert).toBeTruthy();
      if (rule.for !== undefined) expect(rule.for).toMatch(/^\d+[smh]$/);
    }
  });

  it('alerts on what operators watch, with metrics docs/metrics.md lists', async () => {
    const exprs = ruleExprs(await alertRules());
    expect(undocumented(exprs)).toEqual([]);
    const used = new Set(exprs.flatMap(metricNamesIn));
    for (const name of [
      'http_requests_total',
      'http_request_duration_ms_bucket',
      'angos_replication_lag_seconds',
      'angos_job_queue_failed',
      'angos_upstream_requests_total',
      'lock_acquisitions_total',
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it('has unit tests for every alert', async () => {
    const tests = parseYaml(await readFile(ALERT_TESTS, 'utf8')) as {
      tests: { alert_rule_test: { alertname: string }[] }[];
    };
    const tested = new Set(tests.tests.flatMap((t) => t.alert_rule_test.map((a) => a.alertname)));
    const alerts = (await alertRules()).groups.flatMap((group) => group.rules.map((rule) => rule.alert));
    expect(alerts.filter((alert) => alert !== undefined && !tested.has(alert))).toEqual([]);
  });
});

describe.skipIf(skipWithout('the promtool checks of deploy/', 'promtool'))('promtool', () => {
  it('loads the alert rules and passes their unit tests', async () => {
    const check = await run('promtool', ['check', 'rules', ALERTS], { timeoutMs: 30_000 });
    expect(check.code, check.stdout + check.stderr).toBe(0);
    const unit = await run('promtool', ['test', 'rules', 'angos-alerts.test.yaml'], {
      cwd: ALERTS_DIR,
      timeoutMs: 30_000,
    });
    expect(unit.code, unit.stdout + unit.stderr).toBe(0);
  });

  it("parses every expression of the dashboard (as recording rules, Grafana's variables filled in)", async () => {
    const rules = dashboardExprs(await dashboard()).map((expr, index) => ({
      record: `angos:dashboard_expr_${index}`,
      expr: expr.replaceAll('$__rate_interval', '5m').replaceAll('$job', '.*'),
    }));
    const dir = await mkdtemp(join(tmpdir(), 'angos-dashboard-'));
    try {
      const file = join(dir, 'dashboard-rules.json');
      // JSON is YAML: promtool reads it as a rule file.
      await writeFile(file, JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
      const check = await run('promtool', ['check', 'rules', file], { timeoutMs: 30_000 });
      expect(check.code, check.stdout + check.stderr).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
