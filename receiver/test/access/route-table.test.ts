// The route-table walk (SPEC §6.1, §7.3 last paragraph): every route the receiver serves is taken
// from its route table (`r.routes`) — routes added later are covered without touching this file —
// and for each route that needs auth the walk proves:
//   1. no credential                          → 401
//   2. a credential lacking the scope/role    → 403 (a key holding every other scope; for role
//      routes a `*` key; a viewer session wherever a viewer lacks the permission)
//   3. a credential of another project        → 404 when the path names an object of this project;
//      on routes without an object it is served its own project's data (not 5xx, not refused)
//      and no list leaks this project's ids.
// Path parameters are filled by kind (PARAMS below); a kind the walk cannot fill fails the test
// with a message saying where to add it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { ALL_SCOPES, createApiKey } from '../../src/auth/keys.js';
import { ROLES, roleRank, scopesForRole } from '../../src/auth/principal.js';
import type { Route } from '../../src/api/routes.js';
import { DEFAULT_PROJECT_ID, hex, makeKey, makeProject, startTestReceiver } from '../helpers.js';
import { call, makeUser, type Reply } from './fixtures.js';

// Fully configured (MFA needs the encryption key), and no rate limit: the walk sends many requests.
const r = await startTestReceiver({ STRATHON_RATE_LIMIT_ENABLED: 'false', STRATHON_ENCRYPTION_KEY: randomBytes(32).toString('base64url') });
const A = DEFAULT_PROJECT_ID;

// ---- objects of project A, and a second project B -----------------------------------------------
const keyOfA = await createApiKey(r.pool, { projectId: A, name: 'walk object', scopes: ['traces:read'] });
const traceOfA = hex(16);
{
  const now = BigInt(Date.now()) * 1_000_000n;
  const span = { traceId: traceOfA, spanId: hex(8), name: 'walk', kind: 1, startTimeUnixNano: now.toString(), endTimeUnixNano: (now + 1000n).toString() };
  const res = await call(r.url, 'POST', '/v1/traces', r.key, { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: [span] }] }] });
  assert.equal(res.status, 200, res.text);
}
const memberOfA = await makeUser(r.pool, A, 'operator');
const viewerOfA = await makeUser(r.pool, A, 'viewer');
const ownerOfA = await makeUser(r.pool, A, 'owner');
const B = await makeProject(r.pool);
/** Nothing of A may appear in what B is served. */
const idsOfA = [A, keyOfA.id, keyOfA.prefix, traceOfA, memberOfA.userId, viewerOfA.userId, ownerOfA.userId];

// ---- path parameters ----------------------------------------------------------------------------
type ObjectKind = 'real' | 'placeholder' | 'none';
interface Fill { value: string; object: ObjectKind }

/** `:id` by the resource it follows: real objects of A where the walk knows the resource. */
const ID_OBJECTS: Record<string, string> = { api_keys: keyOfA.id, projects: A };

/** Path parameter kinds by name. A new kind → add it here (a real object of A if it is one). */
const PARAMS: Record<string, (resource: string) => Fill> = {
  trace_id: () => ({ value: traceOfA, object: 'real' }),
  user_id: () => ({ value: memberOfA.userId, object: 'real' }),
  // A model name is a price-table key, not an object owned by a project.
  model: () => ({ value: 'gpt-4o', object: 'none' }),
  id: (resource) => {
    const real = ID_OBJECTS[resource];
    return real ? { value: real, object: 'real' } : { value: randomUUID(), object: 'placeholder' };
  },
};

function fillPath(route: Route): { path: string; object: ObjectKind } {
  if (/[*{}()]/.test(route.path)) assert.fail(`${route.method} ${route.path}: wildcard/optional path syntax; the route-table walk cannot fill it — extend fillPath in receiver/test/access/route-table.test.ts`);
  const segments = route.path.split('/');
  const kinds: ObjectKind[] = [];
  const path = segments.map((seg, i) => {
    if (!seg.startsWith(':')) return seg;
    const name = seg.slice(1);
    const filler = PARAMS[name];
    if (!filler) {
      assert.fail(`${route.method} ${route.path}: path parameter :${name} is a kind the route-table walk cannot fill — add it to PARAMS in receiver/test/access/route-table.test.ts (a real object of the project if it names one)`);
    }
    const f = filler(segments[i - 1] ?? '');
    kinds.push(f.object);
    return encodeURIComponent(f.value);
  }).join('/');
  const object: ObjectKind = kinds.includes('real') ? 'real' : kinds.includes('placeholder') ? 'placeholder' : 'none';
  return { path, object };
}

// ---- credentials --------------------------------------------------------------------------------
const lacking = new Map<string, string>();
/** A key of A holding every scope except `scope`. */
async function keyWithout(scope: string): Promise<string> {
  let k = lacking.get(scope);
  if (!k) {
    k = await makeKey(r.pool, ALL_SCOPES.filter((s) => s !== scope));
    lacking.set(scope, k);
  }
  return k;
}

function send(route: Route, path: string, credential?: string): Promise<Reply> {
  // Every body route gets `{}` (JSON; OTLP/JSON for the raw ingest route); GET/DELETE none.
  const body = route.body === 'none' ? undefined : {};
  return call(r.url, route.method, path, credential, body);
}

