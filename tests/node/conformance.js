#!/usr/bin/env node
/*
 * Pusher conformance through a running `python wolive.py`, with the REAL clients:
 * pusher-js 8 (Node build, which carries the tweetnacl decryption of private-encrypted
 * channels) and the official Node server library `pusher` 5.
 *
 *   WOLIVE_BASE_URL=http://127.0.0.1:8000 WOLIVE_APP_SECRET=... node tests/node/conformance.js
 *
 * Environment:
 *   WOLIVE_BASE_URL         the server's main port (required)
 *   WOLIVE_APP_ID / _KEY    Pusher app id and key (default 1 / wolive)
 *   WOLIVE_APP_SECRET       the app secret (required: the Node library signs with it)
 *   WOLIVE_MASTER_KEY_B64   the app's encryption master key, base64 (required)
 *   WOLIVE_USER / _PASSWORD agent login (default boss / "correct horse 42")
 *   WOLIVE_BUSINESS         the agent's business id (default shop1)
 *   WOLIVE_TIMEOUT_MS       whole-run limit (default 30000)
 *   WOLIVE_WS_URLS          comma-separated base URLs of the nodes of a cluster: each new
 *                           pusher-js client connects its socket to the next one in turn
 *                           (pages, auth and the Node library stay on WOLIVE_BASE_URL)
 *
 * The "agent" is a logged-in console: its pusher-js authorizes channels and signs in through
 * wolive's own `/pusher/auth` and `/pusher/user-auth` (cookie + X-XSRFToken header). The
 * Node pusher-js cannot send cookies by itself, so each "browser" replaces
 * `Pusher.Runtime.getWebSocketAPI` and `getXHRAPI` with versions that add its cookie jar
 * (and Origin), as a browser would. The "visitor" is a user of some app backend: its
 * pusher-js authorizes through a customHandler that calls the Node library's
 * `authorizeChannel` / `authenticateUser`, as an app server would.
 *
 * Every step records what the clients saw; the script fails fast (exit 1, "CONFORMANCE
 * FAILED at step ...") on the first broken rule and, on success, prints one JSON summary
 * line for tests/test_pusher_conformance_node.py to check again.
 */
'use strict';

const NodePusher = require('pusher');

const env = process.env;
const CFG = {
  baseUrl: (env.WOLIVE_BASE_URL || '').replace(/\/+$/, ''),
  appId: env.WOLIVE_APP_ID || '1',
  appKey: env.WOLIVE_APP_KEY || 'wolive',
  secret: env.WOLIVE_APP_SECRET || '',
  masterKey: env.WOLIVE_MASTER_KEY_B64 || '',
  user: env.WOLIVE_USER || 'boss',
  password: env.WOLIVE_PASSWORD || 'correct horse 42',
  business: env.WOLIVE_BUSINESS || 'shop1',
  timeoutMs: Number(env.WOLIVE_TIMEOUT_MS || 30000),
};
/** How long "nothing arrives" is watched for (ms). */
const QUIET_MS = 400;
/** Client events pusher-js may send per second before the server answers 4301. */
const CLIENT_EVENTS_PER_S = 10;

let step = 'start';
const started = Date.now();
const clients = [];

function fail(message) {
  process.stderr.write(`CONFORMANCE FAILED at step "${step}" after ${Date.now() - started} ` +
                       `ms: ${message}\n`);
  for (const p of clients) {
    try { p.disconnect(); } catch (e) { /* exiting anyway */ }
  }
  process.exit(1);
}

function check(cond, message) {
  if (!cond) { throw new Error(message); }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(predicate, what, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = predicate();
    if (value) { return value; }
    if (Date.now() > deadline) { throw new Error(`timed out waiting for ${what}`); }
    await sleep(20);
  }
}

/** A fresh copy of the pusher-js Node build: its own Runtime, so hooks do not leak. */
function freshPusherJs() {
  const resolved = require.resolve('pusher-js');
  delete require.cache[resolved];
  const Pusher = require(resolved);
  delete require.cache[resolved];
  return Pusher;
}

function unquote(v) {
  return v.length >= 2 && v[0] === '"' && v[v.length - 1] === '"' ? v.slice(1, -1) : v;
}

