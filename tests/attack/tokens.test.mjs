// Code and refresh replay and races (RFC 6749 §4.1.2, §10.5; OAuth 2.1
// §4.3.1 and RFC 9700 §4.14 refresh rotation with reuse detection), and
// token audience confusion (RFC 8707 §2; RFC 6749 §4.1.3, §6; RFC 7009
// §2.1; MCP authorization "Token Audience Binding"). Each refusal issues
// nothing: no access record, refresh token or grant appears.
import { before, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertTokenRejected, assertTokenWorks, assertTokens, authorizeCode, basic, internalCall, issueTokens, pkce, redeemForm,
  refreshRequest, registerClient, resourceOf, revokeRequest, tokenRequest,
} from '../e2e/oauth-helpers.mjs';
import {
  BASE, assertNothingIssued, assertOAuthError, assertUnchanged, attack, changesSince, request, snapshot,
} from './support/attack.mjs';
import { assertOAuthLimited, untilLimited } from './support/limits.mjs';
import { addStandInKey, completeKeyFlow, mcpAuthorizeUrl, mcpResourceOf } from '../e2e/key-flow.mjs';

let clientA;
let clientB;
before(async () => {
  clientA = await registerClient({ client_name: 'attack: client A' });
  clientB = await registerClient({ client_name: 'attack: client B' });
});

describe('code replay and races', () => {
  attack('TK-01', 'a code redeemed twice → 400 invalid_grant, and the first redemption\'s tokens are revoked', async () => {
    const grant = await authorizeCode(clientA);
    const first = assertTokens(await tokenRequest(redeemForm(clientA, grant)));
    const snap = await snapshot();
    assertOAuthError(await tokenRequest(redeemForm(clientA, grant)), 400, 'invalid_grant');
    const diff = changesSince(snap);
    assertNothingIssued(diff, 'replay');
    await assertTokenRejected(first.access_token, { label: 'after the replay' });
    assertOAuthError(await refreshRequest(clientA, first.refresh_token), 400, 'invalid_grant', 'refresh after the replay');
  });

  for (const [id, n] of [['TK-02', 2], ['TK-03', 6]]) {
    attack(id, `${n} concurrent redemptions of one code → at most one succeeds; one grant at most, the rest 400 invalid_grant`, async () => {
      const grant = await authorizeCode(clientA);
      const snap = await snapshot();
      const answers = await Promise.all(Array.from({ length: n }, () => tokenRequest(redeemForm(clientA, grant))));
      const ok = answers.filter((r) => r.status === 200);
      assert.ok(ok.length <= 1, `${ok.length} redemptions succeeded`);
      for (const r of answers.filter((a) => a.status !== 200)) assertOAuthError(r, 400, 'invalid_grant');
      const grants = changesSince(snap).added.filter((k) => /\/_cf_KV\/grant:/.test(k));
      assert.ok(grants.length <= 1, `grants created: ${grants.length}`);
      // A race is a replay: whatever the winner got does not outlive it.
      for (const r of ok) await assertTokenRejected(r.json.access_token, { label: 'the race winner' });
    });
  }

  attack('TK-04', 'client B redeems client A\'s code → 400 invalid_grant, nothing issued', async () => {
    const grant = await authorizeCode(clientA);
    const snap = await snapshot();
    assertOAuthError(await tokenRequest(redeemForm(clientB, grant)), 400, 'invalid_grant');
    await assertUnchanged(snap);
  });

  attack('TK-05', 'a code redeemed with another redirect_uri → 400 invalid_grant, nothing issued', async () => {
    const grant = await authorizeCode(clientA);
    const snap = await snapshot();
    assertOAuthError(await tokenRequest(redeemForm(clientA, { ...grant, redirectUri: 'http://127.0.0.1/other' })), 400, 'invalid_grant');
    await assertUnchanged(snap);
  });

  attack('TK-24', 'a used code replayed with a wrong verifier (a leaked code, no verifier) → 400 invalid_grant, nothing changed, the grant keeps working', async () => {
    const grant = await authorizeCode(clientA);
    const first = assertTokens(await tokenRequest(redeemForm(clientA, grant)));
    const snap = await snapshot();
    // Issue 10: only the holder of the verifier can end the grant by
    // replaying (RFC 9700 §4.5.3.1); a stranger with the code cannot.
    assertOAuthError(await tokenRequest(redeemForm(clientA, { ...grant, verifier: pkce().verifier })), 400, 'invalid_grant');
    await assertUnchanged(snap);
    await assertTokenWorks(first.access_token, { label: 'the owner after the stranger\'s replay' });
    assertTokens(await refreshRequest(clientA, first.refresh_token));
  });

  attack('TK-06', 'a made-up code → 400 invalid_grant, nothing stored', async () => {
    const snap = await snapshot();
    const grant = { code: `pmcp_ac_${'A'.repeat(43)}`, verifier: 'v'.repeat(43), redirectUri: clientA.redirect_uris[0] };
    assertOAuthError(await tokenRequest(redeemForm(clientA, grant)), 400, 'invalid_grant');
    await assertUnchanged(snap);
  });
});

