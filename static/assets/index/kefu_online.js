/* wolive floating 客服 button. Paste on any page:
 *   <a href='https://kefu.example.com' visiter_id='' visiter_name='' avatar=''
 *      business_id='admin' id='workerman-kefu'></a>
 *   <script src='https://kefu.example.com/assets/index/kefu_online.js'></script>
 * Empty attributes get defaults; a visitor keeps its id across visits (localStorage).
 * No dependencies; touches nothing of the host page but the one button it adds. */
(function () {
  'use strict';
  if (window.__woliveKefu) { return; }
  window.__woliveKefu = true;

  function start() {
    var a = document.getElementById('workerman-kefu');
    if (!a) { return; }
    var base = (a.getAttribute('href') || '').replace(/\/+$/, '');
    if (!/^https?:\/\//i.test(base)) {
      var me = document.currentScript || document.querySelector('script[src*="kefu_online.js"]');
      base = me ? me.src.replace(/\/assets\/index\/kefu_online\.js.*$/, '') : '';
    }
    var business = a.getAttribute('business_id') || 'admin';
    var visiter = a.getAttribute('visiter_id') || '';
    if (!visiter) { visiter = storedId(business); }

    var box = document.createElement('button');
    box.type = 'button';
    box.className = 'kefu_box';
    box.setAttribute('aria-label', '在线客服 · Chat with us');
    box.title = '在线客服 · Chat with us';
    var s = box.style;  // the document's .kefu_box CSS, kept inline so host CSS cannot break it
    s.zIndex = '2147483000'; s.width = '60px'; s.height = '60px'; s.cursor = 'pointer';
    s.position = 'fixed'; s.top = '60%'; s.right = '5%'; s.border = '0'; s.padding = '0';
    s.borderRadius = '50%'; s.boxShadow = '0 4px 14px rgba(0,0,0,.25)';
    s.background = 'url("' + base + '/assets/images/index/im.png") no-repeat center / cover';
    box.addEventListener('click', function () {
      var q = ['business_id=' + enc(business), 'visiter_id=' + enc(visiter),
               'visiter_name=' + enc(a.getAttribute('visiter_name') || ''),
               'avatar=' + enc(a.getAttribute('avatar') || ''),
               'from_url=' + enc(location.href.slice(0, 1000))];
      if (a.getAttribute('special')) { q.push('special=' + enc(a.getAttribute('special'))); }
      var url = base + '/index/index/home?' + q.join('&');
      var phone = window.matchMedia && window.matchMedia('(max-width: 768px)').matches;
      if (phone) { location.href = url; return; }
      var w = window.open(url, 'wolive_' + business,
        'width=440,height=680,left=' + Math.max(0, screen.width - 480) + ',top=80,resizable=yes');
      if (!w) { location.href = url; } else { try { w.focus(); } catch (e) { /* ignore */ } }
    });
    document.body.appendChild(box);
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
