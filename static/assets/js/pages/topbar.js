/* The shared console top bar (templates/topbar.html): marks the current page's link, switches
 * the language (Wolive.i18n.set). The connection and available / away state are presence.js's.
 * Loaded with `defer`; brings in i18n.js itself if the page has not. */
(function () {
  'use strict';
  var DICT = {
    zh: {
      'tb.nav': '控制台导航', 'tb.workbench': '工作台', 'tb.history': '历史记录',
      'tb.messages': '留言', 'tb.agents': '客服管理', 'tb.profile': '个人资料',
      'tb.settings': '设置', 'tb.businesses': '商户', 'tb.embed': '嵌入代码', 'tb.reports': '报表',
      'tb.logout': '退出', 'tb.conn': '连接状态', 'tb.connecting': '连接中',
      'tb.langTitle': '切换语言 · Language', 'tb.lang': 'EN'
    },
    en: {
      'tb.nav': 'Console navigation', 'tb.workbench': 'Workbench', 'tb.history': 'History',
      'tb.messages': 'Messages', 'tb.agents': 'Agents', 'tb.profile': 'My profile',
      'tb.settings': 'Settings', 'tb.businesses': 'Businesses', 'tb.embed': 'Embed code', 'tb.reports': 'Reports',
      'tb.logout': 'Log out', 'tb.conn': 'Connection', 'tb.connecting': 'Connecting',
      'tb.langTitle': '切换语言 · Language', 'tb.lang': '中文'
    }
  };

  function init() {
    var W = window.Wolive, i18n = W.i18n;
    i18n.add(DICT);
    var bar = document.getElementById('topbar');
    if (!bar) { return; }
    var btn = document.getElementById('lang-switch');
    var path = location.pathname.replace(/\/+$/, '');
    if (path === '/admin' || path === '/admin/index' || path === '') { path = '/admin/index/index'; }
    bar.querySelectorAll('.topnav a').forEach(function (a) {
      if (a.getAttribute('href') === path) { a.setAttribute('aria-current', 'page'); }
    });
    function paint() {
      if (btn) {
        btn.textContent = i18n.t('tb.lang');
        btn.title = i18n.t('tb.langTitle');
      }
      i18n.apply(bar);
    }
    if (btn) {
      btn.addEventListener('click', function () { i18n.set(i18n.lang === 'zh' ? 'en' : 'zh'); });
    }
    i18n.onChange(paint);
    paint();
    // "Log out" in one tab ends the session of the whole browser (one cookie): its other
    // console tabs go to the sign-in page too, so none keeps the agent online with a
    // console that can no longer answer (their sockets close; offline after the grace).
    // The others are told once the session has ended (told earlier, a tab would reach the
    // sign-in page still signed in and be sent back to the console).
    var out = bar.querySelector('form[action="/admin/login/logout"]');
    if (out && window.fetch && window.FormData) {
      out.addEventListener('submit', function (ev) {
        ev.preventDefault();
        fetch(out.action, { method: 'POST', body: new FormData(out), credentials: 'same-origin',
                            headers: { Accept: 'application/json' } }).then(function () {
          try { localStorage.setItem('wolive-logout', String(Date.now())); } catch (e) { /* private mode */ }
          W.toSignIn();
        }, function () { out.submit(); });
      });
    }
    window.addEventListener('storage', function (e) {
      if (e.key === 'wolive-logout' && e.newValue) { W.toSignIn(); }
    });
    var nav = document.getElementById('topnav');
    var cur = bar.querySelector('.topnav a[aria-current]');
    if (nav && cur && nav.scrollWidth > nav.clientWidth) {  // the current page's link in view
      var n = nav.getBoundingClientRect(), c = cur.getBoundingClientRect();
      nav.scrollLeft += (c.left + c.width / 2) - (n.left + n.width / 2);
    }
    scrollHints(nav);
  }

  /* A nav that does not fit scrolls sideways: `more-start` / `more-end` on it while links
   * are hidden on that side (the CSS fades that edge), kept up to date on scroll, resize and
   * a language switch. A focused link is scrolled into view (keyboard users). */
  function scrollHints(nav) {
    if (!nav) { return; }
    function paint() {
      var links = nav.querySelectorAll('a');
      if (!links.length) { return; }
      var box = nav.getBoundingClientRect();
      var first = links[0].getBoundingClientRect(), last = links[links.length - 1].getBoundingClientRect();
      nav.classList.toggle('more-start', first.left < box.left - 1);
      nav.classList.toggle('more-end', last.right > box.right + 1);
    }
    nav.addEventListener('scroll', paint, { passive: true });
    window.addEventListener('resize', paint);
    window.Wolive.i18n.onChange(function () { setTimeout(paint, 0); });
    nav.addEventListener('focusin', function (e) {
      if (e.target.scrollIntoView) { e.target.scrollIntoView({ block: 'nearest', inline: 'nearest' }); }
    });
    paint();
  }

  if (window.Wolive && window.Wolive.i18n) { init(); return; }
  var s = document.createElement('script');
  s.src = '/assets/js/i18n.js';
  s.onload = init;
  document.head.appendChild(s);
})();
