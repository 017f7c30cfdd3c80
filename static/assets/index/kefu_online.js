/* wolive floating 客服 button and in-page chat panel. Paste on any page:
 *   <a href='https://kefu.example.com' visiter_id='' visiter_name='' avatar=''
 *      business_id='admin' id='workerman-kefu'></a>
 *   <script src='https://kefu.example.com/assets/index/kefu_online.js'></script>
 * Empty attributes get defaults; a visitor keeps its id across visits (localStorage).
 * `visiter_sign` (hex HMAC-SHA256 of visiter_id with the business's identity secret, made
 * by the site's server) lets a site's own user id reattach in any browser (docs/api.md, "Visitor identity").
 *
 * The button opens a chat panel on the page: an iframe of the chat window
 * (/index/index/home?...&embed=<this page's origin>) from the wolive origin, so the page's CSS
 * and scripts cannot reach the chat, nor the chat the page. On a PC the panel (380 x up to
 * 640 px) opens beside the button; on a phone (<= 768 px wide) it fills the screen and has
 * its own close button. Closed, the panel takes no room and no clicks: only the 60x60 button
 * does. While it is closed, an agent's reply shows an unread count on the button, plays the
 * chat window's sound (if its sound switch is on) and blinks "(n) 新消息" in the page title.
 *
 * When the chat is loaded: at the first hover, focus or click of the button; and at page load
 * for a visitor who has opened the panel before on this site (so replies reach them while the
 * panel is closed). A visitor who never opens it costs the site one small script and image.
 *
 * `mode='popup'` on the anchor keeps WoLive's behaviour: a window of its own on a PC, the
 * chat as the page on a phone (and the panel when the browser blocks the window).
 *
 * The page and the panel talk with postMessage, both sides checking the other's window and
 * exact origin; what they send is plain data (a type and a count; from the chat, once, the
 * visitor's identity token to keep), never HTML. Works under a
 * strict Content-Security-Policy that allows the wolive origin in script-src, frame-src and
 * img-src: no inline scripts, no <style> elements (styles go through the CSSOM and
 * constructable stylesheets). The button and the panel live in Shadow DOM with `all: initial`
 * on their hosts. Included twice, or on a page without the anchor: no-op. */
