// Drives the pages' own typing throttle (static/assets/js/typing.js) on a virtual clock with
// many seeded, human-paced sequences of keys, sent lines, conversation switches and pauses,
// and checks what the server would see: never more than 2 signals in any second (the
// server's sliding window, realtime/chat/signals.py), never two closer than the gap, no "typing"
// left shown after the keys stop, and a steady typist refreshed often enough for the other
// side's display (5 s on the visitor window, 8 s in the console).
// Prints one JSON line: {ok, runs, signals, problems}.
'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');

const SOURCE = fs.readFileSync(
  path.join(__dirname, '..', '..', 'static', 'assets', 'js', 'typing.js'), 'utf8');

function clockedWindow() {
  let now = 0;
  let seq = 0;
  const timers = new Map();
  const win = {
    setTimeout(fn, ms) { const id = ++seq; timers.set(id, { at: now + Math.max(0, ms || 0), fn, id }); return id; },
    clearTimeout(id) { timers.delete(id); },
  };
  win.window = win;
  const clock = {
    get now() { return now; },
    advance(ms) {
      const end = now + ms;
      for (;;) {
        let next = null;
        for (const t of timers.values()) {
          if (t.at <= end && (!next || t.at < next.at || (t.at === next.at && t.id < next.id))) { next = t; }
        }
        if (!next) { break; }
        timers.delete(next.id);
        now = next.at;
        next.fn();
      }
      now = end;
    },
  };
  return { win, clock };
}

function rng(seed) {  // mulberry32
  return function () {
    seed |= 0; seed = seed + 0x6D2B79F5 | 0;
    let t = Math.imul(seed ^ seed >>> 15, 1 | seed);
    t = t + Math.imul(t ^ t >>> 7, 61 | t) ^ t;
    return ((t ^ t >>> 14) >>> 0) / 4294967296;
  };
}

const problems = [];
let total = 0;
const RUNS = 300;
for (let run = 0; run < RUNS; run++) {
  const { win, clock } = clockedWindow();
  vm.runInNewContext(SOURCE, { window: win, setTimeout: win.setTimeout, clearTimeout: win.clearTimeout });
  const W = win.Wolive;
  const sent = [];
  const shown = {};
  const ts = W.typingSignal((target, on) => { sent.push([clock.now, target, on]); shown[target] = on; },
                            { now: () => clock.now });
  const r = rng(run + 1);
  const targets = run % 3 === 0 ? ['v1'] : ['v1', 'v2', 'v3'];
  let target = targets[0];
  for (let step = 0; step < 400; step++) {
    const x = r();
    if (x < 0.80) {           // a key, 30-250 ms after the last (fast typing)
      ts.key(target);
      clock.advance(30 + Math.floor(r() * 220));
    } else if (x < 0.90) {    // Enter: the line is sent
      ts.sent();
      shown[target] = false;  // the message itself ends the other side's typing line
      clock.advance(20 + Math.floor(r() * 200));
    } else if (x < 0.96) {    // another conversation
      target = targets[Math.floor(r() * targets.length)];
      ts.stop();
      clock.advance(50 + Math.floor(r() * 300));
    } else {                  // a pause
      clock.advance(500 + Math.floor(r() * 5000));
    }
  }
  clock.advance(10000);        // keys stopped: everything settles
  total += sent.length;
  for (let i = 0; i < sent.length; i++) {
    const inWindow = sent.filter(s => s[0] > sent[i][0] - 1000 && s[0] <= sent[i][0]).length;
    if (inWindow > 2) { problems.push(`run ${run}: ${inWindow} signals in the second up to ${sent[i][0]} ms`); }
    if (i && sent[i][0] - sent[i - 1][0] < W.TYPING_GAP_MS) {
      problems.push(`run ${run}: signals ${sent[i][0] - sent[i - 1][0]} ms apart`);
    }
  }
  Object.keys(shown).forEach(t => {
    if (shown[t]) { problems.push(`run ${run}: ${t} left shown as typing`); }
  });
}

// A steady typist on one conversation for 20 s: told again at least every 4 s.
{
  const { win, clock } = clockedWindow();
  vm.runInNewContext(SOURCE, { window: win, setTimeout: win.setTimeout, clearTimeout: win.clearTimeout });
  const sent = [];
  const ts = win.Wolive.typingSignal((target, on) => sent.push([clock.now, on]), { now: () => clock.now });
  for (let ms = 0; ms < 20000; ms += 120) { ts.key('v1'); clock.advance(120); }
  const ons = sent.filter(s => s[1]).map(s => s[0]);
  for (let i = 1; i < ons.length; i++) {
    if (ons[i] - ons[i - 1] > 4000) { problems.push(`steady typist: ${ons[i] - ons[i - 1]} ms without "typing"`); }
  }
  if (ons.length < 5) { problems.push(`steady typist: only ${ons.length} "typing" signals in 20 s`); }
  if (sent.filter(s => !s[1]).length) { problems.push('steady typist: told "stopped" while typing'); }
  clock.advance(5000);
  if (!sent.length || sent[sent.length - 1][1]) { problems.push('steady typist: no "stopped" after the keys'); }
}

console.log(JSON.stringify({ ok: problems.length === 0, runs: RUNS, signals: total,
                             problems: problems.slice(0, 20) }));
