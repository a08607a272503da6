// A real OpenID Connect provider for tests/test_oidc.py: panva/oidc-provider (OpenID Certified),
// unchanged, with its development sign-in pages, which a test drives with plain HTTP:
//   GET  /interaction/:uid                      the login (then the consent) page
//   POST /interaction/:uid  prompt=login&login=<sub>   sign in as <sub>, no password
//   POST /interaction/:uid  prompt=consent              grant the requested scopes
// What an account's claims are is up to the test: PUT /_test/accounts/<sub> with a JSON body
// ({"email", "email_verified", "name"}) before signing in as <sub>.
//
// Environment: PORT (the issuer is http://127.0.0.1:PORT) and CLIENTS, a JSON list of
// {"client_id", "client_secret", "redirect_uris"}. Prints "ready <issuer>" once listening.
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = new Map();

const provider = new Provider(issuer, {
  clients: JSON.parse(process.env.CLIENTS).map((client) => ({
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    ...client,
  })),
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name'],
  },
  async findAccount(ctx, sub) {
    return { accountId: sub, async claims() { return { sub, ...(accounts.get(sub) || {}) }; } };
  },
  cookies: { keys: ['delta-test-provider-cookie-key'] },
  features: { devInteractions: { enabled: true } },
});

async function readJson(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
}

provider.use(async (ctx, next) => {
  const match = /^\/_test\/accounts\/([^/]+)$/.exec(ctx.path);
  if (match && ctx.method === 'PUT') {
    accounts.set(decodeURIComponent(match[1]), await readJson(ctx.req));
    ctx.status = 204;
    return;
  }
  await next();
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
