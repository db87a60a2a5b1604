// A rogue OpenID provider for the negative login tests: the real IdP
// (devstack/idp.mjs) only ever mints correct ID tokens, so this one mints
// whatever a scenario asks for. It is a plain node:http server on
// 127.0.0.1 with just enough OpenID Connect for the worker to use it:
//
//   GET  /.well-known/openid-configuration  discovery (OIDC Discovery §3)
//   GET  /jwks                              one RS256 key it generated
//   GET  /authorize                         answers at once: a redirect to
//        redirect_uri with code=<scenario>.<random> and the given state
//        (or error=<e> for the upstream-error:<e> scenarios). The
//        scenario and the email come from extra query parameters the
//        test appends (`scenario`, `email`, and `clock_offset`: seconds
//        the ID token's times run ahead, for a worker whose clock the
//        test build's X-Test-Clock-Offset moved as far); the nonce and
//        PKCE challenge the worker sent are remembered with the code.
//   POST /token                             checks client_secret_basic,
//        redirect_uri and PKCE like a real provider, then returns the ID
//        token crafted for the code's scenario, with the remembered nonce.
import { createServer } from 'node:http';
import { createHash, createHmac, generateKeyPairSync, randomBytes, sign } from 'node:crypto';

const b64u = (data) => Buffer.from(data).toString('base64url');

/** A compact JWS: header.payload.signature, `signer` given the signing input. */
export function compactJws(header, claims, signer) {
  const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
  return `${input}.${signer(input)}`;
}

export const rs256 = (privateKey) => (input) => b64u(sign('sha256', Buffer.from(input), privateKey));
export const hs256 = (secret) => (input) => b64u(createHmac('sha256', secret).update(input).digest());

function readBody(req) {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d) => (body += d));
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/**
 * @param {object} opts
 * @param {string} opts.clientId the worker's client id here (ACCESS_CLIENT_ID)
 * @param {string} opts.clientSecret its secret (ACCESS_CLIENT_SECRET)
 */