describe('refresh replay and races', () => {
  // Issue 11 changed both cases: a rotated-out refresh token presented
  // again within 30 s, before the token issued for it was presented, is a
  // lost response's retry and gets the same pair (nothing new is minted).
  // Reuse detection starts once the new refresh token was presented.
  attack('TK-07', 'a rotated-out refresh token after its successor was used → 400 invalid_grant, and the whole grant is revoked (reuse detection)', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    const next = assertTokens(await refreshRequest(clientA, tokens.refresh_token));
    const current = assertTokens(await refreshRequest(clientA, next.refresh_token));
    const snap = await snapshot();
    assertOAuthError(await refreshRequest(clientA, tokens.refresh_token), 400, 'invalid_grant');
    assertNothingIssued(changesSince(snap), 'reuse');
    await assertTokenRejected(current.access_token, { label: 'the current access token after reuse' });
    assertOAuthError(await refreshRequest(clientA, current.refresh_token), 400, 'invalid_grant', 'the current refresh token after reuse');
  });

  attack('TK-08', '5 concurrent refreshes with one token → every success carries one identical pair; one chain lives on', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    const answers = await Promise.all(Array.from({ length: 5 }, () => refreshRequest(clientA, tokens.refresh_token)));
    const ok = answers.filter((r) => r.status === 200);
    for (const r of answers.filter((a) => a.status !== 200)) assertOAuthError(r, 400, 'invalid_grant');
    const pairs = new Set(ok.map((r) => `${r.json.access_token} ${r.json.refresh_token}`));
    assert.equal(pairs.size, 1, `${ok.length} successes carry ${pairs.size} different pairs`);
    const pair = ok[0].json;
    const next = assertTokens(await refreshRequest(clientA, pair.refresh_token));
    await assertTokenWorks(next.access_token, { label: 'the one chain continues' });
    assertOAuthError(await refreshRequest(clientA, tokens.refresh_token), 400, 'invalid_grant', 'the original, once its successor was used');
  });

  attack('TK-09', 'client B refreshes client A\'s refresh token → 400 invalid_grant, nothing stored', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    const snap = await snapshot();
    assertOAuthError(await refreshRequest(clientB, tokens.refresh_token), 400, 'invalid_grant');
    await assertUnchanged(snap);
    await assertTokenWorks(tokens.access_token, { label: 'A\'s token still works' });
  });

  attack('TK-10', 'an access token presented as a refresh token → 400 invalid_grant, nothing stored', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    const snap = await snapshot();
    assertOAuthError(await refreshRequest(clientA, tokens.access_token), 400, 'invalid_grant');
    await assertUnchanged(snap);
  });

  attack('TK-11', 'a revoked refresh token → 400 invalid_grant, nothing issued', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    assert.equal((await revokeRequest(clientA, tokens.refresh_token)).status, 200);
    const snap = await snapshot();
    assertOAuthError(await refreshRequest(clientA, tokens.refresh_token), 400, 'invalid_grant');
    await assertUnchanged(snap);
  });

  attack('TK-12', 'a refresh asking for a wider scope → 400 invalid_scope, nothing issued', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    const snap = await snapshot();
    assertOAuthError(await refreshRequest(clientA, tokens.refresh_token, { extra: { scope: 'mcp admin' } }), 400, 'invalid_scope');
    await assertUnchanged(snap);
  });
});

