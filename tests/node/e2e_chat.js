#!/usr/bin/env node
/*
 * End-to-end chat through a running `python wolive.py`, with the real pusher-js (Node build)
 * playing both browser tabs: the agent's console and the visitor's chat window.
 *
 *   WOLIVE_BASE_URL=http://127.0.0.1:8000 node tests/node/e2e_chat.js
 *
 * Environment (only WOLIVE_BASE_URL is required):
 *   WOLIVE_BASE_URL       the server's main port, e.g. http://127.0.0.1:8000
 *   WOLIVE_APP_KEY        Pusher app key (default wolive)
 *   WOLIVE_USER           agent user name (default boss)
 *   WOLIVE_PASSWORD       agent password (default "correct horse 42")
 *   WOLIVE_BUSINESS       business id (default shop1)
 *   WOLIVE_VISITER_ID     visitor id (default e2e-node-visitor)
 *   WOLIVE_VISITER_NAME   visitor name (default 小明)
 *   WOLIVE_VISITOR_TEXT   what the visitor says (default "你好 👋")
 *   WOLIVE_AGENT_TEXT     the agent's reply (default "您好，请问有什么可以帮您？🎉")
 *   WOLIVE_E2E_TIMEOUT_MS whole-run limit (default 15000)
 *   WOLIVE_WS_URLS        comma-separated base URLs of a cluster's nodes: each new pusher-js
 *                         client connects its socket to the next one in turn
 *
 * Each "browser" loads its own copy of pusher-js (so its own Runtime) and keeps its own
 * cookie jar; its WebSocket handshake carries that jar's cookies and the page's Origin, as a
 * browser's would. The Node pusher-js cannot send cookies by itself: we replace
 * `Pusher.Runtime.getWebSocketAPI` with a constructor that builds the original faye-websocket
 * Client with `{headers: {Cookie, Origin}}`.
 *
 * Flow: agent logs in (form + _xsrf) -> console socket holds kefu{service_id} -> a stranger
 * (same origin, no cookie) and a foreign page (agent cookie, other Origin) are refused kefu
 * -> visitor opens /index/index/home, subscribes cu{channel}, is assigned by
 * /admin/event/notice -> visitor posts /admin/event/chats -> agent gets `cu-event` on kefu ->
 * agent replies with /admin/set/chats -> visitor gets `my-event` on cu{channel} -> the
 * refused clients heard nothing.
 *
 * Success: one JSON line on stdout, exit 0. Failure or timeout: "E2E FAILED: ..." on stderr,
 * exit 1.
 */
'use strict';

const EVENT_TO_AGENT = 'cu-event';
const EVENT_TO_VISITOR = 'my-event';

const env = process.env;
const CFG = {
  baseUrl: (env.WOLIVE_BASE_URL || '').replace(/\/+$/, ''),
  appKey: env.WOLIVE_APP_KEY || 'wolive',
  user: env.WOLIVE_USER || 'boss',
  password: env.WOLIVE_PASSWORD || 'correct horse 42',
  business: env.WOLIVE_BUSINESS || 'shop1',
  visiterId: env.WOLIVE_VISITER_ID || 'e2e-node-visitor',
  visiterName: env.WOLIVE_VISITER_NAME || '小明',
  visitorText: env.WOLIVE_VISITOR_TEXT || '你好 👋',
  agentText: env.WOLIVE_AGENT_TEXT || '您好，请问有什么可以帮您？🎉',
  timeoutMs: Number(env.WOLIVE_E2E_TIMEOUT_MS || 15000),
};
const FOREIGN_ORIGIN = 'http://evil.example';

let step = 'start';
const started = Date.now();
const clients = [];

function fail(message) {
  process.stderr.write(`E2E FAILED at step "${step}" after ${Date.now() - started} ms: ` +
                       `${message}\n`);
  for (const p of clients) {
    try { p.disconnect(); } catch (e) { /* exiting anyway */ }
  }
  process.exit(1);
}

