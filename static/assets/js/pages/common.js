/* Shared by the console's other pages (templates/page_*.html): the boot data, translated
 * strings, API calls that report their errors, a toast, a pager, dates, a small rich-text
 * editor. Every piece of user data goes into the page through textContent. */
(function (root) {
  'use strict';
  var W = root.Wolive;
  var i18n = W.i18n;
  var P = W.page = {};
  P.boot = JSON.parse(document.getElementById('boot').textContent);
  P.LEVELS = { service: 1, manager: 2, super_manager: 3 };
  P.atLeast = function (level) { return P.LEVELS[P.boot.level] >= P.LEVELS[level]; };

  i18n.add({
    zh: {
      'title.history': '历史记录 · wolive', 'title.agents': '客服管理 · wolive',
      'title.settings': '设置 · wolive', 'title.messages': '留言 · wolive',
      'title.businesses': '商户 · wolive', 'title.embed': '嵌入代码 · wolive', 'title.reports': '报表 · wolive',
      'p403.text': '您的账号级别不能打开这个页面。', 'p403.back': '返回工作台',
      'c.save': '保存', 'c.cancel': '取消', 'c.delete': '删除', 'c.edit': '编辑', 'c.add': '添加',
      'c.saved': '已保存', 'c.deleted': '已删除', 'c.loading': '加载中…', 'c.none': '暂无数据',
      'c.prev': '上一页', 'c.next': '下一页', 'c.page': '第 {page} / {pages} 页 · 共 {total} 条',
      'c.confirmDelete': '确定删除“{name}”吗？', 'c.error': '出错了：{msg}',
      'c.network': '网络错误，请重试', 'c.yes': '是', 'c.no': '否',
      'ed.bold': '粗体', 'ed.italic': '斜体', 'ed.link': '链接', 'ed.ul': '列表',
      'ed.ol': '编号列表', 'ed.clear': '清除格式', 'ed.linkPrompt': '链接地址（http/https）'
    },
    en: {
      'title.history': 'History · wolive', 'title.agents': 'Agents · wolive',
      'title.settings': 'Settings · wolive', 'title.messages': 'Messages · wolive',
      'title.businesses': 'Businesses · wolive', 'title.embed': 'Embed code · wolive', 'title.reports': 'Reports · wolive',
      'p403.text': 'Your account level cannot open this page.', 'p403.back': 'Back to the workbench',
      'c.save': 'Save', 'c.cancel': 'Cancel', 'c.delete': 'Delete', 'c.edit': 'Edit', 'c.add': 'Add',
      'c.saved': 'Saved', 'c.deleted': 'Deleted', 'c.loading': 'Loading…', 'c.none': 'Nothing here yet',
      'c.prev': 'Previous', 'c.next': 'Next', 'c.page': 'Page {page} of {pages} · {total} in all',
      'c.confirmDelete': 'Delete “{name}”?', 'c.error': 'Something went wrong: {msg}',
      'c.network': 'Network error, please retry', 'c.yes': 'Yes', 'c.no': 'No',
      'ed.bold': 'Bold', 'ed.italic': 'Italic', 'ed.link': 'Link', 'ed.ul': 'Bullets',
      'ed.ol': 'Numbers', 'ed.clear': 'Clear formatting', 'ed.linkPrompt': 'Link address (http/https)'
    }
  });
  var t = P.t = function (k, v) { return i18n.t(k, v); };
  P.el = W.el;

  var toastTimer = null;
  P.toast = function (msg, bad) {
    var box = document.getElementById('toast');
    box.textContent = msg;
    box.className = 'toast' + (bad ? ' bad' : '');
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { box.hidden = true; }, bad ? 6000 : 2500);
  };

  /* Wolive.api, resolving to `data` on code 0; anything else shows a toast (or is written
   * into `errEl`) and rejects. */
  P.call = function (method, url, params, errEl) {
    if (errEl) { errEl.hidden = true; errEl.textContent = ''; }
    return W.api(method, url, params).then(function (r) {
      if (r && r.code === 0) { return r.data; }
      var msg = (r && r.msg) || 'error';
      if (errEl) { errEl.textContent = msg; errEl.hidden = false; } else { P.toast(t('c.error', { msg: msg }), true); }
      throw new Error(msg);
    }, function (e) {
      P.toast(t('c.network'), true);
      throw e;
    });
  };

  P.pad = function (n) { return ('0' + n).slice(-2); };
  /* Unix seconds, or a database time text ("2024-05-01 10:20:30"). */
  P.datetime = function (ts) {
    if (!ts) { return ''; }
    if (!/^\d+(\.\d+)?$/.test(String(ts))) {
      var m = String(ts).match(/^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})/);
      return m ? m[1] + ' ' + m[2] : String(ts);
    }
    var d = new Date(Number(ts) * 1000);
    return d.getFullYear() + '-' + P.pad(d.getMonth() + 1) + '-' + P.pad(d.getDate()) + ' ' +
      P.pad(d.getHours()) + ':' + P.pad(d.getMinutes());
  };
  P.ymd = function (d) {
    return d.getFullYear() + '-' + P.pad(d.getMonth() + 1) + '-' + P.pad(d.getDate());
  };

  /* Previous / next with "page x of y" under a list. */
  P.pager = function (box, data, go) {
    box.textContent = '';
    var pages = Math.max(1, Math.ceil((data.total || 0) / (data.limit || 20)));
    if (!data.total || pages <= 1) { return; }
    var prev = P.el('button', 'btn', t('c.prev'));
    prev.type = 'button'; prev.disabled = data.page <= 1;
    prev.addEventListener('click', function () { go(data.page - 1); });
    var next = P.el('button', 'btn', t('c.next'));
    next.type = 'button'; next.disabled = data.page >= pages;
    next.addEventListener('click', function () { go(data.page + 1); });
    box.appendChild(prev);
    box.appendChild(P.el('span', 'muted', t('c.page', { page: data.page, pages: pages, total: data.total })));
    box.appendChild(next);
  };

  P.empty = function (box, key) {
    box.textContent = '';
    box.appendChild(P.el('div', 'empty', t(key || 'c.none')));
  };

  P.button = function (key, cls, onClick) {
    var b = P.el('button', 'btn ' + (cls || ''), t(key));
    b.type = 'button';
    b.setAttribute('data-i18n', key);
    b.addEventListener('click', onClick);
    return b;
  };

  /* A small rich-text editor: contenteditable with bold / italic / link / lists. The server
   * sanitises what it stores (nh3); this only builds the markup. */
  P.editor = function (host) {
    host.classList.add('rte');
    var bar = P.el('div', 'rte-bar');
    bar.setAttribute('role', 'toolbar');
    var area = P.el('div', 'rte-area');
    area.contentEditable = 'true';
    area.setAttribute('role', 'textbox');
    area.setAttribute('aria-multiline', 'true');
    if (host.getAttribute('data-label')) { area.setAttribute('aria-label', host.getAttribute('data-label')); }
    [['bold', 'B', 'ed.bold'], ['italic', 'I', 'ed.italic'], ['createLink', '🔗', 'ed.link'],
     ['insertUnorderedList', '•', 'ed.ul'], ['insertOrderedList', '1.', 'ed.ol'],
     ['removeFormat', '⌫', 'ed.clear']].forEach(function (c) {
      var b = P.el('button', 'rte-btn rte-' + c[0], c[1]);
      b.type = 'button';
      b.setAttribute('data-i18n-title', c[2]);
      b.setAttribute('data-i18n-aria', c[2]);
      b.title = t(c[2]);
      b.addEventListener('mousedown', function (e) { e.preventDefault(); });
      b.addEventListener('click', function () {
        area.focus();
        if (c[0] === 'createLink') {
          var url = root.prompt(t('ed.linkPrompt'), 'https://');
          if (!url || !/^(https?:|mailto:)/i.test(url)) { return; }
          document.execCommand('createLink', false, url);
        } else {
          document.execCommand(c[0], false, null);
        }
      });
      bar.appendChild(b);
    });
    host.appendChild(bar);
    host.appendChild(area);
    return {
      area: area,
      html: function () { return area.innerHTML.trim(); },
      text: function () { return area.innerText.trim(); },
      /* The server's sanitised HTML, cleaned once more here before it is editable. */
      set: function (html) { area.textContent = ''; area.appendChild(P.clean(html)); },
      clear: function () { area.innerHTML = ''; }
    };
  };

  /* Defence in depth for stored rich content (the server already sanitised it with nh3):
   * parsed inert with DOMParser, only an allowlist of tags and attributes is kept. */
  var TAGS = /^(p|br|div|span|b|strong|i|em|u|s|del|sub|sup|ul|ol|li|blockquote|pre|code|h[1-6]|hr|a|img)$/;
  function safeUrl(u, img) {
    u = String(u || '').trim();
    if (img) { return /^\/(?![\/\\])/.test(u) && u.indexOf('..') < 0; }  // this server only
    return /^(https?:|mailto:)/i.test(u);
  }
  P.clean = function (html) {
    var doc = new DOMParser().parseFromString('<body>' + (html || ''), 'text/html');
    var out = document.createDocumentFragment();
    function copy(src, dst) {
      src.childNodes.forEach(function (n) {
        if (n.nodeType === 3) { dst.appendChild(document.createTextNode(n.nodeValue)); return; }
        if (n.nodeType !== 1) { return; }
        var tag = n.nodeName.toLowerCase();
        if (!TAGS.test(tag)) {
          if (!/^(script|style|iframe|object|embed|template|noscript)$/.test(tag)) { copy(n, dst); }
          return;
        }
        var e = document.createElement(tag);
        if (tag === 'a' && safeUrl(n.getAttribute('href'))) {
          e.setAttribute('href', n.getAttribute('href'));
          e.setAttribute('rel', 'noopener noreferrer nofollow');
          e.setAttribute('target', '_blank');
        }
        if (tag === 'img') {
          if (!safeUrl(n.getAttribute('src'), true)) { return; }
          e.setAttribute('src', n.getAttribute('src'));
          e.setAttribute('alt', n.getAttribute('alt') || '');
        }
        copy(n, e);
        dst.appendChild(e);
      });
    }
    copy(doc.body, out);
    return out;
  };

  i18n.onChange(function () { i18n.apply(document); });
  i18n.apply(document);
})(window);
