// The one OAuthClientProvider (SDK 1.32, client/auth.d.ts) base of the
// end-to-end tests: a public client that keeps what the SDK hands over,
// for assertions. Subclasses say how the authorization URL is visited
// (`redirectToAuthorization`): fetched headlessly, or opened in a browser.
import { randomBytes } from 'node:crypto';

export class TestOAuthProvider {
  constructor({ redirectUrl, clientMetadataUrl, clientName = 'e2e sdk client' }) {
    this._redirectUrl = redirectUrl;
    if (clientMetadataUrl) this.clientMetadataUrl = clientMetadataUrl;
    this.clientName = clientName;
    this._client = undefined;
    this._tokens = undefined;
    this._verifier = undefined;
    this.savedClients = [];
    this.savedTokens = [];
    this.savedVerifiers = [];
    this.states = [];
    this.invalidations = [];
  }

  get redirectUrl() { return this._redirectUrl; }

  get clientMetadata() {
    return {
      client_name: this.clientName,
      redirect_uris: [this._redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }

  state() {
    const s = randomBytes(12).toString('base64url');
    this.states.push(s);
    return s;
  }

  clientInformation() { return this._client; }
  saveClientInformation(info) { this.savedClients.push(info); this._client = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this.savedTokens.push(tokens); this._tokens = tokens; }
  /** Replaces the stored tokens (to make the SDK refresh). */
  setTokens(tokens) { this._tokens = tokens; }
  saveCodeVerifier(v) { this.savedVerifiers.push(v); this._verifier = v; }
  codeVerifier() { return this._verifier; }

  invalidateCredentials(scope) {
    this.invalidations.push(scope);
    if (scope === 'all' || scope === 'tokens') this._tokens = undefined;
    if (scope === 'all' || scope === 'client') this._client = undefined;
    if (scope === 'all' || scope === 'verifier') this._verifier = undefined;
  }

  // eslint-disable-next-line class-methods-use-this
  async redirectToAuthorization() {
    throw new Error('a TestOAuthProvider subclass says how the authorization URL is visited');
  }
}
