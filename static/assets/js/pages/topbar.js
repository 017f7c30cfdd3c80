/* The shared console top bar (templates/topbar.html): marks the current page's link, switches
 * the language (Wolive.i18n.set), and on pages other than the workbench says the agent is not
 * taking chats here. Loaded with `defer`; brings in i18n.js itself if the page has not. */
(function () {
  'use strict';
  var DICT = {
    zh: {
      'tb.nav': '控制台导航', 'tb.workbench': '工作台', 'tb.history': '历史记录',
      'tb.messages': '留言', 'tb.agents': '客服管理', 'tb.profile': '个人资料',
      'tb.settings': '设置', 'tb.businesses': '商户', 'tb.embed': '嵌入代码',
      'tb.logout': '退出', 'tb.conn': '连接状态', 'tb.connecting': '连接中',
      'tb.notHere': '未在接待', 'tb.langTitle': '切换语言 · Language', 'tb.lang': 'EN'
    },
    en: {
      'tb.nav': 'Console navigation', 'tb.workbench': 'Workbench', 'tb.history': 'History',
      'tb.messages': 'Messages', 'tb.agents': 'Agents', 'tb.profile': 'My profile',
      'tb.settings': 'Settings', 'tb.businesses': 'Businesses', 'tb.embed': 'Embed code',
      'tb.logout': 'Log out', 'tb.conn': 'Connection', 'tb.connecting': 'Connecting',
      'tb.notHere': 'Not taking chats', 'tb.langTitle': '切换语言 · Language', 'tb.lang': '中文'
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
    var onPage = document.body.hasAttribute('data-page');
    function paint() {
      if (btn) {
        btn.textContent = i18n.t('tb.lang');
        btn.title = i18n.t('tb.langTitle');
      }
      if (onPage) {
        var st = document.getElementById('me-state');
        if (st) { st.textContent = i18n.t('tb.notHere'); }
      }
      i18n.apply(bar);
    }
    if (btn) {
      btn.addEventListener('click', function () { i18n.set(i18n.lang === 'zh' ? 'en' : 'zh'); });
    }
    i18n.onChange(paint);
    paint();
    var cur = bar.querySelector('.topnav a[aria-current]');
    if (cur && cur.scrollIntoView && bar.scrollWidth > innerWidth) {
      cur.scrollIntoView({ block: 'nearest', inline: 'center' });
    }
  }

  if (window.Wolive && window.Wolive.i18n) { init(); return; }
  var s = document.createElement('script');
  s.src = '/assets/js/i18n.js';
  s.onload = init;
  document.head.appendChild(s);
})();
