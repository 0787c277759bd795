// A real OpenID provider for kgate's end-to-end tests, on the npm package `oidc-provider`.
//
// One node process serves several issuers over HTTPS on one loopback port, each mounted at its
// own path (`https://127.0.0.1:PORT/<name>`), each its own Provider instance with its own RSA
// signing keys, users and clients. Started by the Rust harness (tests/src/oidc.rs) as
//
//   node server.js --config CONFIG.json
//
// and prints `listening on https://127.0.0.1:PORT` on stdout once every issuer is ready.
// See README.md for the config format, the login page and the admin endpoints.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as path from 'node:path';

import Provider from 'oidc-provider';

// ---------------------------------------------------------------------------------------------
// Config.

function parseArgs(argv) {
  const i = argv.indexOf('--config');
  if (i < 0 || !argv[i + 1]) {
    throw new Error('usage: node server.js --config CONFIG.json');
  }
  return argv[i + 1];
}

const config = JSON.parse(fs.readFileSync(parseArgs(process.argv.slice(2)), 'utf8'));
const dataDir = config.dataDir ?? config.data_dir;
if (!dataDir) {
  throw new Error('config: dataDir is required');
}
fs.mkdirSync(dataDir, { recursive: true });

function log(...args) {
  process.stderr.write(`${new Date().toISOString()} ${args.join(' ')}\n`);
}

// ---------------------------------------------------------------------------------------------
// Persistence: keys, cookie keys and the provider's store live in <dataDir>/<issuer>/, so a
// restarted process keeps its keys, sessions, grants and refresh tokens.

function writeJson(file, value) {
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, JSON.stringify(value), { mode: 0o600 });
  fs.renameSync(tmp, file);
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  }
}

function newSigningKey() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomBytes(12).toString('base64url'), alg: 'RS256', use: 'sig' };
}

// A small key-value store with expiry, written through to a JSON file on every change.
class Store {
  constructor(file) {
    this.file = file;
    this.data = readJson(file) ?? {};
  }

  get(key) {
    const entry = this.data[key];
    if (!entry) return undefined;
    if (entry.exp && entry.exp < Date.now()) {
      delete this.data[key];
      return undefined;
    }
    return entry.v;
  }

  set(key, value, expiresIn) {
    this.data[key] = { v: value, exp: typeof expiresIn === 'number' ? Date.now() + expiresIn * 1000 : 0 };
    this.flush();
  }

  delete(key) {
    delete this.data[key];
    this.flush();
  }

  flush() {
    const now = Date.now();
    for (const [key, entry] of Object.entries(this.data)) {
      if (entry.exp && entry.exp < now) delete this.data[key];
    }
    writeJson(this.file, this.data);
  }
}

// The oidc-provider adapter over one issuer's Store (shared by every Provider instance of that
// issuer, so a key rotation keeps sessions, grants and tokens).
function adapterFor(store) {
  return class Adapter {
    constructor(model) {
      this.model = model;
    }

    key(id) {
      return `${this.model}:${id}`;
    }

    async upsert(id, payload, expiresIn) {
      const key = this.key(id);
      store.set(key, payload, expiresIn);
      if (this.model === 'Session' && payload.uid) {
        store.set(`sessionUid:${payload.uid}`, id, expiresIn);
      }
      if (payload.userCode) {
        store.set(`userCode:${payload.userCode}`, id, expiresIn);
      }
      if (payload.grantId) {
        const members = store.get(`grant:${payload.grantId}`) ?? [];
        if (!members.includes(key)) members.push(key);
        store.set(`grant:${payload.grantId}`, members);
      }
    }

    async find(id) {
      return store.get(this.key(id));
    }

    async findByUid(uid) {
      const id = store.get(`sessionUid:${uid}`);
      return id ? this.find(id) : undefined;
    }

    async findByUserCode(userCode) {
      const id = store.get(`userCode:${userCode}`);
      return id ? this.find(id) : undefined;
    }

    async consume(id) {
      const payload = store.get(this.key(id));
      if (payload) {
        payload.consumed = Math.floor(Date.now() / 1000);
        store.flush();
      }
    }

    async destroy(id) {
      store.delete(this.key(id));
    }

    async revokeByGrantId(grantId) {
      for (const key of store.get(`grant:${grantId}`) ?? []) {
        store.delete(key);
      }
      store.delete(`grant:${grantId}`);
    }
  };
}

// ---------------------------------------------------------------------------------------------
// Issuers.

const SCOPES = ['openid', 'offline_access', 'email', 'profile', 'groups'];
const GRANTED_SCOPE = SCOPES.join(' ');
const DEFAULT_ID_TOKEN_TTL = 600;

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

