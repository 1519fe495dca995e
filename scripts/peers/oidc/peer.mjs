// Test peer: a real OpenID provider (the `oidc-provider` package, pinned in package-lock.json)
// on 127.0.0.1, the issuer of the server's OIDC tests (issue 22). It mints client-credentials
// access tokens as JWTs (resource indicators, accessTokenFormat 'jwt') that carry GitHub-style
// claims, one client per simulated CI job.
//
//   node scripts/peers/oidc/peer.mjs CONFIG.json      # prints "READY <issuer URL>" on stdout
//
// CONFIG: { "clients": [ { "client_id", "client_secret", "ttl": seconds, "alg": "RS256"|"ES256",
//           "claims": { "repository": …, "ref": …, … }, "sub": "repo:…:ref:…",
//           "nbf_offset": s, "iat_offset": s } ] }
// A token request names its audience as the resource `urn:stateseal:<audience>`.
//
// Test-only endpoints, outside the provider:
//   POST /admin/rotate   new signing keys (same issuer): the provider is rebuilt with them
//   GET  /admin/stats    {"jwks": n, "discovery": n}: requests for the keys and for discovery
// It stops on SIGTERM (the tests stop it by PID).
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const byId = new Map(config.clients.map((c) => [c.client_id, c]));
const RESOURCE_PREFIX = 'urn:stateseal:';

function newKeys() {
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
  return [
    { ...rsa, kid: `rsa-${randomUUID()}`, alg: 'RS256', use: 'sig' },
    { ...ec, kid: `ec-${randomUUID()}`, alg: 'ES256', use: 'sig' },
  ];
}

function build(issuer, keys) {
  const provider = new Provider(issuer, {
    clients: config.clients.map((c) => ({
      client_id: c.client_id,
      client_secret: c.client_secret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    })),
    jwks: { keys },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => `${RESOURCE_PREFIX}stateseal`,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource, client) => {
          const c = byId.get(client.clientId);
          return {
            scope: 'state',
            audience: resource.startsWith(RESOURCE_PREFIX) ? resource.slice(RESOURCE_PREFIX.length) : resource,
            accessTokenTTL: c.ttl ?? 300,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: c.alg ?? 'RS256' } },
          };
        },
      },
    },
    formats: {
      customizers: {
        // The job's claims, as a CI platform would put them in its token.
        jwt: (ctx, token, jwt) => {
          const c = byId.get(token.clientId);
          if (!c) return;
          Object.assign(jwt.payload, c.claims ?? {});
          if (c.sub) jwt.payload.sub = c.sub;
          if (c.nbf_offset) jwt.payload.nbf = jwt.payload.iat + c.nbf_offset;
          if (c.iat_offset) jwt.payload.iat += c.iat_offset;
        },
      },
    },
  });
  provider.proxy = false;
  return provider;
}

let provider;
let issuer;
const stats = { jwks: 0, discovery: 0, token: 0 };

const server = createServer((req, res) => {
  if (req.url === '/admin/rotate' && req.method === 'POST') {
    provider = build(issuer, newKeys());
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ rotated: true }));
    return;
  }
  if (req.url === '/admin/stats') {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify(stats));
    return;
  }
  if (req.url.startsWith('/jwks')) stats.jwks += 1;
  if (req.url.startsWith('/.well-known/openid-configuration')) stats.discovery += 1;
  if (req.url.startsWith('/token')) stats.token += 1;
  provider.callback()(req, res);
});

server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  provider = build(issuer, newKeys());
  process.stdout.write(`READY ${issuer}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
