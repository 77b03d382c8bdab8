// A real OpenID provider for Greenroom's sign-in tests: oidc-provider (the
// certified Node implementation) on loopback, with its own login form
// (any password; the login names the person) and two people.
//
//   node provider.mjs <port> <redirect-uri> <client-secret> [people]
//
// `people` is JSON, {"login": "email", ...}; by default jane and dan at
// example.com.
// Prints "ready <issuer>" once it listens.
import Provider from 'oidc-provider';

const [port, redirectUri, clientSecret, peopleJson] = process.argv.slice(2);
if (!port || !redirectUri || !clientSecret) {
  console.error('usage: node provider.mjs <port> <redirect-uri> <client-secret>');
  process.exit(2);
}

const emails = JSON.parse(peopleJson || '{"jane": "jane@example.com", "dan": "dan@example.com"}');
const people = Object.fromEntries(Object.entries(emails).map(([login, email]) => [login, {
  sub: login, email, email_verified: true, name: login, preferred_username: login,
}]));

const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'greenroom',
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name', 'preferred_username'],
  },
  async findAccount(ctx, id) {
    const person = people[id];
    if (!person) return undefined;
    return { accountId: id, async claims() { return person; } };
  },
  // A first-party application: no consent screen, as company providers
  // are usually set up for their own portal.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email profile');
    await grant.save();
    return grant;
  },
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
});
// Its own session cookies are for plain http on loopback.
provider.proxy = false;

provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