describe('audience confusion', () => {
  attack('TK-13', 'a refresh token as the bearer at /internal → 401 invalid_token', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    const snap = await snapshot();
    await assertTokenRejected(tokens.refresh_token, { label: 'refresh token as bearer' });
    await assertUnchanged(snap, '', { plausible: 0 });
  });

  attack('TK-14', 'an authorization code as the bearer at /internal → 401 invalid_token', async () => {
    const grant = await authorizeCode(clientA);
    const snap = await snapshot();
    await assertTokenRejected(grant.code, { label: 'code as bearer' });
    await assertUnchanged(snap);
  });

  for (const [id, name, resource] of [
    ['TK-15', 'the /mcp endpoint', `${BASE}/mcp`],
    ['TK-16', 'another server', 'https://evil.example/internal'],
    ['TK-17', '/internal on another port', `${new URL(BASE).protocol}//127.0.0.1:1/internal`],
    ['TK-18', '/internal with a fragment', `${resourceOf()}#x`],
  ]) {
    attack(id, `redeeming a code for ${name} (RFC 8707 §2) → 400 invalid_target, nothing issued`, async () => {
      const grant = await authorizeCode(clientA);
      const snap = await snapshot();
      assertOAuthError(await tokenRequest({ ...redeemForm(clientA, grant), resource }), 400, 'invalid_target', name);
      await assertUnchanged(snap, name);
    });
  }

  attack('TK-19', 'a refresh for another resource (RFC 8707 §2) → 400 invalid_target, nothing issued', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    const snap = await snapshot();
    assertOAuthError(await refreshRequest(clientA, tokens.refresh_token, { extra: { resource: `${BASE}/mcp` } }), 400, 'invalid_target');
    await assertUnchanged(snap);
  });

  attack('TK-20', 'client B revokes client A\'s tokens (RFC 7009 §2.1) → 200, and they keep working', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    const snap = await snapshot();
    assert.equal((await revokeRequest(clientB, tokens.refresh_token)).status, 200);
    assert.equal((await revokeRequest(clientB, tokens.access_token)).status, 200);
    await assertUnchanged(snap);
    await assertTokenWorks(tokens.access_token, { label: 'A\'s token after B\'s revocation' });
  });

  attack('TK-21', 'a confidential client\'s code redeemed with a wrong secret → 401 invalid_client, nothing issued', async () => {
    const conf = await registerClient({ client_name: 'attack: confidential', token_endpoint_auth_method: 'client_secret_basic' });
    const grant = await authorizeCode(conf);
    const snap = await snapshot();
    const form = redeemForm(conf, grant);
    delete form.client_id;
    const r = await tokenRequest(form, { auth: basic(conf.client_id, `${conf.client_secret}x`) });
    assertOAuthError(r, 401, 'invalid_client');
    assert.match(r.res.headers.get('www-authenticate') ?? '', /^Basic /);
    await assertUnchanged(snap);
  });

  attack('TK-22', 'a confidential client\'s code redeemed as a public client (no secret) → 401 invalid_client', async () => {
    const conf = await registerClient({ client_name: 'attack: confidential 2', token_endpoint_auth_method: 'client_secret_post' });
    const grant = await authorizeCode(conf);
    const snap = await snapshot();
    assertOAuthError(await tokenRequest(redeemForm(conf, grant)), 401, 'invalid_client');
    await assertUnchanged(snap);
  });

  attack('TK-23', 'an /internal access token sent to /mcp → 401 invalid_token, never forwarded to Plausible', async () => {
    const { tokens } = await issueTokens({ client: clientA });
    const snap = await snapshot();
    const r = await request(`${BASE}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25', authorization: `Bearer ${tokens.access_token}` },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'get_timeseries', arguments: { site_id: 'example.com', date_range: '2024-03-01,2024-03-07' } } }),
    });
    // Recognised as ours and refused: never forwarded to Plausible as a key.
    assertOAuthError(r, 401, 'invalid_token');
    await assertUnchanged(snap, '', { plausible: 0 });
  });
});

describe('scope escalation (issue 15)', () => {
  const PRM = `${BASE}/.well-known/oauth-protected-resource/internal`;
  const rpc = (id, name, args) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });
  const QUERY = ['get_breakdown', { site_id: 'example.com', date_range: '2024-03-01,2024-03-07', dimension: 'visit:source' }];
  const post = (token, body, version) => request(`${BASE}/internal`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`,
      ...(version ? { 'mcp-protocol-version': version } : {}),
    },
    body: JSON.stringify(body),
  });
  const assertStepUp = (r, label) => {
    assertOAuthError(r, 403, 'insufficient_scope', label);
    assert.equal(
      r.res.headers.get('www-authenticate'),
      `Bearer realm="plausible-mcp", resource_metadata="${PRM}", scope="sites:read stats:read", error="insufficient_scope", error_description="This call needs the stats:read scope"`,
      label,
    );
  };

  attack('TK-25', 'a sites:read token calling a query tool → 403 insufficient_scope naming sites:read stats:read, never forwarded to Plausible', async () => {
    const { tokens } = await issueTokens({ client: clientA, scope: 'sites:read' });
    const snap = await snapshot();
    for (const version of ['2025-06-18', '2025-11-25']) {
      assertStepUp(await post(tokens.access_token, rpc(1, ...QUERY), version), version);
    }
    await assertUnchanged(snap, '', { plausible: 0 });
  });

  attack('TK-26', 'a sites:read token hiding a query in a batch behind list_sites → 403, no element runs', async () => {
    const { tokens } = await issueTokens({ client: clientA, scope: 'sites:read' });
    const snap = await snapshot();
    // 2025-03-26 (no version header): the one revision with batches.
    const r = await post(tokens.access_token, [rpc(1, 'list_sites', {}), rpc(2, ...QUERY), rpc(3, 'list_sites', {})]);
    assertStepUp(r, 'batch');
    await assertUnchanged(snap, '', { plausible: 0 });
  });

  // The same on /mcp, for a grant made through the key form: the
  // person's Plausible key is in the grant, so a refused call that got
  // through would reach Plausible with it.
  const MCP_PRM = `${BASE}/.well-known/oauth-protected-resource/mcp`;
  const A_KEY = 'attack-scopes-key-5e1d';
  const postMcp = (token, body, version) => request(`${BASE}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`,
      ...(version ? { 'mcp-protocol-version': version } : {}),
    },
    body: JSON.stringify(body),
  });
  const assertMcpStepUp = (r, label) => {
    assertOAuthError(r, 403, 'insufficient_scope', label);
    assert.equal(
      r.res.headers.get('www-authenticate'),
      `Bearer realm="plausible-mcp", resource_metadata="${MCP_PRM}", scope="sites:read stats:read", error="insufficient_scope", error_description="This call needs the stats:read scope"`,
      label,
    );
  };
  /** A sites:read token for /mcp through the key form, with A_KEY. */
  async function keySitesRead() {
    await addStandInKey(A_KEY, ['example.com']);
    const { verifier, challenge } = pkce();
    const flow = await completeKeyFlow(mcpAuthorizeUrl(clientA, { challenge, scope: 'sites:read' }), { apiKey: A_KEY, sites: 'example.com' });
    const r = await tokenRequest({
      grant_type: 'authorization_code', client_id: clientA.client_id, code: flow.params.code,
      code_verifier: verifier, redirect_uri: clientA.redirect_uris[0], resource: mcpResourceOf(),
    });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.scope, 'sites:read');
    return r.json;
  }

  attack('TK-28', 'on /mcp, a key grant\'s sites:read token calling a query tool → 403 insufficient_scope toward /mcp\'s metadata, the key never sent to Plausible', async () => {
    const tokens = await keySitesRead();
    const snap = await snapshot();
    for (const version of ['2025-06-18', '2025-11-25']) {
      assertMcpStepUp(await postMcp(tokens.access_token, rpc(1, ...QUERY), version), version);
    }
    await assertUnchanged(snap, '', { plausible: 0 });
  });

  attack('TK-29', 'on /mcp, a key grant\'s sites:read token hiding a query in a batch behind list_sites → 403, no element runs', async () => {
    const tokens = await keySitesRead();
    const snap = await snapshot();
    const r = await postMcp(tokens.access_token, [rpc(1, 'list_sites', {}), rpc(2, ...QUERY), rpc(3, 'list_sites', {})]);
    assertMcpStepUp(r, 'batch');
    await assertUnchanged(snap, '', { plausible: 0 });
  });

  attack('TK-27', 'a refresh widening a sites:read grant (to stats:read or the mcp umbrella) → 400 invalid_scope, nothing issued', async () => {
    const { tokens } = await issueTokens({ client: clientA, scope: 'sites:read' });
    const snap = await snapshot();
    for (const scope of ['mcp', 'stats:read', 'sites:read stats:read']) {
      assertOAuthError(await refreshRequest(clientA, tokens.refresh_token, { extra: { scope } }), 400, 'invalid_scope', scope);
    }
    await assertUnchanged(snap);
  });
});