/** One browser: a cookie jar and an Origin for fetch, the WebSocket and pusher-js's XHR. */
class Browser {
  constructor(name) {
    this.name = name;
    this.origin = new URL(CFG.baseUrl).origin;
    this.jar = new Map();
    this.authRequests = [];
    this.Pusher = freshPusherJs();
    const browser = this;
    const OriginalWS = this.Pusher.Runtime.getWebSocketAPI();
    function CookieWebSocket(url) {
      const headers = { Origin: browser.origin };
      const cookie = browser.cookieHeader();
      if (cookie) { headers.Cookie = cookie; }
      return new OriginalWS(url, [], { headers });
    }
    this.Pusher.Runtime.getWebSocketAPI = () => CookieWebSocket;
    const OriginalXHR = this.Pusher.Runtime.getXHRAPI();
    function CookieXHR() {
      const xhr = new OriginalXHR();
      xhr.setDisableHeaderCheck(true);  // a browser sends its cookies; node-XMLHttpRequest won't
      const open = xhr.open;
      xhr.open = function (method, url, ...rest) {
        open.call(xhr, method, url, ...rest);
        browser.authRequests.push({ method, url: String(url) });
        const cookie = browser.cookieHeader();
        if (cookie) { xhr.setRequestHeader('Cookie', cookie); }
        xhr.setRequestHeader('Origin', browser.origin);
      };
      return xhr;
    }
    this.Pusher.Runtime.getXHRAPI = () => CookieXHR;
  }

