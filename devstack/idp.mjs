// A local OpenID provider standing in for Cloudflare Access for SaaS, for
// `npm run dev` and the end-to-end tests. It is the real `oidc-provider`
// package configured the way Access behaves: RS256 ID tokens that carry
// the `email` claim, authorization code flow with PKCE required, client
// secret authentication. Its login page takes any email address.
import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:26rem;margin:4rem auto;padding:0 1rem}
input,button{font:inherit;padding:.5rem;width:100%;box-sizing:border-box;margin:.25rem 0}
button{background:#f38020;color:#fff;border:0;border-radius:.3rem}</style></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;
}

/**
 * @param {object} opts
 * @param {number} [opts.port] 0 = any free port
 * @param {string} opts.clientId
 * @param {string} opts.clientSecret
 * @param {() => string[]} opts.redirectUris called once the worker's URL is known
 */
export async function startIdp({ port = 0, clientId, clientSecret, redirectUris }) {
  const server = createServer();
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = { ...privateKey.export({ format: 'jwk' }), kid: `local-${randomBytes(4).toString('hex')}`, alg: 'RS256', use: 'sig' };

  const provider = new Provider(issuer, {
    clients: [{
      client_id: clientId,
      client_secret: clientSecret,
      redirect_uris: redirectUris(),
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [jwk] },
    pkce: { required: () => true },
    scopes: ['openid', 'email', 'profile'],
    claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
    // Access puts the email in the ID token itself.
    conformIdTokenClaims: false,
    features: { devInteractions: { enabled: false } },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return { sub: id, email: id, email_verified: true, name: id.split('@')[0] };
        },
      };
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Sign-in error', `<p>${escape(out.error)}: ${escape(out.error_description ?? '')}</p>`);
    },
  });
  provider.proxy = false;
  const callback = provider.callback();

  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    const url = new URL(req.url, issuer);
    if (details.prompt.name === 'login' && req.method === 'GET') {
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.end(page('Sign in (local identity provider)', `
<p>This stands in for Cloudflare Access. Any email address signs in.</p>
<form method="post" action="/interaction/${escape(details.uid)}/login">
<input name="email" type="email" placeholder="you@example.com" required autofocus>
<button type="submit">Sign in</button></form>`));
      return;
    }
    if (url.pathname.endsWith('/login') && req.method === 'POST') {
      const body = await new Promise((resolve) => { let b = ''; req.on('data', (d) => (b += d)); req.on('end', () => resolve(b)); });
      const email = new URLSearchParams(body).get('email')?.trim();
      if (!email) { res.statusCode = 400; res.end('email required'); return; }
      await provider.interactionFinished(req, res, { login: { accountId: email } }, { mergeWithLastSubmission: false });
      return;
    }
    if (details.prompt.name === 'consent') {
      // Access does not ask users to consent to the app; grant what was asked.
      const grant = details.grantId ? await provider.Grant.find(details.grantId) : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
      if (details.prompt.details.missingOIDCScope) grant.addOIDCScope(details.prompt.details.missingOIDCScope.join(' '));
      if (details.prompt.details.missingOIDCClaims) grant.addOIDCClaims(details.prompt.details.missingOIDCClaims);
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      return;
    }
    res.statusCode = 400;
    res.end('unexpected interaction');
  }

  server.on('request', (req, res) => {
    if (req.url.startsWith('/interaction/')) {
      interaction(req, res).catch((err) => { res.statusCode = 500; res.end(String(err.message)); });
    } else {
      callback(req, res);
    }
  });
  return {
    issuer,
    close: () => new Promise((resolve) => { server.closeAllConnections?.(); server.close(() => resolve()); }),
  };
}