// Last in the suite's last file: every refresh arms its grant's alarm to
// forget the sealed previous pair after the rotation grace (30 s), a
// change to the store no later case should see in its snapshot diff.
describe('rate limits: refreshes per grant (LIMIT_REFRESHES)', () => {
  attack('RL-07', 'one grant refreshing beyond the limit → 429; the limited refresh rotates nothing', async () => {
    const { client, tokens } = await issueTokens();
    let refresh = tokens.refresh_token;
    const { r } = await untilLimited('LIMIT_REFRESHES', async () => {
      const got = await refreshRequest(client, refresh);
      if (got.status === 200) refresh = got.json.refresh_token;
      else assert.equal(got.status, 429, got.text);
      return { ...got, headers: got.res.headers };
    });
    assertOAuthLimited(r, 'LIMIT_REFRESHES', 'rl-07');
    const snap = await snapshot();
    const again = await refreshRequest(client, refresh);
    assertOAuthLimited({ ...again, headers: again.res.headers }, 'LIMIT_REFRESHES', 'again');
    // No new pair, the current refresh token not spent or revoked.
    await assertUnchanged(snap, 'rl-07');
    // Another grant (another client: a grant is a (client, user) pair)
    // refreshes as usual.
    const other = await issueTokens();
    const fresh = await refreshRequest(other.client, other.tokens.refresh_token);
    assert.equal(fresh.status, 200, fresh.text);
  });
});
