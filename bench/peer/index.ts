// The peer of the benchmark: the usual TypeScript stack on the same
// runtime, `@cloudflare/workers-oauth-provider` guarding `/internal` with
// KV-backed tokens, and an MCP handler that answers `tools/list` with the
// byte-identical body our worker sends (the bench captures it at start and
// binds it as TOOLS_LIST_BODY, so the two stay identical as our tool list
// changes). Lifetimes match ours: access tokens 1 h, refresh tokens 24 h
// (sliding, rotated), grants end 7 days after sign-in.
//
// `/authorize` approves at once for a fixed user: the peer has no upstream
// sign-in, so its authorization flow is only a way for the bench to get a
// real token, not a figure to compare with ours.
import { OAuthProvider, type OAuthHelpers } from '@cloudflare/workers-oauth-provider';
import { answerToolsList } from './mcp.ts';

interface Env {
  OAUTH_KV: KVNamespace;
  OAUTH_PROVIDER: OAuthHelpers;
  /** This worker's own origin on its direct socket, e.g. http://127.0.0.1:41234 */
  ORIGIN: string;
  TOOLS_LIST_BODY: string;
}

const apiHandler = {
  fetch(request: Request, env: Env): Promise<Response> {
    return answerToolsList(request, env.TOOLS_LIST_BODY);
  },
};

const defaultHandler = {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (new URL(request.url).pathname !== '/authorize') return new Response('not found', { status: 404 });
    const authRequest = await env.OAUTH_PROVIDER.parseAuthRequest(request);
    const { redirectTo } = await env.OAUTH_PROVIDER.completeAuthorization({
      request: authRequest,
      userId: 'bench-user',
      metadata: {},
      scope: authRequest.scope,
      props: { email: 'bench@example.com' },
    });
    return Response.redirect(redirectTo, 302);
  },
};

// The resource URL is this socket's origin, known only from env, so the
// provider is built on the first request and kept for the isolate's life.
let provider: OAuthProvider<Env> | undefined;

export default {
  fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    provider ??= new OAuthProvider<Env>({
      apiRoute: '/internal',
      apiHandler,
      defaultHandler,
      authorizeEndpoint: '/authorize',
      tokenEndpoint: '/token',
      clientRegistrationEndpoint: '/register',
      scopesSupported: ['mcp'],
      resourceMetadata: { resource: `${env.ORIGIN}/internal`, authorization_servers: [env.ORIGIN] },
      accessTokenTTL: 3600,
      refreshTokenTTL: 7 * 24 * 3600,
      refreshTokenIdleTTL: 24 * 3600,
      // The library logs every refused token by default; ours logs none,
      // and a log line per request would make the peer slower than it is.
      onError: () => undefined,
    });
    return provider.fetch(request, env, ctx);
  },
};