(function () {
  'use strict';
  if (window.__woliveKefu) { return; }
  window.__woliveKefu = true;
  // Known only while this script runs (not in a DOMContentLoaded callback).
  var me = document.currentScript;

  var PHONE = '(max-width: 768px)';
  function isPhone() { return !!(window.matchMedia && window.matchMedia(PHONE).matches); }

  var ZH = /^zh/i.test(document.documentElement.lang || navigator.language || 'zh');
  var TEXT = ZH ? {
    label: '在线客服 · Chat with us', close: '关闭在线客服', panel: '在线客服',
    unread: function (n) { return n + ' 条新消息'; },
    title: function (n) { return '(' + n + ') 新消息'; }
  } : {
    label: '在线客服 · Chat with us', close: 'Close the chat', panel: 'Chat with us',
    unread: function (n) { return n === 1 ? '1 new message' : n + ' new messages'; },
    title: function (n) { return '(' + n + ') New message' + (n === 1 ? '' : 's'); }
  };

  function start() {
    try {
      var a = document.getElementById('workerman-kefu');
      if (!a || !document.body) { return; }
      setup(a);
    } catch (e) {
      if (window.console) { window.console.warn('wolive kefu_online.js:', e); }
    }
  }

  /* Rules the CSSOM cannot set on an element (:hover, :focus-visible, media queries): a
   * constructable stylesheet, which a host page's style-src does not block. */
  var EXTRA_CSS =
    '.kefu_box:hover { transform: scale(1.06); box-shadow: 0 6px 18px rgba(0,0,0,.3); }' +
    '.kefu_box:focus-visible { outline: 3px solid #f59e0b; outline-offset: 3px; }' +
    '@media (prefers-reduced-motion: reduce) { .kefu_box { transition: none; } }';
  function adopt(root) {
    try {
      if (root && 'adoptedStyleSheets' in root && window.CSSStyleSheet) {
        var sheet = new CSSStyleSheet();
        sheet.replaceSync(EXTRA_CSS);
        root.adoptedStyleSheets = [sheet];
      }
    } catch (e) { /* only hover and focus looks are lost */ }
  }

  function setup(a) {
    var base = (a.getAttribute('href') || '').replace(/\/+$/, '');
    if (!/^https?:\/\//i.test(base)) {
      var s = me || document.querySelector('script[src*="kefu_online.js"]');
      base = s && s.src ? s.src.replace(/\/assets\/index\/kefu_online\.js.*$/, '') : '';
    }
    var origin = '';
    try { origin = new URL(base).origin; } catch (e) { origin = ''; }
    var business = a.getAttribute('business_id') || 'admin';
    // Identity: the visitor's token for this site is kept here (the panel is
    // cross-site: its cookie may be blocked) and handed to the window in the URL fragment,
    // never in a query (logs, Referer). Without an id the server makes one (`identity`).
    var asked = a.getAttribute('visiter_id') || '';
    var sign = a.getAttribute('visiter_sign') || '';
    var idKey = 'wolive_identity:' + business + ':' + asked;
    var mine = storedIdentity(idKey);
    var visiter = asked || (mine ? mine.id : legacyId(business));
    var icon = base + '/assets/images/index/im.png';
    // A page of an opaque origin (a sandboxed frame) cannot be written to by postMessage:
    // there, and when asked to, the chat opens as WoLive's window.
    var popupMode = /^popup$/i.test(a.getAttribute('mode') || '') ||
      !origin || !window.postMessage || window.origin === 'null' || location.origin === 'null';
    var seenKey = 'wolive_panel_used:' + business;

    // ---- the button: fixed, 60x60, nothing of the page's CSS applies (CSSOM !important) ----
    var host = document.createElement('div');
    host.id = 'wolive-kefu';
    var spacer = document.createElement('div');  // room at the page's end on a phone
    spacer.setAttribute('aria-hidden', 'true');
    var box = document.createElement('button');
    var badge = document.createElement('span');
    var panel = null, frame = null, ready = false, open = false, unread = 0;

    function place() {
      var phone = isPhone();
      var pos = phone
        ? 'right: calc(16px + env(safe-area-inset-right, 0px)) !important;' +
          'bottom: calc(16px + env(safe-area-inset-bottom, 0px)) !important;' +
          'top: auto !important; left: auto !important;'
        : 'top: 60% !important; right: 5% !important; bottom: auto !important;' +
          'left: auto !important;';
      host.style.cssText = 'all: initial !important; position: fixed !important;' + pos +
        'width: 60px !important; height: 60px !important; z-index: 2147483000 !important;' +
        'display: ' + (phone && open ? 'none' : 'block') + ' !important;' +
        'margin: 0 !important; padding: 0 !important;' +
        'transform: none !important; pointer-events: auto !important;';
      spacer.style.cssText = 'all: initial !important; display: block !important;' +
        'height: ' + (phone ? '88px' : '0') + ' !important; pointer-events: none !important;';
      if (panel) { placePanel(phone); }
    }
    function placePanel(phone) {
      var where = phone
        ? 'top: 0 !important; left: 0 !important; right: 0 !important; bottom: 0 !important;' +
          'width: auto !important; height: auto !important; border-radius: 0 !important;'
        : 'top: auto !important; left: auto !important; right: calc(5% + 72px) !important;' +
          'bottom: 16px !important; width: 380px !important;' +
          'max-width: calc(95vw - 88px) !important;' +
          'height: min(640px, calc(100vh - 32px)) !important; border-radius: 12px !important;' +
          'box-shadow: 0 12px 40px rgba(15,23,42,.28) !important;';
      panel.style.cssText = 'all: initial !important; position: fixed !important;' + where +
        'z-index: 2147483001 !important; display: block !important; overflow: hidden !important;' +
        'margin: 0 !important; padding: 0 !important; background: #fff !important;' +
        'transform: none !important;' +
        (open ? 'visibility: visible !important; pointer-events: auto !important;'
              : 'visibility: hidden !important; pointer-events: none !important;');
    }
    place();
    if (window.matchMedia) {
      var mq = window.matchMedia(PHONE);
      if (mq.addEventListener) { mq.addEventListener('change', place); }
      else if (mq.addListener) { mq.addListener(place); }
    }

    box.type = 'button';
    box.className = 'kefu_box';
    box.title = TEXT.label;
    if (!popupMode) { box.setAttribute('aria-expanded', 'false'); }
    box.style.cssText = 'all: initial; box-sizing: border-box; display: block; position: relative;' +
      'width: 60px; height: 60px; border-radius: 50%; cursor: pointer; text-align: center;' +
      'background: #0f766e url("' + icon.replace(/["\\\n]/g, '') + '") no-repeat center / cover;' +
      'box-shadow: 0 4px 14px rgba(0,0,0,.25); transition: transform .15s, box-shadow .15s;';
    badge.className = 'badge';
    badge.setAttribute('aria-hidden', 'true');
    badge.style.cssText = 'all: initial; position: absolute; top: -4px; right: -4px;' +
      'min-width: 22px; height: 22px; padding: 0 6px; box-sizing: border-box;' +
      'border-radius: 11px; background: #dc2626; color: #fff; border: 2px solid #fff;' +
      'font: 700 12px/18px system-ui, -apple-system, "Segoe UI", sans-serif;' +
      'text-align: center; display: none;';
    box.appendChild(badge);
    renderBadge();
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : null;
    adopt(root);
    (root || host).appendChild(box);

    function renderBadge() {
      badge.textContent = unread > 99 ? '99+' : String(unread);
      badge.style.display = unread > 0 ? 'block' : 'none';
      box.setAttribute('aria-label', unread > 0 ? TEXT.label + ' (' + TEXT.unread(unread) + ')'
                                                : TEXT.label);
    }

    // ---- the title notice: "(n) 新消息" and the page's own title, in turn, every second ---
    var ownTitle = null, blink = null, blinkOn = false;
    function titleNotice() {
      if (ownTitle === null) { ownTitle = document.title; }
      if (blink) { return; }
      blinkOn = true;
      document.title = TEXT.title(unread);
      blink = setInterval(function () {
        blinkOn = !blinkOn;
        document.title = blinkOn ? TEXT.title(unread) : ownTitle;
      }, 1000);
    }
    function titleRestore() {
      if (blink) { clearInterval(blink); blink = null; }
      if (ownTitle !== null) { document.title = ownTitle; ownTitle = null; }
    }

    // ---- the sound: the chat window's two-tone ding, played here (the page has the user's
    // gesture; a frame that was never clicked may not play sound) --------------------------
    var audio = null;
    function ding() {
      try {
        audio = audio || new (window.AudioContext || window.webkitAudioContext)();
        var o = audio.createOscillator(), g = audio.createGain(), t = audio.currentTime;
        o.type = 'sine'; o.frequency.setValueAtTime(880, t); o.frequency.setValueAtTime(1320, t + 0.09);
        g.gain.setValueAtTime(0.0001, t); g.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
        g.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
        o.connect(g); g.connect(audio.destination); o.start(t); o.stop(t + 0.32);
      } catch (e) { /* no audio: fine */ }
    }

    function chatUrl(embed) {
      var q = ['business_id=' + enc(business), 'visiter_id=' + enc(visiter),
               'visiter_name=' + enc(a.getAttribute('visiter_name') || ''),
               'avatar=' + enc(a.getAttribute('avatar') || ''),
               'from_url=' + enc(location.href.slice(0, 1000))];
      if (a.getAttribute('special')) { q.push('special=' + enc(a.getAttribute('special'))); }
      if (sign) { q.push('visiter_sign=' + enc(sign)); }
      if (embed) { q.push('embed=' + enc(location.origin)); }
      var hash = mine ? '#vid=' + enc(mine.id) + '&vt=' + enc(mine.t) : '';
      return base + '/index/index/home?' + q.join('&') + hash;
    }

    // ---- the panel ------------------------------------------------------------------------
    function load() {
      if (panel) { return; }
      panel = document.createElement('div');
      panel.id = 'wolive-kefu-panel';
      panel.setAttribute('role', 'dialog');
      panel.setAttribute('aria-label', TEXT.panel);
      frame = document.createElement('iframe');
      frame.title = TEXT.panel;
      frame.setAttribute('allow', 'autoplay; clipboard-write; camera; microphone');
      frame.style.cssText = 'all: initial; visibility: inherit; pointer-events: inherit;' +
        'display: block; width: 100%; height: 100%;' +
        'border: 0; margin: 0; padding: 0; background: #fff;';
      frame.src = chatUrl(true);
      var proot = panel.attachShadow ? panel.attachShadow({ mode: 'open' }) : null;
      (proot || panel).appendChild(frame);
      placePanel(isPhone());
      document.body.appendChild(panel);
    }
    function tell(type) {
      if (ready && frame && frame.contentWindow) {
        frame.contentWindow.postMessage({ wolive: 1, type: type }, origin);
      }
    }
    function setOpen(on, fromKeyboard) {
      if (on) { load(); }
      open = on;
      box.setAttribute('aria-expanded', String(on));
      if (on) {
        unread = 0; renderBadge(); titleRestore();
        try { localStorage.setItem(seenKey, '1'); } catch (e) { /* one visit only */ }
      }
      place();
      tell(on ? 'open' : 'close');
      if (on) {
        try { frame.focus(); } catch (e) { /* ignore */ }
      } else if (fromKeyboard !== false) {
        box.focus();
      }
    }
    window.addEventListener('message', function (e) {
      // Only the panel's own window, from the wolive origin; its data is a type and numbers.
      if (!frame || e.source !== frame.contentWindow || e.origin !== origin) { return; }
      var d = e.data;
      if (!d || typeof d !== 'object' || d.wolive !== 1 || typeof d.type !== 'string') { return; }
      if (d.type === 'ready') {
        ready = true;
        if (open) { try { frame.focus(); } catch (x) { /* ignore */ } }
        tell(open ? 'open' : 'close');
      } else if (d.type === 'close') {
        if (open) { setOpen(false); }
      } else if (d.type === 'identity') {
        // The visitor this browser is, and its token: kept for the next page views.
        if (typeof d.visiter_id === 'string' && ID_RE.test(d.visiter_id) &&
            typeof d.token === 'string' && /^[0-9a-f]{64}$/.test(d.token)) {
          mine = { id: d.visiter_id, t: d.token };
          if (!asked) { visiter = mine.id; }
          try { localStorage.setItem(idKey, JSON.stringify(mine)); } catch (x) { /* one visit */ }
        }
      } else if (d.type === 'agent') {
        var n = Math.max(0, Math.min(1000, Math.floor(Number(d.count) || 0)));
        if (d.sound === true && n > 0) { ding(); }
        if (!open && n > 0) {
          unread = Math.min(unread + n, 1000);
          renderBadge();
          titleNotice();
        }
      }
    });

    function openPopup() {
      var url = chatUrl(false);
      if (isPhone()) { location.href = url; return; }
      var w = window.open(url, 'wolive_' + business.replace(/\W/g, '_'),
        'width=440,height=680,left=' + Math.max(0, screen.width - 480) + ',top=80,resizable=yes');
      if (w) { try { w.focus(); } catch (e) { /* ignore */ } return; }
      // Popups blocked: the panel, so the visitor never leaves the page.
      if (origin && window.origin !== 'null') { setOpen(true); } else { location.href = url; }
    }

    box.addEventListener('click', function () {
      if (popupMode && !panel) { openPopup(); return; }
      setOpen(!open);
    });
    if (!popupMode) {
      // Load ahead of the click; at once for a visitor who has used the panel here before.
      box.addEventListener('pointerenter', load);
      box.addEventListener('focus', load);
      var used = null;
      try { used = localStorage.getItem(seenKey); } catch (e) { used = null; }
      if (used) { load(); }
    }
    document.body.appendChild(spacer);
    document.body.appendChild(host);
  }

  function enc(v) { return encodeURIComponent(v); }

  var ID_RE = /^[A-Za-z0-9_\-.:@]{1,200}$/;

  /* `{id, t}`: the visitor id this browser is on the site and its token, or null. */
  function storedIdentity(key) {
    try {
      var v = JSON.parse(localStorage.getItem(key) || 'null');
      if (v && typeof v.id === 'string' && ID_RE.test(v.id) &&
          typeof v.t === 'string' && /^[0-9a-f]{64}$/.test(v.t)) { return v; }
    } catch (e) { /* none */ }
    return null;
  }

  /* The random id an earlier version of this script made and kept (its conversation goes
   * on), or '' (the server makes one). */
  function legacyId(business) {
    var id = null;
    try { id = localStorage.getItem('wolive_visiter_id:' + business); } catch (e) { id = null; }
    return id && ID_RE.test(id) ? id : '';
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else { start(); }
})();