class Issuer {
  constructor(spec, origin) {
    if (!/^[A-Za-z0-9_-]+$/.test(spec.name)) {
      throw new Error(`issuer name ${JSON.stringify(spec.name)}: use letters, digits, - and _ only`);
    }
    this.name = spec.name;
    this.mount = `/${spec.name}`;
    this.url = `${origin}${this.mount}`;
    this.users = spec.users ?? [];
    this.idTokenTtl = spec.idTokenTtlSeconds ?? spec.id_token_ttl_seconds ?? DEFAULT_ID_TOKEN_TTL;
    this.clientTtl = new Map();
    this.clients = (spec.clients ?? []).map((c) => {
      const { idTokenTtlSeconds, id_token_ttl_seconds: snake, ...metadata } = c;
      const ttl = idTokenTtlSeconds ?? snake;
      if (ttl !== undefined) this.clientTtl.set(metadata.client_id, ttl);
      return metadata;
    });

    this.dir = path.join(dataDir, spec.name);
    fs.mkdirSync(this.dir, { recursive: true });
    this.keysFile = path.join(this.dir, 'keys.json');
    const saved = readJson(this.keysFile);
    this.keys = saved?.keys ?? [newSigningKey()];
    this.cookieKeys = saved?.cookieKeys ?? [crypto.randomBytes(32).toString('base64url')];
    this.saveKeys();
    this.store = new Store(path.join(this.dir, 'store.json'));
    this.Adapter = adapterFor(this.store);
    this.install();
  }

  saveKeys() {
    writeJson(this.keysFile, { keys: this.keys, cookieKeys: this.cookieKeys });
  }

  // Builds a Provider for the current keys and swaps it in (requests already running finish on
  // the old instance; both share the store).
  install() {
    const provider = this.build();
    this.provider = provider;
    this.callback = provider.callback();
  }

  findUser(sub) {
    return this.users.find((u) => u.sub === sub);
  }

