/* The chat window inside a site's page (the panel of static/assets/index/kefu_online.js).
 *
 * Active only when the window was opened as `/index/index/home?...&embed=<origin>` (boot
 * `embed`, an origin the server checked) and runs in a frame. Then `Wolive.embed` is:
 *   open          true while the panel is shown (the page says so: messages `open`/`close`)
 *   agent(n, on)  n new messages from the agent: the page is told (`agent`, count, sound on)
 *                 and shows a badge and plays the sound while the panel is closed
 *   onOpen(fn)    fn() each time the panel opens (visitor.js: read receipts, scroll)
 *   whenOpen(fn)  fn() now if the panel is open, else once when it first opens (visitor.js:
 *                 the visitor asks for an agent only then)
 * The close button in the header and Escape ask the page to close the panel (`close`).
 *
 * Messages go to the parent window at exactly the `embed` origin; messages are taken only
 * from the parent window at that origin, and only as data (a type), never as HTML.
 * Outside a frame, or without `embed`, nothing here runs and the window works as before. */
(function () {
  'use strict';
  var W = window.Wolive;
  var bootEl = document.getElementById('boot');
  var boot = bootEl ? JSON.parse(bootEl.textContent) : {};
  var hostOrigin = typeof boot.embed === 'string' ? boot.embed : '';
  if (!hostOrigin || window.parent === window) { return; }

  var handlers = [];
  var embed = W.embed = {
    open: false,
    agent: function (n, soundOn) {
      tell({ type: 'agent', count: n, sound: !!soundOn });
    },
    onOpen: function (fn) { handlers.push(fn); },
    whenOpen: function (fn) { if (embed.open) { fn(); } else { once.push(fn); } }
  };
  var once = [];
  function tell(msg) {
    msg.wolive = 1;
    try { window.parent.postMessage(msg, hostOrigin); } catch (e) { /* page gone */ }
  }
  window.addEventListener('message', function (e) {
    if (e.source !== window.parent || e.origin !== hostOrigin) { return; }
    var d = e.data;
    if (!d || typeof d !== 'object' || d.wolive !== 1) { return; }
    if (d.type === 'open') {
      embed.open = true;
      document.documentElement.classList.add('embed-open');
      // Focus on the input; while it waits for an agent (disabled), on the close button
      // until the input can take it.
      if (!focusInput()) { focusLater = true; if (close) { close.focus(); } }
      handlers.concat(once.splice(0)).forEach(function (fn) {
        try { fn(); } catch (x) { /* next */ }
      });
    } else if (d.type === 'close') {
      embed.open = false; focusLater = false;
      document.documentElement.classList.remove('embed-open');
    }
  });

  var input = document.getElementById('input'), focusLater = false;
  function focusInput() {
    if (!input || input.disabled) { return false; }
    try { input.focus(); } catch (x) { return false; }
    return true;
  }
  if (input && window.MutationObserver) {
    new MutationObserver(function () {
      if (focusLater && embed.open && focusInput()) { focusLater = false; }
    }).observe(input, { attributes: true, attributeFilter: ['disabled'] });
  }
  document.documentElement.classList.add('embed');
  var close = document.getElementById('close-btn');
  if (close) {
    close.hidden = false;
    close.addEventListener('click', function () { tell({ type: 'close' }); });
  }
  document.addEventListener('keydown', function (e) {
    var pop = document.getElementById('emoji-pop');
    if (e.key === 'Escape' && (!pop || pop.hidden)) { tell({ type: 'close' }); }
  });
  // Who this browser is, for the page to keep (its cookie may be blocked in a cross-site
  // frame): sent only to the checked origin, only when the server issued a new token.
  var ident = boot.identity;
  if (ident && typeof ident.visiter_id === 'string' && typeof ident.token === 'string') {
    tell({ type: 'identity', visiter_id: ident.visiter_id, token: ident.token });
  }
  // Ready once every script of the window has run (visitor.js disables the input while it
  // waits for an agent; focus given before that would be lost).
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', function () { tell({ type: 'ready' }); });
  } else { tell({ type: 'ready' }); }
})();