function check(cond, message) {
  if (!cond) { throw new Error(message); }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A fresh copy of the pusher-js Node build: its own Runtime, so hooks do not leak. */
function freshPusherJs() {
  const resolved = require.resolve('pusher-js');
  delete require.cache[resolved];
  const Pusher = require(resolved);
  delete require.cache[resolved];
  return Pusher;
}

/** One browser: a cookie jar, an Origin, fetch with cookies, pusher-js with cookies. */
class Browser {
  constructor(name, origin) {
    this.name = name;
    this.origin = origin;
    this.jar = new Map();
    this.handshakes = [];
    this.Pusher = freshPusherJs();
    const Original = this.Pusher.Runtime.getWebSocketAPI();
    const browser = this;
    function CookieWebSocket(url) {
      const headers = {};
      const cookie = browser.cookieHeader();
      if (cookie) { headers.Cookie = cookie; }
      if (browser.origin) { headers.Origin = browser.origin; }
      browser.handshakes.push({ url, cookies: [...browser.jar.keys()],
                                origin: browser.origin || null });
      return new Original(url, [], { headers });
    }
    this.Pusher.Runtime.getWebSocketAPI = () => CookieWebSocket;
  }

  cookieHeader() {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  keep(res) {
    for (const raw of res.headers.getSetCookie()) {
      const first = raw.split(';', 1)[0];
      const eq = first.indexOf('=');
      const name = first.slice(0, eq).trim();
      const value = first.slice(eq + 1).trim();
      if (!value || value === '""' || /expires=[^;]*1970/i.test(raw) || /max-age=0\b/i.test(raw)) {
        this.jar.delete(name);
      } else {
        this.jar.set(name, value);  // kept as sent (maybe quoted), like a browser does
      }
    }
  }

  /** fetch with this jar; `form` is urlencoded; POST adds `_xsrf` when the jar has one. */
  async fetch(path, { method = 'GET', form = null } = {}) {
    const headers = {};
    const cookie = this.cookieHeader();
    if (cookie) { headers.Cookie = cookie; }
    let body;
    if (form) {
      const data = new URLSearchParams(form);
      if (method !== 'GET' && this.jar.has('_xsrf') && !data.has('_xsrf')) {
        data.set('_xsrf', unquote(this.jar.get('_xsrf')));
      }
      body = data.toString();
      headers['Content-Type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(CFG.baseUrl + path, { method, headers, body, redirect: 'manual' });
    this.keep(res);
    const text = await res.text();
    return { status: res.status, headers: res.headers, text };
  }

  async json(path, opts) {
    const res = await this.fetch(path, opts);
    let body;
    try { body = JSON.parse(res.text); } catch (e) {
      throw new Error(`${this.name}: ${path} answered ${res.status} non-JSON: ` +
                      res.text.slice(0, 300));
    }
    return { status: res.status, body };
  }

  pusher() {
    const u = new URL(WS_URLS[nextWs++ % WS_URLS.length]);
    const p = new this.Pusher(CFG.appKey, {
      cluster: 'mt1', wsHost: u.hostname, wsPort: Number(u.port || 80), forceTLS: false,
      enabledTransports: ['ws'], disableStats: true,
    });
    clients.push(p);
    return p;
  }
}

/** Where pusher-js clients connect, in turn (WOLIVE_WS_URLS; else the base URL). */
const WS_URLS = (process.env.WOLIVE_WS_URLS || CFG.baseUrl).split(',').map((s) => s.trim())
  .filter(Boolean);
let nextWs = 0;

function unquote(v) {
  return v.length >= 2 && v[0] === '"' && v[v.length - 1] === '"' ? v.slice(1, -1) : v;
}

function bootOf(html, what) {
  const m = /<script id="boot" type="application\/json">([\s\S]*?)<\/script>/.exec(html);
  check(m, `${what}: no <script id="boot"> in the page`);
  return JSON.parse(m[1]);
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
    pusher.connection.bind('error', (err) => {
      reject(new Error(`${who}: pusher-js connection error ${JSON.stringify(err)}`));
    });
  });
}

/** Subscribe; resolves with what the server answered: {ok: true} or {ok: false, error}. */
function subscribe(pusher, name, bindFirst) {
  const channel = pusher.channel(name) || pusher.subscribe(name);
  if (bindFirst) { bindFirst(channel); }
  return new Promise((resolve) => {
    channel.bind('pusher:subscription_succeeded', () => resolve({ channel, ok: true }));
    channel.bind('pusher:subscription_error', (error) => resolve({ channel, ok: false, error }));
  });
}

/** The first `event` on `channel` whose data passes `test`. */
function nextEvent(channel, event, test = () => true) {
  return new Promise((resolve) => {
    const seen = (data) => {
      if (test(data)) { channel.unbind(event, seen); resolve(data); }
    };
    channel.bind(event, seen);
  });
}

async function main() {
  check(CFG.baseUrl, 'WOLIVE_BASE_URL is not set (e.g. http://127.0.0.1:8000)');
  const base = new URL(CFG.baseUrl);
  const sameOrigin = base.origin;

  // ---- the agent logs in, like the login form --------------------------------------------
  step = 'agent login';
  const agent = new Browser('agent', sameOrigin);
  const form = await agent.fetch('/admin/login/index');
  check(form.status === 200, `GET /admin/login/index answered ${form.status}`);
  check(agent.jar.has('_xsrf'), 'login page set no _xsrf cookie');
  const login = await agent.fetch('/admin/login/index', {
    method: 'POST', form: { username: CFG.user, password: CFG.password } });
  check(login.status === 302, `login answered ${login.status}, not 302: ` +
        login.text.slice(0, 200));
  check(agent.jar.has('wolive_agent'), 'login set no wolive_agent cookie');
  const consolePage = await agent.fetch('/admin/index/index');
  check(consolePage.status === 200, `console page answered ${consolePage.status}`);
  const consoleBoot = bootOf(consolePage.text, 'console');
  const serviceId = consoleBoot.service_id;
  check(Number.isInteger(serviceId) && serviceId > 0, `console boot has no service_id`);
  const kefuName = `kefu${serviceId}`;

  // ---- the console's socket holds kefu{service_id} ---------------------------------------
  step = 'agent socket';
  const agentPusher = agent.pusher();
  await connected(agentPusher, 'agent');
  const agentInbox = [];
  const kefu = await subscribe(agentPusher, kefuName, (ch) => {
    ch.bind(EVENT_TO_AGENT, (d) => agentInbox.push(d));
  });
  check(agent.handshakes.length > 0 && agent.handshakes[0].cookies.includes('wolive_agent'),
        'the WebSocket hook did not run or sent no agent cookie: ' +
        JSON.stringify(agent.handshakes));
  check(kefu.ok, `agent refused ${kefuName}: ${JSON.stringify(kefu.error)}`);

  // ---- clients that must not hear the agent's channel ------------------------------------
  step = 'stranger refused';
  const stranger = new Browser('stranger', sameOrigin);  // same site, no cookie
  const strangerPusher = stranger.pusher();
  await connected(strangerPusher, 'stranger');
  const strangerHeard = [];
  const refusedStranger = await subscribe(strangerPusher, kefuName, (ch) => {
    ch.bind_global((event, data) => strangerHeard.push({ event, data }));
  });
  check(!refusedStranger.ok, `a client without the agent cookie subscribed to ${kefuName}`);
  check(refusedStranger.error && refusedStranger.error.status === 403,
        `stranger refusal is not a 403: ${JSON.stringify(refusedStranger.error)}`);

  step = 'foreign page refused';
  // A page on another site in the agent's browser: the cookie goes along, the Origin differs.
  const foreign = new Browser('foreign', FOREIGN_ORIGIN);
  for (const [k, v] of agent.jar) { foreign.jar.set(k, v); }
  const foreignPusher = foreign.pusher();
  await connected(foreignPusher, 'foreign page');
  const foreignHeard = [];
  const refusedForeign = await subscribe(foreignPusher, kefuName, (ch) => {
    ch.bind_global((event, data) => foreignHeard.push({ event, data }));
  });
  check(foreign.handshakes[0].cookies.includes('wolive_agent'),
        'foreign page handshake carried no agent cookie, so it proves nothing');
  check(!refusedForeign.ok, `a foreign Origin with the agent cookie subscribed to ${kefuName}`);

  // ---- the visitor opens the chat window -------------------------------------------------
  step = 'visitor page';
  const visitor = new Browser('visitor', sameOrigin);
  const qs = new URLSearchParams({ business_id: CFG.business, visiter_id: CFG.visiterId,
                                   visiter_name: CFG.visiterName });
  const page = await visitor.fetch(`/index/index/home?${qs}`);
  check(page.status === 200, `visitor page answered ${page.status}: ${page.text.slice(0, 200)}`);
  const boot = bootOf(page.text, 'visitor page');
  check(boot.visiter_id === CFG.visiterId, `visitor boot visiter_id ${boot.visiter_id}`);
  check(typeof boot.channel === 'string' && boot.channel, 'visitor boot has no channel');
  const cuName = `cu${boot.channel}`;

  step = 'visitor socket';
  const visitorPusher = visitor.pusher();
  await connected(visitorPusher, 'visitor');
  const visitorInbox = [];
  let cuNotice = null;
  const mine = await subscribe(visitorPusher, cuName, (ch) => {
    ch.bind(EVENT_TO_VISITOR, (d) => visitorInbox.push(d));
    ch.bind('cu_notice', (d) => { cuNotice = d; });
  });
  check(mine.ok, `visitor refused its own ${cuName}: ${JSON.stringify(mine.error)}`);

  // ---- assignment: the agent is online once presence has written it ----------------------
  step = 'notice (waiting for the agent to be online)';
  const ids = { visiter_id: CFG.visiterId, business_id: CFG.business, channel: boot.channel };
  let notice;
  const noticeTries = [];
  for (;;) {
    notice = await visitor.json('/admin/event/notice', {
      method: 'POST', form: { ...ids, visiter_name: CFG.visiterName } });
    noticeTries.push(notice.body.code);
    if (notice.body.code === 0) { break; }
    check(notice.body.code === 3,
          `notice answered ${notice.status} ${JSON.stringify(notice.body)}`);
    await sleep(100);
  }
  check(notice.body.data.service_id === serviceId,
        `visitor assigned to ${notice.body.data.service_id}, not ${serviceId}`);
  for (let i = 0; i < 50 && !cuNotice; i++) { await sleep(20); }
  check(cuNotice && cuNotice.service_id === serviceId,
        `visitor got no cu_notice naming agent ${serviceId}: ${JSON.stringify(cuNotice)}`);

  // ---- visitor -> agent ------------------------------------------------------------------
  step = `visitor message -> agent ${kefuName}/${EVENT_TO_AGENT}`;
  const sent = await visitor.json('/admin/event/chats', {
    method: 'POST', form: { ...ids, content: CFG.visitorText } });
  check(sent.status === 200 && sent.body.code === 0,
        `/admin/event/chats answered ${sent.status} ${JSON.stringify(sent.body)}`);
  const cidIn = sent.body.data.cid;
  const gotByAgent = agentInbox.find((d) => d.message && d.message.cid === cidIn) ||
    await nextEvent(kefu.channel, EVENT_TO_AGENT, (d) => d.message && d.message.cid === cidIn);
  const msgIn = gotByAgent.message;
  check(msgIn.content === CFG.visitorText,
        `agent got content ${JSON.stringify(msgIn.content)}, ` +
        `sent ${JSON.stringify(CFG.visitorText)}`);
  check(msgIn.visiter_id === CFG.visiterId, `agent got visiter_id ${msgIn.visiter_id}`);
  check(msgIn.direction === 'to_service', `agent got direction ${msgIn.direction}`);
  check(msgIn.service_id === serviceId, `agent got service_id ${msgIn.service_id}`);

  // ---- agent -> visitor: the console replies to whoever wrote ---------------------------
  step = `agent reply -> visitor ${EVENT_TO_VISITOR}`;
  const replied = await agent.json('/admin/set/chats', {
    method: 'POST', form: { visiter_id: msgIn.visiter_id, content: CFG.agentText } });
  check(replied.status === 200 && replied.body.code === 0,
        `/admin/set/chats answered ${replied.status} ${JSON.stringify(replied.body)}`);
  const cidOut = replied.body.data.cid;
  const gotByVisitor = visitorInbox.find((d) => d.message && d.message.cid === cidOut) ||
    await nextEvent(mine.channel, EVENT_TO_VISITOR, (d) => d.message && d.message.cid === cidOut);
  const msgOut = gotByVisitor.message;
  check(msgOut.content === CFG.agentText,
        `visitor got content ${JSON.stringify(msgOut.content)}, ` +
        `sent ${JSON.stringify(CFG.agentText)}`);
  check(msgOut.direction === 'to_visiter', `visitor got direction ${msgOut.direction}`);
  check(msgOut.service_id === serviceId, `visitor got service_id ${msgOut.service_id}`);

  // ---- the refused clients heard nothing but their refusal ------------------------------
  step = 'refused clients stayed deaf';
  await sleep(300);
  for (const [who, heard] of [['stranger', strangerHeard], ['foreign page', foreignHeard]]) {
    const extra = heard.filter((h) => h.event !== 'pusher:subscription_error');
    check(extra.length === 0, `${who} heard on ${kefuName}: ${JSON.stringify(extra)}`);
  }
  check(agentInbox.length === 1, `agent got ${agentInbox.length} ${EVENT_TO_AGENT} events`);
  // The visitor's channel carries its own message too (for its other windows), then the
  // reply, and nothing else.
  const heardByVisitor = visitorInbox.map((d) => [d.message.cid, d.message.direction]);
  check(JSON.stringify(heardByVisitor) ===
        JSON.stringify([[cidIn, 'to_service'], [cidOut, 'to_visiter']]),
        `visitor got ${EVENT_TO_VISITOR} events ${JSON.stringify(heardByVisitor)}`);

  return {
    ok: true,
    elapsed_ms: Date.now() - started,
    pusher_js: require('pusher-js/package.json').version,
    service_id: serviceId,
    visiter_id: CFG.visiterId,
    channel: boot.channel,
    notice_codes: noticeTries,
    to_agent: { channel: kefuName, event: EVENT_TO_AGENT, cid: msgIn.cid, content: msgIn.content },
    to_visitor: { channel: cuName, event: EVENT_TO_VISITOR, cid: msgOut.cid,
                  content: msgOut.content },
    stranger_refusal: refusedStranger.error,
    foreign_refusal: refusedForeign.error,
    handshakes: Object.fromEntries([agent, stranger, foreign, visitor].map(
      (b) => [b.name, b.handshakes.map((h) => ({ cookies: h.cookies, origin: h.origin }))])),
  };
}

const timer = setTimeout(() => fail(`timed out after ${CFG.timeoutMs} ms`), CFG.timeoutMs);
main().then((summary) => {
  clearTimeout(timer);
  for (const p of clients) { p.disconnect(); }
  process.stdout.write(JSON.stringify(summary) + '\n', () => process.exit(0));
}, (err) => fail(err && err.stack ? err.stack : String(err)));
