// Drives the pages' Wolive.apiRetry (static/assets/js/wolive-common.js, loaded as the pages
// load it) against a scripted fetch on a virtual clock: a 503 is asked again after its
// Retry-After (default 5 s, at most 30 s, at most a fifth more), the first other answer is
// what the caller gets, and after the last 503 the call rejects. Prints one JSON line:
// {ok, problems, cases}.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const SOURCE = fs.readFileSync(
  path.join(__dirname, '..', '..', 'static', 'assets', 'js', 'wolive-common.js'), 'utf8');

function load(answers, calls) {
  const win = {
    document: { cookie: '' },
    URLSearchParams,
    fetch(url, opts) {
      calls.push({ url, at: null, body: String(opts.body) });
      const a = answers.shift() || { status: 200, body: { code: 0 } };
      return Promise.resolve({
        status: a.status,
        headers: { get: (h) => (a.headers || {})[h.toLowerCase()] || null },
        json: () => Promise.resolve(a.body),
      });
    },
  };
  win.window = win;
  vm.runInNewContext(SOURCE, Object.assign(win, { setTimeout, clearTimeout }));
  const W = win.Wolive;
  const waits = [];
  W.retryTimer = (fn, ms) => { waits.push(ms); setImmediate(fn); return 0; };
  return { W, waits };
}

const problems = [];
const cases = [];
function check(name, cond, detail) { if (!cond) { problems.push(name + ': ' + JSON.stringify(detail)); } }

async function main() {
  const busy = (after) => ({ status: 503, headers: after === undefined ? {} : { 'retry-after': after },
                             body: { code: 1, msg: 'busy' } });
  // 1. Two 503s (Retry-After 2, then none), then the answer.
  {
    const calls = [];
    const { W, waits } = load([busy('2'), busy(undefined), { status: 200, body: { code: 0, data: 7 } }], calls);
    const r = await W.apiRetry('POST', '/admin/event/notice', { visiter_id: 'v' });
    check('answer', r.code === 0 && r.data === 7, r);
    check('three calls', calls.length === 3, calls.length);
    check('same request each time', calls.every((c) => c.body === 'visiter_id=v'), calls);
    check('waited Retry-After', waits[0] >= 2000 && waits[0] <= 2400, waits);
    check('default 5 s', waits[1] >= 5000 && waits[1] <= 6000, waits);
    cases.push({ waits });
  }
  // 2. A huge Retry-After is capped at 30 s.
  {
    const { W, waits } = load([busy('3600'), { status: 200, body: { code: 0 } }], []);
    await W.apiRetry('POST', '/x', {});
    check('capped', waits[0] >= 30000 && waits[0] <= 36000, waits);
  }
  // 3. Always busy: rejects after `tries` calls, having waited between them.
  {
    const calls = [];
    const { W, waits } = load(Array.from({ length: 20 }, () => busy('1')), calls);
    let rejected = false;
    try { await W.apiRetry('POST', '/x', {}, 4); } catch (e) { rejected = true; }
    check('rejects after the last 503', rejected, calls.length);
    check('four tries', calls.length === 4 && waits.length === 3, { calls: calls.length, waits });
  }
  // 4. Other statuses are answers at once (a 403's {code, msg} is the caller's business).
  {
    const calls = [];
    const { W, waits } = load([{ status: 403, body: { code: 3, msg: 'wrong channel' } }], calls);
    const r = await W.apiRetry('POST', '/x', {});
    check('403 answered', r.code === 3 && calls.length === 1 && waits.length === 0, r);
  }
  // 5. W.api itself does not retry.
  {
    const calls = [];
    const { W } = load([busy('1')], calls);
    const r = await W.api('POST', '/x', {});
    check('api unchanged', r.code === 1 && calls.length === 1, r);
  }
  console.log(JSON.stringify({ ok: problems.length === 0, problems, cases }));
}
main().catch((e) => { console.log(JSON.stringify({ ok: false, problems: [String(e && e.stack || e)] })); });