const describe = (route: Route, res: Reply) => `${route.method} ${route.path} → ${res.status} ${res.text.slice(0, 300)}`;

// ---- the walk -----------------------------------------------------------------------------------

test('every route declares its auth; no route is declared twice; public routes are the known ones', () => {
  assert.ok(r.routes.length > 0);
  const seen = new Set<string>();
  for (const route of r.routes) {
    const id = `${route.method} ${route.path}`;
    assert.ok(!seen.has(id), `${id} is declared twice (the second declaration would be dead)`);
    seen.add(id);
    switch (route.auth.kind) {
      case 'none': assert.ok(/^\/(health|ready|metrics)$|^\/v1\/auth\//.test(route.path), `${id} is public (auth none): only /health, /ready, /metrics and /v1/auth/* may be`); break;
      case 'scope': assert.ok((ALL_SCOPES as readonly string[]).includes(route.auth.scope), `${id} needs unknown scope ${route.auth.scope}`); break;
      case 'role': assert.ok(ROLES.includes(route.auth.role), `${id} needs unknown role ${route.auth.role}`); break;
      case 'any': break;
      default: assert.fail(`${id} has an undeclared auth kind ${JSON.stringify(route.auth)}`);
    }
  }
});

test('an undeclared path is a 404, with or without a credential', async () => {
  for (const [method, cred] of [['GET', undefined], ['GET', r.key], ['POST', r.key], ['DELETE', r.key]] as const) {
    const res = await call(r.url, method, '/v1/not-a-route', cred, method === 'POST' ? {} : undefined);
    assert.equal(res.status, 404, `${method} /v1/not-a-route`);
  }
  assert.equal((await call(r.url, 'GET', '/v1/api_keys/x/y/z', r.key)).status, 404);
});

test('walk the route table: 401 without credential, 403 without the permission, 404 across projects', async (t) => {
  const tally = { checked: 0, public: 0, real: 0, placeholder: 0, none: 0 };
  for (const route of r.routes) {
    if (route.auth.kind === 'none') {
      tally.public++;
      continue;
    }
    const auth = route.auth;
    await t.test(`${route.method} ${route.path} (${auth.kind === 'scope' ? auth.scope : auth.kind === 'role' ? `role ${auth.role}` : 'any'})`, async () => {
      const { path, object } = fillPath(route);
      tally[object]++;

      // 1. No credential.
      const anon = await send(route, path);
      assert.equal(anon.status, 401, `no credential: ${describe(route, anon)}`);

      // 2. A credential without the permission.
      if (auth.kind === 'scope') {
        const res = await send(route, path, await keyWithout(auth.scope));
        assert.equal(res.status, 403, `key lacking ${auth.scope}: ${describe(route, res)}`);
        if (route.body !== 'raw' && !scopesForRole('viewer').includes(auth.scope)) {
          const v = await send(route, path, viewerOfA.token);
          assert.equal(v.status, 403, `viewer session: ${describe(route, v)}`);
          assert.match(String(v.body?.detail), /^requires role /);
        }
      } else if (auth.kind === 'role') {
        const k = await send(route, path, r.key);
        assert.equal(k.status, 403, `a * key on a role route: ${describe(route, k)}`);
        if (roleRank(auth.role) > roleRank('viewer')) {
          const v = await send(route, path, viewerOfA.token);
          assert.equal(v.status, 403, `viewer session: ${describe(route, v)}`);
          assert.equal(v.body?.detail, `requires role ${auth.role}`);
        }
      }

      // 3. A fresh credential of project B (a * key; an owner's session where only users may go);
      //    fresh, so a route that ends its caller's session (logout) cannot affect the next one.
      const other = auth.kind === 'role' ? (await makeUser(r.pool, B, 'owner')).token : await makeKey(r.pool, ['*'], B);
      const res = await send(route, path, other);
      assert.ok(res.status < 500, `another project: ${describe(route, res)}`);
      if (object === 'real') {
        assert.equal(res.status, 404, `another project, object of this project: ${describe(route, res)}`);
        if (route.method === 'GET') {
          // The object exists: this project's own credential reaches it.
          const mine = await send(route, path, auth.kind === 'role' ? ownerOfA.token : r.key);
          assert.equal(mine.status, 200, `own project: ${describe(route, mine)}`);
        }
      } else if (object === 'placeholder') {
        assert.ok([404, 422].includes(res.status), `another project, unknown object: ${describe(route, res)}`);
      } else {
        assert.ok(res.status !== 401 && res.status !== 403, `another project on its own data is not refused: ${describe(route, res)}`);
        if (route.method === 'GET') {
          assert.ok(res.status >= 200 && res.status < 300, `another project, own list: ${describe(route, res)}`);
          for (const id of idsOfA) assert.ok(!res.text.includes(id), `${route.method} ${route.path} served to project B contains ${id} of project A`);
        }
      }
      tally.checked++;
    });
  }
  console.log(`checked ${tally.checked} routes (${tally.real} naming an object of the project, ${tally.placeholder} with a placeholder id, ${tally.none} without an object; ${tally.public} public routes skipped)`);
  assert.equal(tally.checked, r.routes.filter((x) => x.auth.kind !== 'none').length, 'every authenticated route was checked');
});