export async function startRogueIdp({ clientId, clientSecret }) {
  const server = createServer();
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = server.address().port;
  const issuer = `http://127.0.0.1:${port}`;

  const signing = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const kid = `rogue-${randomBytes(4).toString('hex')}`;
  const publicJwk = { ...signing.publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
  const publicPem = signing.publicKey.export({ format: 'pem', type: 'spki' });

  /** code → what the authorization request carried. */
  const codes = new Map();
  /** Every request to /token, for assertions. */
  const tokenRequests = [];
  /** Every request to /authorize, for assertions. */
  const authorizeRequests = [];
  /**
   * Every request this provider received, in order ({ method, path,
   * refused? }), also served as JSON at GET /__log for tests in another
   * process (the attack suite's upstream log).
   */
  const requests = [];

  function idToken(scenario, grant) {
    const now = Math.floor(Date.now() / 1000) + (grant.clockOffset ?? 0);
    const claims = {
      iss: issuer,
      sub: `rogue|${grant.email}`,
      aud: clientId,
      exp: now + 300,
      iat: now,
      nonce: grant.nonce,
      email: grant.email,
      email_verified: true,
    };
    let header = { alg: 'RS256', typ: 'JWT', kid };
    let signer = rs256(signing.privateKey);
    switch (scenario.startsWith('unknown-kid:') ? 'unknown-kid:*' : scenario) {
      case 'good': break;
      case 'alg-none': header = { alg: 'none', typ: 'JWT', kid }; signer = () => ''; break;
      // The classic confusion: HMAC keyed with the provider's public key.
      case 'alg-hs256': header = { alg: 'HS256', typ: 'JWT', kid }; signer = hs256(publicPem); break;
      // A correct RS256 signature under a header that names another algorithm.
      case 'alg-rs512-label': header = { alg: 'RS512', typ: 'JWT', kid }; break;
      // Our kid, someone else's key.
      case 'wrong-key': signer = rs256(other.privateKey); break;
      case 'unknown-kid': header = { ...header, kid: 'not-in-the-jwks' }; signer = rs256(other.privateKey); break;
      // unknown-kid:<label>: a kid of the caller's choosing, so a flood
      // can name a different unknown key every time.
      case 'unknown-kid:*': header = { ...header, kid: `unknown-${scenario.slice('unknown-kid:'.length)}` }; signer = rs256(other.privateKey); break;
      case 'wrong-issuer': claims.iss = 'https://evil.example'; break;
      case 'wrong-audience': claims.aud = 'some-other-client'; break;
      case 'extra-audience-without-azp': claims.aud = [clientId, 'some-other-client']; break;
      case 'wrong-azp': claims.azp = 'some-other-client'; break;
      case 'wrong-nonce': claims.nonce = b64u(randomBytes(32)); break;
      case 'no-nonce': delete claims.nonce; break;
      case 'expired': claims.exp = now - 3600; claims.iat = now - 7200; break;
      case 'not-yet-valid': claims.nbf = now + 3600; break;
      case 'issued-in-future': claims.iat = now + 3600; claims.exp = now + 7200; break;
      case 'no-iat': delete claims.iat; break;
      case 'no-exp': delete claims.exp; break;
      case 'unverified-email': claims.email_verified = false; break;
      case 'no-email': delete claims.email; delete claims.email_verified; break;
      default: throw new Error(`unknown scenario ${scenario}`);
    }
    return compactJws(header, claims, signer);
  }

  const json = (res, status, body) => {
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'no-store');
    res.end(JSON.stringify(body));
  };

  async function handle(req, res) {
    const url = new URL(req.url, issuer);
    if (req.method === 'GET' && url.pathname === '/__log') return json(res, 200, { requests });
    requests.push({ method: req.method, path: url.pathname });
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic'],
        code_challenge_methods_supported: ['S256'],
        scopes_supported: ['openid', 'email', 'profile'],
      });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') {
      return json(res, 200, { keys: [publicJwk] });
    }
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const q = Object.fromEntries(url.searchParams);
      authorizeRequests.push(q);
      const scenario = q.scenario ?? 'good';
      const back = new URL(q.redirect_uri);
      if (scenario.startsWith('upstream-error:')) {
        back.searchParams.set('error', scenario.slice('upstream-error:'.length));
        back.searchParams.set('error_description', 'the rogue provider says no');
      } else {
        const code = `${scenario}.${b64u(randomBytes(16))}`;
        codes.set(code, {
          scenario,
          email: q.email ?? 'alice@example.com',
          clockOffset: Number(q.clock_offset ?? 0),
          nonce: q.nonce,
          challenge: q.code_challenge,
          challengeMethod: q.code_challenge_method,
          redirectUri: q.redirect_uri,
          clientId: q.client_id,
          used: false,
        });
        back.searchParams.set('code', code);
      }
      if (q.state !== undefined) back.searchParams.set('state', q.state);
      res.statusCode = 302;
      res.setHeader('location', back.toString());
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      const form = Object.fromEntries(new URLSearchParams(await readBody(req)));
      const entry = { headers: req.headers, form };
      tokenRequests.push(entry);
      // RFC 6749 §2.3.1: each part form-urlencoded, then base64.
      const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
      const pair = basic ? Buffer.from(basic[1], 'base64').toString('utf8') : '';
      const colon = pair.indexOf(':');
      const formDecode = (s) => decodeURIComponent(s.replace(/\+/g, ' '));
      let presented = null;
      try { presented = colon > 0 ? [formDecode(pair.slice(0, colon)), formDecode(pair.slice(colon + 1))] : null; } catch { /* bad escape */ }
      entry.presented = presented;
      requests[requests.length - 1].token = entry;
      if (!presented || presented[0] !== clientId || presented[1] !== clientSecret) {
        entry.refused = 'client authentication';
        return json(res, 401, { error: 'invalid_client' });
      }
      const grant = codes.get(form.code);
      const s256 = (v) => createHash('sha256').update(v ?? '').digest('base64url');
      const refuse = (why) => { entry.refused = why; return json(res, 400, { error: 'invalid_grant', error_description: why }); };
      if (form.grant_type !== 'authorization_code') return refuse('grant_type');
      if (!grant || grant.used) return refuse('unknown or used code');
      grant.used = true;
      if (grant.clientId !== clientId) return refuse('client_id of the authorization request');
      if (form.redirect_uri !== grant.redirectUri) return refuse('redirect_uri');
      if (grant.challengeMethod !== 'S256' || s256(form.code_verifier) !== grant.challenge) return refuse('PKCE');
      if (grant.scenario === 'token-endpoint-500') {
        entry.refused = 'scenario';
        res.statusCode = 500;
        return res.end('internal error');
      }
      if (grant.scenario === 'no-id-token') {
        return json(res, 200, { access_token: 'rogue-access', token_type: 'Bearer', expires_in: 300 });
      }
      entry.scenario = grant.scenario;
      return json(res, 200, {
        access_token: 'rogue-access',
        token_type: 'Bearer',
        expires_in: 300,
        id_token: idToken(grant.scenario, grant),
      });
    }
    res.statusCode = 404;
    res.end('not found');
  }

  server.on('request', (req, res) => {
    handle(req, res).catch((err) => {
      res.statusCode = 500;
      res.end(String(err?.message ?? err));
    });
  });

  return {
    issuer,
    clientId,
    clientSecret,
    kid,
    tokenRequests,
    authorizeRequests,
    requests,
    /** Stops answering: the port is closed and open connections dropped. */
    close: () => new Promise((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
    get listening() { return server.listening; },
  };
}