  cookieHeader() {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  xsrf() {
    return this.jar.has('_xsrf') ? unquote(this.jar.get('_xsrf')) : '';
  }

  keep(res) {
    for (const raw of res.headers.getSetCookie()) {
      const first = raw.split(';', 1)[0];
      const eq = first.indexOf('=');
      const name = first.slice(0, eq).trim();
      const value = first.slice(eq + 1).trim();
      if (!value || value === '""' || /expires=[^;]*1970/i.test(raw)) {
        this.jar.delete(name);
      } else {
        this.jar.set(name, value);
      }
    }
  }

  async fetch(path, { method = 'GET', form = null } = {}) {
    const headers = {};
    const cookie = this.cookieHeader();
    if (cookie) { headers.Cookie = cookie; }
    let body;
    if (form) {
      const data = new URLSearchParams(form);
      if (method !== 'GET' && this.jar.has('_xsrf') && !data.has('_xsrf')) {
        data.set('_xsrf', this.xsrf());
      }
      body = data.toString();
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(CFG.baseUrl + path, { method, headers, body, redirect: 'manual' });
    this.keep(res);
    return { status: res.status, text: await res.text() };
  }

  /** pusher-js as the console would configure it: wolive's own auth endpoints. */
  pusher({ xsrfHeader = true } = {}) {
    const headers = xsrfHeader ? { 'X-XSRFToken': this.xsrf() } : {};
    return connect(this.Pusher, {
      channelAuthorization: { endpoint: `${CFG.baseUrl}/pusher/auth`, transport: 'ajax', headers },
      userAuthentication: { endpoint: `${CFG.baseUrl}/pusher/user-auth`, transport: 'ajax',
                            headers },
    });
  }
}

/** Where pusher-js clients connect, in turn (WOLIVE_WS_URLS; else the base URL). */
const WS_URLS = (env.WOLIVE_WS_URLS || CFG.baseUrl).split(',').map((s) => s.trim())
  .filter(Boolean);
let nextWs = 0;

function connect(Pusher, extra) {
  const u = new URL(WS_URLS[nextWs++ % WS_URLS.length]);
  const p = new Pusher(CFG.appKey, Object.assign({
    cluster: 'mt1', wsHost: u.hostname, wsPort: Number(u.port || 80), forceTLS: false,
    enabledTransports: ['ws'], disableStats: true,
  }, extra));
  p.errors = [];
  p.connection.bind('error', (err) => p.errors.push(err));
  clients.push(p);
  return p;
}

/** pusher-js whose channels and sign-in are signed by an app backend (the Node library). */
function backendSigned(server, member, userData) {
  return connect(freshPusherJs(), {
    channelAuthorization: {
      customHandler: ({ socketId, channelName }, callback) => {
        try {
          const data = channelName.startsWith('presence-') ? member : undefined;
          callback(null, server.authorizeChannel(socketId, channelName, data));
        } catch (e) { callback(e, null); }
      },
    },
    userAuthentication: {
      customHandler: ({ socketId }, callback) => {
        try { callback(null, server.authenticateUser(socketId, userData)); } catch (e) {
          callback(e, null);
        }
      },
    },
  });
}

function connected(pusher, who) {
  return new Promise((resolve, reject) => {
    if (pusher.connection.state === 'connected') { return resolve(pusher.connection.socket_id); }
    pusher.connection.bind('state_change', (s) => {
      if (s.current === 'connected') { resolve(pusher.connection.socket_id); }
      if (s.current === 'failed' || s.current === 'unavailable') {
        reject(new Error(`${who}: pusher-js connection ${s.current}`));
      }
    });
  });
}

/** Subscribe; resolves {channel, ok, data} or {channel, ok: false, error}. */
function subscribe(pusher, name, bindFirst) {
  const channel = pusher.subscribe(name);
  if (bindFirst) { bindFirst(channel); }
  return new Promise((resolve) => {
    channel.bind('pusher:subscription_succeeded', (data) => resolve({ channel, ok: true, data }));
    channel.bind('pusher:subscription_error', (error) => resolve({ channel, ok: false, error }));
  });
}

/** Everything a channel hears, in order: [{event, data}] (global bindings get no metadata). */
function record(channel) {
  const heard = [];
  channel.bind_global((event, data) => heard.push({ event, data }));
  return heard;
}

const only = (heard, event) => heard.filter((h) => h.event === event);

async function jsonOf(promise) {
  const res = await promise;
  const text = await res.text();
  try { return JSON.parse(text); } catch (e) {
    throw new Error(`HTTP API answered ${res.status} non-JSON: ${text.slice(0, 200)}`);
  }
}

async function statusOf(promise) {
  try {
    const res = await promise;
    return res.status;
  } catch (e) {
    if (e instanceof NodePusher.RequestError) { return e.status; }
    throw e;
  }
}

async function main() {
  check(CFG.baseUrl, 'WOLIVE_BASE_URL is not set');
  check(CFG.secret, 'WOLIVE_APP_SECRET is not set');
  check(CFG.masterKey, 'WOLIVE_MASTER_KEY_B64 is not set');
  const u = new URL(CFG.baseUrl);
  const server = new NodePusher({
    appId: CFG.appId, key: CFG.appKey, secret: CFG.secret, host: u.hostname,
    port: Number(u.port || 80), useTLS: false, encryptionMasterKeyBase64: CFG.masterKey,
  });
  const summary = { ok: false, pusher_js: require('pusher-js/package.json').version,
                    pusher_node: require('pusher/package.json').version };

  // ---- the agent logs in ----------------------------------------------------------------
  step = 'agent login';
  const agent = new Browser('agent');
  await agent.fetch('/admin/login/index');
  const login = await agent.fetch('/admin/login/index', {
    method: 'POST', form: { username: CFG.user, password: CFG.password } });
  check(login.status === 302, `login answered ${login.status}: ${login.text.slice(0, 200)}`);
  check(agent.jar.has('wolive_agent') && agent.xsrf(), 'no agent cookie or _xsrf after login');
  const page = await agent.fetch('/admin/index/index');
  const boot = JSON.parse(/<script id="boot" type="application\/json">([\s\S]*?)<\/script>/
    .exec(page.text)[1]);
  const sid = boot.service_id;
  check(Number.isInteger(sid), 'console boot has no service_id');
  const me = String(sid);
  const presenceName = `presence-business-${CFG.business}`;
  const privateName = `private-agent-${sid}`;
  const encryptedName = `private-encrypted-agent-${sid}`;

  step = 'agent connects';
  const A = agent.pusher();
  await connected(A, 'agent');

  // ---- presence -------------------------------------------------------------------------
  step = 'agent joins presence through /pusher/auth';
  let heardA = null;
  const typingAtA = [];  // bound by name: only named bindings get pusher-js's metadata
  const pa = await subscribe(A, presenceName, (ch) => {
    heardA = record(ch);
    ch.bind('client-typing', (data, meta) => typingAtA.push({ data, meta }));
  });
  check(pa.ok, `agent refused ${presenceName}: ${JSON.stringify(pa.error)}`);
  check(pa.data.me && pa.data.me.id === me, `members.me is ${JSON.stringify(pa.data.me)}`);
  check(pa.data.me.info.nick_name, 'agent member has no nick_name');
  check(agent.authRequests.some((r) => r.url.endsWith('/pusher/auth')),
        'the agent did not go through /pusher/auth');
  summary.agent_member = pa.data.me;

  step = 'a second user joins: the agent sees pusher:member_added';
  const visitorMember = { user_id: 'visitor-7', user_info: { name: '小明 🎉' } };
  const V = backendSigned(server, visitorMember, { id: 'visitor-7' });
  await connected(V, 'visitor');
  let heardV = null;
  const pv = await subscribe(V, presenceName, (ch) => { heardV = record(ch); });
  check(pv.ok, `visitor refused: ${JSON.stringify(pv.error)}`);
  check(pv.data.count === 2, `visitor sees ${pv.data.count} members`);
  const seenByVisitor = [];
  pv.data.each((m) => seenByVisitor.push(m.id));
  const added = await waitFor(() => only(heardA, 'pusher:member_added')[0], 'member_added');
  check(added.data.id === 'visitor-7' && added.data.info.name === '小明 🎉',
        `member_added carried ${JSON.stringify(added.data)}`);
  check(only(heardV, 'pusher:member_added').length === 0,
        'the joining socket got member_added for itself');
  summary.presence = { visitor_sees: seenByVisitor.sort(), added: added.data };

  step = 'same user, second socket: no member_added; it leaves: no member_removed';
  const V2 = backendSigned(server, visitorMember, { id: 'visitor-7' });
  await connected(V2, 'visitor tab 2');
  const pv2 = await subscribe(V2, presenceName);
  check(pv2.ok && pv2.data.count === 2, `second tab sees ${pv2.data && pv2.data.count}`);
  await sleep(QUIET_MS);
  check(only(heardA, 'pusher:member_added').length === 1,
        `member_added x${only(heardA, 'pusher:member_added').length} for one user`);
  check(pa.channel.members.count === 2, `agent counts ${pa.channel.members.count} members`);

  step = 'HTTP API through the Node library: channels, channel, users';
  const users = await jsonOf(server.get({ path: `/channels/${presenceName}/users` }));
  const channelsInfo = await jsonOf(server.get({
    path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
  const channelInfo = await jsonOf(server.get({
    path: `/channels/${presenceName}`, params: { info: 'user_count,subscription_count' } }));
  const allChannels = await jsonOf(server.get({ path: '/channels' }));
  const usersOfPublic = await statusOf(server.get({ path: '/channels/news/users' }));
  const userCountNoPrefix = await statusOf(server.get({
    path: '/channels', params: { info: 'user_count' } }));
  summary.http = { users, channels: channelsInfo, channel: channelInfo, all: allChannels,
                   users_of_public_status: usersOfPublic,
                   user_count_without_prefix_status: userCountNoPrefix };

  V2.disconnect();
  await sleep(QUIET_MS);
  check(only(heardA, 'pusher:member_removed').length === 0,
        'member_removed while the user still had a socket');

  // ---- client events --------------------------------------------------------------------
  step = 'client event on presence: delivered with user_id, never echoed';
  pv.channel.trigger('client-typing', { typing: true });
  const typing = await waitFor(() => typingAtA[0], 'client-typing');
  check(typing.data.typing === true, `client-typing data ${JSON.stringify(typing.data)}`);
  check(typing.meta && typing.meta.user_id === 'visitor-7',
        `client-typing metadata ${JSON.stringify(typing.meta)}`);
  await sleep(QUIET_MS);
  check(only(heardV, 'client-typing').length === 0, 'the sender heard its own client event');
  summary.client_event = { data: typing.data, user_id: typing.meta.user_id };

  step = 'client event on a private channel, agent -> visitor';
  let heardPA = null;
  let heardPV = null;
  const ppa = await subscribe(A, privateName, (ch) => { heardPA = record(ch); });
  check(ppa.ok, `agent refused ${privateName}: ${JSON.stringify(ppa.error)}`);
  const ppv = await subscribe(V, privateName, (ch) => { heardPV = record(ch); });
  check(ppv.ok, `backend-signed visitor refused ${privateName}`);
  ppa.channel.trigger('client-ping', { n: 1 });
  const ping = await waitFor(() => only(heardPV, 'client-ping')[0], 'client-ping');
  await sleep(QUIET_MS);
  check(only(heardPA, 'client-ping').length === 0, 'the agent heard its own client-ping');
  summary.private_client_event = ping.data;

  step = 'client event rate limit: 4301 as pusher:error, socket kept';
  await sleep(1100);  // the visitor's client-typing above is out of the 1 s window
  const burst = CLIENT_EVENTS_PER_S + 5;
  for (let i = 0; i < burst; i++) { pv.channel.trigger('client-burst', { i }); }
  await waitFor(() => only(heardA, 'client-burst').length >= CLIENT_EVENTS_PER_S, 'the burst');
  await sleep(QUIET_MS);
  const limited = V.errors.filter((e) => e.data && e.data.code === 4301);
  summary.rate_limit = { sent: burst, delivered: only(heardA, 'client-burst').length,
                         errors_4301: limited.length, state_after: V.connection.state };
  check(summary.rate_limit.delivered === CLIENT_EVENTS_PER_S,
        `delivered ${summary.rate_limit.delivered} of a burst of ${burst}`);
  check(limited.length === burst - CLIENT_EVENTS_PER_S, `${limited.length} 4301 errors`);
  check(V.connection.state === 'connected', `visitor is ${V.connection.state} after 4301`);

  // ---- the last socket of a user leaves -------------------------------------------------
  step = 'visitor leaves: member_removed';
  V.disconnect();
  const removed = await waitFor(() => only(heardA, 'pusher:member_removed')[0],
                                'member_removed');
  check(removed.data.id === 'visitor-7', `member_removed ${JSON.stringify(removed.data)}`);
  check(pa.channel.members.count === 1, `agent counts ${pa.channel.members.count} after`);
  summary.presence.removed = removed.data;

  // ---- sign-in and sendToUser -----------------------------------------------------------
  step = 'signin through /pusher/user-auth, then sendToUser';
  const toUser = [];
  A.user.bind('notice', (data) => toUser.push(data));
  A.signin();
  await waitFor(() => A.user.user_data, 'pusher:signin_success');
  check(A.user.user_data.id === `agent-${sid}`, `signed in as ${A.user.user_data.id}`);
  await waitFor(() => A.user.serverToUserChannel && A.user.serverToUserChannel.subscribed,
                '#server-to-user- subscription');
  const sent = await jsonOf(server.sendToUser(`agent-${sid}`, 'notice', { text: '你好' }));
  await waitFor(() => toUser.length === 1, 'the sendToUser event');
  summary.signin = { user_data: A.user.user_data, send_answer: sent, received: toUser[0] };

  // ---- private-encrypted ----------------------------------------------------------------
  step = 'private-encrypted: shared_secret from /pusher/auth, Node library encrypts';
  const secretEvents = [];
  const pe = await subscribe(A, encryptedName, (ch) => {
    ch.bind('secret', (d) => secretEvents.push(d));
  });
  check(pe.ok, `agent refused ${encryptedName}: ${JSON.stringify(pe.error)}`);
  await server.trigger(encryptedName, 'secret', { pin: '1234', note: '加密 🔒' });
  await waitFor(() => secretEvents.length === 1, 'the encrypted event');
  summary.encrypted = secretEvents[0];

  // ---- cache channels -------------------------------------------------------------------
  step = 'cache channels: replay, cache_miss';
  await server.trigger('cache-status', 'state', { v: 1 });
  await server.trigger('cache-status', 'state', { v: 2 });
  let heardCache = null;
  const pc = await subscribe(A, 'cache-status', (ch) => { heardCache = record(ch); });
  check(pc.ok, 'cache-status refused');
  await waitFor(() => only(heardCache, 'state').length === 1, 'the cached event');
  let heardMiss = null;
  await subscribe(A, 'cache-empty', (ch) => { heardMiss = record(ch); });
  await waitFor(() => only(heardMiss, 'pusher:cache_miss').length === 1, 'pusher:cache_miss');
  summary.cache = { replayed: only(heardCache, 'state').map((h) => h.data),
                    miss: only(heardMiss, 'pusher:cache_miss').length };

  // ---- batch and info -------------------------------------------------------------------
  step = 'triggerBatch and trigger with info';
  const batch = await jsonOf(server.triggerBatch([
    { channel: 'cache-status', name: 'b1', data: { i: 1 } },
    { channel: privateName, name: 'b2', data: { i: 2 } },
    { channel: presenceName, name: 'b3', data: { i: 3 }, info: 'user_count,subscription_count' },
  ]));
  await waitFor(() => only(heardCache, 'b1').length && only(heardPA, 'b2').length &&
                only(heardA, 'b3').length, 'the batch events');
  const withInfo = await jsonOf(server.trigger(presenceName, 'x', {}, {
    info: 'user_count,subscription_count' }));
  const tooMany = await statusOf(server.triggerBatch(Array.from({ length: 11 }, (_, i) => (
    { channel: 'news', name: 'n', data: { i } }))));
  const tooBig = await statusOf(server.trigger('news', 'big', 'x'.repeat(10 * 1024 + 1)));
  summary.batch = { answer: batch, info_answer: withInfo, eleven_status: tooMany,
                    too_big_status: tooBig };

  // ---- refusals -------------------------------------------------------------------------
  step = 'refusals: a stranger, another agent\'s channel, no XSRF header';
  const stranger = new Browser('stranger');
  await stranger.fetch('/admin/login/index');  // has an _xsrf token, but no agent cookie
  const S = stranger.pusher();
  await connected(S, 'stranger');
  const sp = await subscribe(S, privateName);
  const sPresence = await subscribe(S, presenceName);
  const signinErrors = [];
  S.user.bind('pusher:signin_error', (e) => signinErrors.push(e));
  S.signin();
  await waitFor(() => signinErrors.length, 'the stranger\'s signin_error');
  const other = await subscribe(A, `private-agent-${sid + 1}`);
  const noXsrf = agent.pusher({ xsrfHeader: false });
  await connected(noXsrf, 'agent without X-XSRFToken');
  const nx = await subscribe(noXsrf, `private-agent-${sid}`);
  summary.refusals = {
    stranger_private: sp.ok ? 'ok' : sp.error.status,
    stranger_presence: sPresence.ok ? 'ok' : sPresence.error.status,
    stranger_signin: signinErrors[0].status,
    other_agents_channel: other.ok ? 'ok' : other.error.status,
    without_xsrf: nx.ok ? 'ok' : nx.error.status,
  };
  for (const [what, got] of Object.entries(summary.refusals)) {
    check(got === 403, `${what}: ${got}, not 403`);
  }

  // ---- terminate the agent's connections ------------------------------------------------
  step = 'terminateUserConnections';
  const states = [];
  A.connection.bind('state_change', (s) => states.push(s.current));
  const terminated = await jsonOf(server.terminateUserConnections(`agent-${sid}`));
  await waitFor(() => A.connection.state === 'disconnected', 'the agent to be disconnected');
  await sleep(QUIET_MS);
  const after = await jsonOf(server.get({
    path: '/channels', params: { filter_by_prefix: 'presence-', info: 'user_count' } }));
  summary.terminate = {
    answer: terminated, errors: A.errors.filter((e) => e.data && e.data.code === 4009)
      .map((e) => e.data.code), states, stranger_state: S.connection.state,
    channels_after: after,
  };
  check(summary.terminate.errors.length >= 1, 'no 4009 error seen by the agent');
  check(!states.includes('connected'), `the agent reconnected: ${states}`);
  check(S.connection.state === 'connected', 'the stranger lost its connection too');

  summary.ok = true;
  summary.elapsed_ms = Date.now() - started;
  return summary;
}

const timer = setTimeout(() => fail(`timed out after ${CFG.timeoutMs} ms`), CFG.timeoutMs);
main().then((summary) => {
  clearTimeout(timer);
  for (const p of clients) { p.disconnect(); }
  process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(0));
}, (err) => fail(err && err.stack ? err.stack : String(err)));
