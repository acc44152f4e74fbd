// Ingest keeps a request's spans for policy evaluation only while the project has enabled policies
// (SPEC §8.1; RSS under load, issue 11): a project without policies hands nothing to the evaluator,
// and a policy created later — on this replica through the API, or on another one straight into the
// table, which this replica learns only from its policy cache — starts matching ingested spans.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Counter } from 'prom-client';
import pg from 'pg';
import { createTestDatabase, startTestReceiver } from '../helpers.js';
import { av, freshProject, postSpans, span, spanId, waitFor } from './support.js';

const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' });

async function enqueuedSpans(): Promise<number> {
  const metric = r.metrics.registry.getSingleMetric('strathon_policy_evaluation_enqueued_spans_total') as Counter | undefined;
  assert.ok(metric, 'the evaluator registers its enqueued-spans counter');
  return (await metric.get()).values.reduce((sum, v) => sum + v.value, 0);
}
const matchCount = async (id: string) => Number((await r.pool.query('SELECT match_count FROM core.policies WHERE id = $1', [id])).rows[0].match_count);
const stored = async (projectId: string) => Number((await r.pool.query('SELECT count(*) FROM telemetry.spans WHERE project_id = $1', [projectId])).rows[0].count);
const marked = (agent: string) => ({ ...span(agent, { marker: av.b(true) }), spanId: spanId() });

test('a project without enabled policies hands no spans to the evaluator; a policy created later starts matching', async () => {
  const p = await freshProject(r);
  // The first request of an unknown project is kept (its policies are being read); once read, none are.
  await waitFor('the policy cache knows the project has no policies', async () => {
    const before = await enqueuedSpans();
    await postSpans(r.url, p.key, 'svc', [marked('alpha')]);
    return (await enqueuedSpans()) === before;
  });
  const before = await enqueuedSpans();
  for (let i = 0; i < 5; i++) await postSpans(r.url, p.key, 'svc', [marked('alpha'), marked('beta')]);
  assert.equal(await enqueuedSpans(), before, 'no span of a project without policies reaches the evaluator');
  assert.ok((await stored(p.id)) >= 11, 'the spans are stored all the same');

  // Created through the API on this replica: the cache is invalidated, the very next request counts.
  const viaApi = await p.api('POST', '/v1/policies', { name: 'marker', match_expression: 'attrs["marker"] == true', action: 'log' });
  await postSpans(r.url, p.key, 'svc', [marked('gamma')]);
  await waitFor('the API-created policy matches the next request', async () => (await matchCount(viaApi.id)) === 1);
  assert.ok((await enqueuedSpans()) > before);

  // Created by another replica (no invalidation here): picked up within the policy cache window.
  await p.api('DELETE', `/v1/policies/${viaApi.id}`);
  await waitFor('the project is known to have no policies again', async () => {
    const n = await enqueuedSpans();
    await postSpans(r.url, p.key, 'svc', [marked('alpha')]);
    return (await enqueuedSpans()) === n;
  });
  const elsewhere = (await r.pool.query<{ id: string }>(
    `INSERT INTO core.policies (project_id, name, match_expression, action) VALUES ($1, 'other replica', 'attrs["marker"] == true', 'log') RETURNING id`,
    [p.id])).rows[0].id;
  await waitFor('the policy created elsewhere matches', async () => {
    await postSpans(r.url, p.key, 'svc', [marked('delta')]);
    return (await matchCount(elsewhere)) > 0;
  });
});

test('shutdown evaluates what was committed last before the pool closes (SIGTERM / rolling deploy)', async () => {
  const url = await createTestDatabase();
  const own = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false' }, { databaseUrl: url });
  const p = await freshProject(own);
  const policy = await p.api('POST', '/v1/policies', { name: 'marker', match_expression: 'attrs["marker"] == true', action: 'log' });
  const n = 40;
  await postSpans(own.url, p.key, 'svc', Array.from({ length: n }, () => marked('late')));
  // Answered (committed); evaluation runs after the answer. Close at once, as a SIGTERM would.
  await own.close();
  const check = new pg.Pool({ connectionString: url, max: 1 });
  try {
    const after = await check.query('SELECT match_count FROM core.policies WHERE id = $1', [policy.id]);
    assert.equal(Number(after.rows[0].match_count), n, 'every committed span was evaluated before shutdown finished');
  } finally {
    await check.end();
  }
  assert.ok(!own.lines.some((l) => /"level":"(error|fatal)"/.test(l)), "no error logged during shutdown");
});
