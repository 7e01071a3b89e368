// A certified OpenID Connect provider (node-oidc-provider) set up as an office's identity
// provider for Akte: the tests start it, and a person can start it to try Akte's oidc mode
// (bin/oidc-provider). Not for production: accounts, client secret and keys live here.
//
// What it issues, as Keycloak does with deploy/keycloak/akte-realm.json:
// * access tokens as JWTs (RS256) for the resource `urn:akte`, audience `akte`
//   (AKTE_OIDC_AUDIENCE), with the claims Akte reads: `sub`, `roles`, `office`;
// * client `akte-staff`: people, authorization code with PKCE (S256), public client; its
//   redirect URIs (env STAFF_REDIRECT_URIS, comma-separated) are Akte's /docs sign-in
//   window on the default port and a callback the tests read the code off; the browser
//   redeems the code itself, so the token endpoint answers CORS requests from the
//   origins of these URIs (as Keycloak's web origin `+` does);
// * client `akte-intake`: a machine, client credentials, its roles set below.
//
// Listens on 127.0.0.1 (env LISTEN_HOST; port: env PORT, 0 = any free one) and prints one
// line of JSON, {"issuer": ...}, once it answers; env ISSUER overrides the issuer URL. With AKTE_TEST_PROVIDER_CONTROL=1 it also offers, for
// tests only: POST /-/rotate (a new signing key, published first and used from now on),
// POST /-/retire (publish only the newest key), POST /-/clock?offset=SECONDS (the
// provider's clock runs that far off, to issue tokens that have already expired).

import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const HOST = process.env.LISTEN_HOST || '127.0.0.1';
const RESOURCE = 'urn:akte';
const SCOPE = 'akte';
const AUDIENCE = process.env.AKTE_OIDC_AUDIENCE || 'akte';
const OFFICE = process.env.AKTE_OFFICE || 'abh-musterstadt';
const ACCESS_TOKEN_TTL = Number(process.env.ACCESS_TOKEN_TTL_SECONDS || 300);
const STAFF_REDIRECT_URIS = (
  process.env.STAFF_REDIRECT_URIS ||
  [
    'http://127.0.0.1/callback',
    'http://127.0.0.1:8000/docs/oauth2-redirect',
    'http://localhost:8000/docs/oauth2-redirect',
  ].join(',')
)
  .split(',')
  .filter(Boolean);
const INTAKE_SECRET = process.env.INTAKE_CLIENT_SECRET || 'intake-secret-for-tests-only';
const CONTROL = process.env.AKTE_TEST_PROVIDER_CONTROL === '1';

// People: the demo users of Akte's local issuer (adapters/http/auth/local_issuer.py).
const ACCOUNTS = {
  'sb-01': { roles: ['caseworker'], office: OFFICE },
  'sb-02': { roles: ['caseworker'], office: OFFICE },
  'tl-01': { roles: ['team_lead'], office: OFFICE },
  'au-01': { roles: ['auditor'], office: OFFICE },
  'ho-01': { roles: ['head_of_office'], office: OFFICE },
  'dsb-01': { roles: ['data_protection_officer'], office: OFFICE },
  'sb-91': { roles: ['caseworker'], office: 'abh-nachbarstadt' },
};
// Machines: the `sub` of their tokens is the client id.
const CLIENT_ACCESS = {
  'akte-intake': { roles: ['caseworker'], office: OFFICE },
};

// The clock, shifted by /-/clock; every time the provider reads goes through Date.now.
const realNow = Date.now.bind(Date);
let clockOffsetMs = 0;
Date.now = () => realNow() + clockOffsetMs;

function newSigningKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
}

// The first key signs; all are published.
let signingKeys = [newSigningKey()];
const cookieKeys = [randomUUID(), randomUUID()];

function configuration() {
  return {
    clients: [
      {
        client_id: 'akte-staff',
        token_endpoint_auth_method: 'none',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: STAFF_REDIRECT_URIS,
        scope: `openid profile offline_access ${SCOPE}`,
      },
      {
        client_id: 'akte-intake',
        client_secret: INTAKE_SECRET,
        token_endpoint_auth_method: 'client_secret_basic',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        scope: SCOPE,
      },
    ],
    jwks: { keys: signingKeys },
    cookies: { keys: cookieKeys },
    // A browser may call the token endpoint from the origin of a registered redirect URI
    // of the client (Akte's /docs), from nowhere else.
    clientBasedCORS(ctx, origin, client) {
      return client.redirectUris.some((uri) => new URL(uri).origin === origin);
    },
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'offline_access', SCOPE],
    claims: { openid: ['sub'], profile: ['office', 'roles'] },
    ttl: { AccessToken: ACCESS_TOKEN_TTL, ClientCredentials: ACCESS_TOKEN_TTL },
    async findAccount(ctx, id) {
      const account = ACCOUNTS[id];
      if (!account) return undefined;
      return { accountId: id, claims: async () => ({ sub: id, ...account }) };
    },
    features: {
      devInteractions: { enabled: true },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: async () => RESOURCE,
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator) => {
          if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
          return {
            scope: SCOPE,
            audience: AUDIENCE,
            accessTokenTTL: ACCESS_TOKEN_TTL,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    async extraTokenClaims(ctx, token) {
      // The claims Akte maps: `roles` (its role names) and `office`.
      const access = token.accountId ? ACCOUNTS[token.accountId] : CLIENT_ACCESS[token.clientId];
      return access ? { roles: access.roles, office: access.office } : undefined;
    },
  };
}

const server = createServer();
server.listen(Number(process.env.PORT || 0), HOST, () => {
  // ISSUER: the address clients use, when it is not where the server listens (container).
  const issuer = process.env.ISSUER || `http://${HOST}:${server.address().port}`;
  let provider = new Provider(issuer, configuration());
  // A new provider with the new keys; sessions and grants live in the shared memory store.
  const rebuild = () => {
    provider = new Provider(issuer, configuration());
  };

  server.on('request', (req, res) => {
    if (CONTROL && req.method === 'POST' && req.url.startsWith('/-/')) {
      const url = new URL(req.url, issuer);
      if (url.pathname === '/-/rotate') {
        signingKeys = [newSigningKey(), ...signingKeys];
        rebuild();
      } else if (url.pathname === '/-/retire') {
        signingKeys = signingKeys.slice(0, 1);
        rebuild();
      } else if (url.pathname === '/-/clock') {
        clockOffsetMs = Number(url.searchParams.get('offset') || 0) * 1000;
      } else {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ signing_kid: signingKeys[0].kid, kids: signingKeys.map((k) => k.kid) }));
      return;
    }
    provider.callback()(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