  build() {
    const issuer = this;
    const provider = new Provider(this.url, {
      adapter: this.Adapter,
      clients: this.clients,
      jwks: { keys: this.keys },
      cookies: { keys: this.cookieKeys },
      // Scope -> claims; with conformIdTokenClaims off they land in the ID token itself.
      claims: {
        openid: ['sub'],
        email: ['email', 'email_verified'],
        profile: ['name'],
        groups: ['groups'],
      },
      scopes: SCOPES,
      conformIdTokenClaims: false,
      features: {
        devInteractions: { enabled: false },
        deviceFlow: { enabled: true },
        revocation: { enabled: true },
        introspection: { enabled: true },
      },
      enabledJWA: {
        idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256', 'Ed25519', 'EdDSA', 'HS256'],
      },
      interactions: {
        url: (_ctx, interaction) => `${issuer.mount}/interaction/${interaction.uid}`,
      },
      async findAccount(_ctx, sub) {
        const user = issuer.findUser(sub);
        if (!user) return undefined;
        return {
          accountId: sub,
          async claims() {
            return {
              sub: user.sub,
              email: user.email,
              email_verified: user.email_verified ?? true,
              name: user.name,
              groups: user.groups ?? [],
            };
          },
        };
      },
      // Refresh tokens for every client allowed the refresh_token grant (no offline_access or
      // prompt=consent dance), independent of the browser session.
      async issueRefreshToken(_ctx, client) {
        return client.grantTypeAllowed('refresh_token');
      },
      async expiresWithSession() {
        return false;
      },
      ttl: {
        IdToken(_ctx, _token, client) {
          return issuer.clientTtl.get(client.clientId) ?? issuer.idTokenTtl;
        },
        AccessToken: 3600,
        AuthorizationCode: 300,
        DeviceCode: 600,
        Grant: 14 * 24 * 3600,
        Interaction: 3600,
        RefreshToken: 14 * 24 * 3600,
        Session: 14 * 24 * 3600,
      },
    });
    for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error',
      'code_verification.error', 'device_authorization.error', 'discovery.error', 'jwks.error']) {
      provider.on(event, (_ctx, err) => {
        log(`[${issuer.name}] ${event}: ${err?.message ?? err}${err?.error_description ? ` (${err.error_description})` : ''}`);
      });
    }
    return provider;
  }

  rotate() {
    this.keys = [newSigningKey(), ...this.keys];
    this.saveKeys();
    this.install();
    log(`[${this.name}] rotated: signing kid ${this.keys[0].kid}, ${this.keys.length} keys published`);
    return this.keys[0].kid;
  }

  dropOldKeys() {
    this.keys = [this.keys[0]];
    this.saveKeys();
    this.install();
    log(`[${this.name}] dropped old keys: only kid ${this.keys[0].kid} published`);
    return this.keys[0].kid;
  }

  // --- the login page (interactions) ---

  loginPage(uid, error) {
    const action = `${this.mount}/interaction/${uid}/login`;
    const message = error ? `<p class="error">${escapeHtml(error)}</p>` : '';
    return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in to ${escapeHtml(this.name)}</title></head>
<body>
<h1>Sign in to ${escapeHtml(this.name)}</h1>
${message}
<form method="post" action="${action}">
  <input type="text" name="login" placeholder="login" autofocus>
  <input type="password" name="password" placeholder="password">
  <button type="submit">Sign in</button>
</form>
</body></html>
`;
  }

  async grantAll(details, accountId) {
    const { provider } = this;
    const clientId = details.params.client_id;
    let grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    if (!grant) {
      grant = new provider.Grant({ accountId, clientId });
    }
    grant.addOIDCScope(GRANTED_SCOPE);
    return grant.save();
  }

  async interaction(req, res, rest) {
    const { provider } = this;
    const m = /^\/interaction\/([^/]+)(\/login)?$/.exec(rest);
    if (!m) return send(res, 404, 'text/plain', 'not found\n');
    const [, uid, login] = m;
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return send(res, 400, 'text/plain', 'interaction mismatch\n');

    if (!login) {
      if (req.method !== 'GET') return send(res, 405, 'text/plain', 'method not allowed\n');
      // Signed in already (only consent is missing): grant and go on, no consent page.
      if (details.prompt.name !== 'login' && details.session?.accountId) {
        const grantId = await this.grantAll(details, details.session.accountId);
        return provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
      }
      return send(res, 200, 'text/html; charset=utf-8', this.loginPage(uid));
    }

    if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed\n');
    const form = new URLSearchParams(await readBody(req));
    const user = this.users.find((u) => u.login === form.get('login') && u.password === form.get('password'));
    if (!user) {
      log(`[${this.name}] login refused for ${JSON.stringify(form.get('login') ?? '')}`);
      return send(res, 401, 'text/html; charset=utf-8', this.loginPage(uid, 'Invalid login or password.'));
    }
    const grantId = await this.grantAll(details, user.sub);
    log(`[${this.name}] login ${user.login} (sub ${user.sub}) for client ${details.params.client_id}`);
    return provider.interactionFinished(req, res, {
      login: { accountId: user.sub },
      consent: { grantId },
    }, { mergeWithLastSubmission: false });
  }

  async admin(req, res, rest) {
    if (req.method !== 'POST') return send(res, 405, 'text/plain', 'method not allowed\n');
    let kid;
    if (rest === '/admin/rotate') kid = this.rotate();
    else if (rest === '/admin/drop-old-keys') kid = this.dropOldKeys();
    else return send(res, 404, 'text/plain', 'not found\n');
    return send(res, 200, 'application/json', `${JSON.stringify({ kid })}\n`);
  }
}

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (chunk) => {
      size += chunk.length;
      if (size > 65536) {
        reject(new Error('request body too large'));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function isLoopback(address) {
  return address === '::1' || address?.startsWith('127.') || address?.startsWith('::ffff:127.');
}

// ---------------------------------------------------------------------------------------------
// The HTTPS server: /healthz, then /<issuer>/... dispatched to that issuer's current Provider.

const issuers = new Map();

async function handle(req, res) {
  const url = new URL(req.url, 'https://127.0.0.1');
  if (url.pathname === '/healthz') {
    return send(res, 200, 'text/plain', 'ok\n');
  }
  const m = /^\/([^/]+)(\/.*)?$/.exec(url.pathname);
  const issuer = m && issuers.get(m[1]);
  if (!issuer) {
    return send(res, 404, 'text/plain', 'no such issuer\n');
  }
  const rest = m[2] ?? '/';
  if (rest.startsWith('/admin/')) {
    if (!isLoopback(req.socket.remoteAddress)) return send(res, 403, 'text/plain', 'forbidden\n');
    return issuer.admin(req, res, rest);
  }
  if (rest.startsWith('/interaction/')) {
    return issuer.interaction(req, res, rest);
  }
  // Mounted like connect/express do it: the provider sees the path below the mount, and
  // req.baseUrl tells it the mount for the URLs it builds.
  req.baseUrl = issuer.mount;
  req.url = `${rest}${url.search}`;
  return issuer.callback(req, res);
}

const server = https.createServer({
  cert: fs.readFileSync(config.tls?.cert ?? config.certFile),
  key: fs.readFileSync(config.tls?.key ?? config.keyFile),
}, (req, res) => {
  const started = Date.now();
  res.on('finish', () => {
    // The path only: queries carry codes, states and verifiers.
    log(`${req.method} ${(req.originalPath ?? '')} ${res.statusCode} ${Date.now() - started}ms`);
  });
  req.originalPath = req.url.split('?')[0];
  Promise.resolve(handle(req, res)).catch((err) => {
    log(`error on ${req.method} ${req.originalPath}: ${err?.stack ?? err}`);
    if (!res.headersSent) {
      send(res, err?.statusCode ?? err?.status ?? 500, 'text/plain', `${err?.name ?? 'Error'}: ${err?.error_description ?? err?.message ?? err}\n`);
    } else {
      res.end();
    }
  });
});

server.listen(config.port ?? 0, '127.0.0.1', () => {
  const { port } = server.address();
  const origin = `https://127.0.0.1:${port}`;
  try {
    for (const spec of config.issuers ?? []) {
      if (issuers.has(spec.name)) throw new Error(`issuer ${spec.name} configured twice`);
      issuers.set(spec.name, new Issuer(spec, origin));
    }
  } catch (err) {
    log(`cannot configure the issuers: ${err?.stack ?? err}`);
    process.exit(1);
  }
  process.stdout.write(`listening on ${origin}\n`);
});

server.on('error', (err) => {
  log(`server error: ${err?.stack ?? err}`);
  process.exit(1);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    log(`${signal}: exiting`);
    process.exit(0);
  });
}
