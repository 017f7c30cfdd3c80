/* Typing signals, throttled on the client: the server allows 4 typing calls in any
 * 2 seconds per sender (realtime/chat/signals.py, TYPING_LIMIT) and answers 429 over it; a person
 * typing fast, sending short lines one after another or switching conversations must never
 * get there. Used by the console (/admin/set/typing) and the visitor window
 * (/admin/event/typing).
 *
 *   var typing = Wolive.typingSignal(function (target, on) { ... POST ... }, opts);
 *   typing.key(target)   on every keystroke that leaves text in the box (target: the
 *                        conversation, e.g. a visiter_id; the visitor window passes one);
 *   typing.sent()        when the text was sent: the message itself ends the other side's
 *                        "typing" line, so nothing is sent for it;
 *   typing.stop()        when the conversation is left (or the box is emptied).
 *
 * Rules: while the other side is shown "typing", it is told again at most once per `everyMs`
 * however fast keys are pressed; "stopped" (on = false) once after `idleMs` without a key, or
 * at stop(), and only while the other side was told "typing"; at least `gapMs` between any
 * two signals of the page, whatever their target (a signal waits its turn; a newer wish for
 * the same target replaces one still waiting). So one page sends at most two signals in any
 * second. Times in milliseconds. */
(function (root) {
  'use strict';
  var W = root.Wolive = root.Wolive || {};

  W.TYPING_EVERY_MS = 3000;  // one "typing" per target per 3 s: the other side shows it for 5-8 s
  W.TYPING_IDLE_MS = 3000;   // "stopped" 3 s after the last key
  W.TYPING_GAP_MS = 700;     // > 500 ms: two per second at most, with room for network jitter

  W.typingSignal = function (send, opts) {
    var o = opts || {};
    var everyMs = o.everyMs || W.TYPING_EVERY_MS;
    var idleMs = o.idleMs || W.TYPING_IDLE_MS;
    var gapMs = o.gapMs || W.TYPING_GAP_MS;
    var now = o.now || function () { return Date.now(); };
    var lastOn = {};     // target -> when "typing" was last sent
    var shown = {};      // target -> true while the other side was last told "typing"
    var current = null;  // the target keys go to
    var idle = null;     // timer: "stopped" after idleMs
    var queue = [];      // [{target, on}] waiting for the gap, one per target at most
    var timer = null;
    var lastSent = -Infinity;
    var self = { count: 0 };

    function drain() {
      timer = null;
      if (!queue.length) { return; }
      var wait = lastSent + gapMs - now();
      if (wait > 0) { timer = setTimeout(drain, wait); return; }
      var p = queue.shift();
      if (p.on) { lastOn[p.target] = now(); shown[p.target] = true; } else { delete shown[p.target]; }
      lastSent = now();
      self.count++;
      send(p.target, p.on);
      if (queue.length) { timer = setTimeout(drain, gapMs); }
    }
    function want(target, on) {
      // A newer wish for a target replaces the one still waiting.
      queue = queue.filter(function (p) { return p.target !== target; });
      if (!on && !shown[target]) { return; }  // the other side already sees "stopped"
      // Still shown and told less than everyMs ago: nothing is missing.
      if (on && shown[target] && now() - lastOn[target] < everyMs) { return; }
      queue.push({ target: target, on: on });
      if (!timer) { drain(); }
    }

    self.key = function (target) {
      if (current !== null && current !== target) { self.stop(); }
      current = target;
      clearTimeout(idle);
      idle = setTimeout(function () { idle = null; self.stop(); }, idleMs);
      want(target, true);
    };
    self.sent = function () {
      clearTimeout(idle);
      idle = null;
      var target = current;
      current = null;
      if (target === null) { return; }
      queue = queue.filter(function (p) { return p.target !== target; });
      delete shown[target];
    };
    self.stop = function () {
      clearTimeout(idle);
      idle = null;
      var target = current;
      current = null;
      if (target !== null) { want(target, false); }
    };
    return self;
  };
})(window);
