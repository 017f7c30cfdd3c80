/* wolive floating 客服 button. Paste on any page:
 *   <a href='https://kefu.example.com' visiter_id='' visiter_name='' avatar=''
 *      business_id='admin' id='workerman-kefu'></a>
 *   <script src='https://kefu.example.com/assets/index/kefu_online.js'></script>
 * Empty attributes get defaults; a visitor keeps its id across visits (localStorage).
 * A PC opens the chat in a window of its own; a phone opens it as the page (the window has a
 * way back). No dependencies. The button lives in a Shadow DOM with `all: initial` on its
 * host, so the host page's CSS cannot reach it and it cannot reach the page; it takes a
 * 60x60 corner and nothing else. Included twice, or on a page without the anchor: no-op. */
(function () {
  'use strict';
  if (window.__woliveKefu) { return; }
  window.__woliveKefu = true;
  // Known only while this script runs (not in a DOMContentLoaded callback).
  var me = document.currentScript;

  var PHONE = '(max-width: 768px)';
  function isPhone() { return !!(window.matchMedia && window.matchMedia(PHONE).matches); }

  function start() {
    try {
      var a = document.getElementById('workerman-kefu');
      if (!a || !document.body) { return; }
      setup(a);
    } catch (e) {
      if (window.console) { window.console.warn('wolive kefu_online.js:', e); }
    }
  }

  function setup(a) {
    var base = (a.getAttribute('href') || '').replace(/\/+$/, '');
    if (!/^https?:\/\//i.test(base)) {
      var s = me || document.querySelector('script[src*="kefu_online.js"]');
      base = s && s.src ? s.src.replace(/\/assets\/index\/kefu_online\.js.*$/, '') : '';
    }
    var business = a.getAttribute('business_id') || 'admin';
    var visiter = a.getAttribute('visiter_id') || '';
    if (!visiter) { visiter = storedId(business); }
    var label = '在线客服 · Chat with us';
    var icon = base + '/assets/images/index/im.png';

    // The host: fixed, 60x60, nothing of the page's CSS applies (inline !important wins).
    var host = document.createElement('div');
    host.id = 'wolive-kefu';
    var spacer = document.createElement('div');  // room at the page's end on a phone
    spacer.setAttribute('aria-hidden', 'true');
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
        'display: block !important; margin: 0 !important; padding: 0 !important;' +
        'transform: none !important; pointer-events: auto !important;';
      spacer.style.cssText = 'all: initial !important; display: block !important;' +
        'height: ' + (phone ? '88px' : '0') + ' !important; pointer-events: none !important;';
    }
    place();
    if (window.matchMedia) {
      var mq = window.matchMedia(PHONE);
      if (mq.addEventListener) { mq.addEventListener('change', place); }
      else if (mq.addListener) { mq.addListener(place); }
    }

    var box = document.createElement('button');
    box.type = 'button';
    box.className = 'kefu_box';
    box.setAttribute('aria-label', label);
    box.title = label;
    var root = host.attachShadow ? host.attachShadow({ mode: 'open' }) : null;
    if (root) {
      var st = document.createElement('style');
      st.textContent =
        ':host { all: initial; }' +
        '.kefu_box { all: initial; box-sizing: border-box; display: block; width: 60px;' +
        ' height: 60px; border-radius: 50%; cursor: pointer; text-align: center;' +
        ' background: #0f766e url("' + icon.replace(/["\\\n]/g, '') + '") no-repeat center / cover;' +
        ' box-shadow: 0 4px 14px rgba(0,0,0,.25); transition: transform .15s, box-shadow .15s; }' +
        '.kefu_box:hover { transform: scale(1.06); box-shadow: 0 6px 18px rgba(0,0,0,.3); }' +
        '.kefu_box:focus-visible { outline: 3px solid #f59e0b; outline-offset: 3px; }' +
        '@media (prefers-reduced-motion: reduce) { .kefu_box { transition: none; } }';
      root.appendChild(st);
      root.appendChild(box);
    } else {  // old browsers: the document's .kefu_box CSS, inline
      box.style.cssText = 'all: initial; display: block; width: 60px; height: 60px;' +
        'cursor: pointer; border-radius: 50%; box-shadow: 0 4px 14px rgba(0,0,0,.25);' +
        'background: url("' + icon.replace(/["\\\n]/g, '') + '") no-repeat center / cover;';
      host.appendChild(box);
    }

    box.addEventListener('click', function () {
      var q = ['business_id=' + enc(business), 'visiter_id=' + enc(visiter),
               'visiter_name=' + enc(a.getAttribute('visiter_name') || ''),
               'avatar=' + enc(a.getAttribute('avatar') || ''),
               'from_url=' + enc(location.href.slice(0, 1000))];
      if (a.getAttribute('special')) { q.push('special=' + enc(a.getAttribute('special'))); }
      var url = base + '/index/index/home?' + q.join('&');
      if (isPhone()) { location.href = url; return; }
      var w = window.open(url, 'wolive_' + business.replace(/\W/g, '_'),
        'width=440,height=680,left=' + Math.max(0, screen.width - 480) + ',top=80,resizable=yes');
      if (!w) { location.href = url; } else { try { w.focus(); } catch (e) { /* ignore */ } }
    });
    document.body.appendChild(spacer);
    document.body.appendChild(host);
  }

  function enc(v) { return encodeURIComponent(v); }

  function storedId(business) {
    var key = 'wolive_visiter_id:' + business, id = null;
    try { id = localStorage.getItem(key); } catch (e) { id = null; }
    if (!id || !/^[A-Za-z0-9_\-.:@]{1,200}$/.test(id)) {
      var bytes = new Uint8Array(12);
      (window.crypto || window.msCrypto).getRandomValues(bytes);
      id = 'v' + Array.prototype.map.call(bytes, function (b) {
        return ('0' + b.toString(16)).slice(-2); }).join('');
      try { localStorage.setItem(key, id); } catch (e) { /* private mode: one visit only */ }
    }
    return id;
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else { start(); }
})();
