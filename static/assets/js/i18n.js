/* wolive i18n: Chinese by default, English one click away (issue 5, "Languages").
 * Usage: Wolive.i18n.add({zh: {key: '中文'}, en: {key: 'English'}}) once per page script;
 *        Wolive.i18n.t('key', {n: 3}) → text ("{n}" placeholders filled);
 *        <span data-i18n="key"></span> is filled (textContent) by Wolive.i18n.apply(root);
 *        data-i18n-placeholder / data-i18n-title / data-i18n-aria fill those attributes;
 *        Wolive.i18n.set('en') switches, remembers the choice and re-applies the page;
 *        Wolive.i18n.onChange(fn) to re-render dynamic parts.
 * The language: the saved choice, else the browser's (zh* → zh, anything else → en). */
(function (root) {
  'use strict';
  var W = root.Wolive = root.Wolive || {};
  var KEY = 'wolive_lang';
  var dict = { zh: {}, en: {} };
  var listeners = [];
  function saved() { try { return localStorage.getItem(KEY); } catch (e) { return null; } }
  function browser() {
    var langs = navigator.languages || [navigator.language || 'zh'];
    for (var i = 0; i < langs.length; i++) {
      var l = String(langs[i]).toLowerCase();
      if (l.indexOf('zh') === 0) { return 'zh'; }
      if (l.indexOf('en') === 0) { return 'en'; }
    }
    return 'zh';
  }
  var lang = saved() === 'en' || saved() === 'zh' ? saved() : browser();

  var i18n = {
    get lang() { return lang; },
    add: function (more) {
      ['zh', 'en'].forEach(function (l) {
        var src = more[l] || {};
        Object.keys(src).forEach(function (k) { dict[l][k] = src[k]; });
      });
    },
    t: function (key, vars) {
      var s = dict[lang][key];
      if (s === undefined) { s = dict.zh[key] !== undefined ? dict.zh[key] : key; }
      if (vars) {
        s = String(s).replace(/\{(\w+)\}/g, function (m, k) {
          return vars[k] !== undefined ? String(vars[k]) : m;
        });
      }
      return s;
    },
    apply: function (rootEl) {
      var r = rootEl || document;
      r.querySelectorAll('[data-i18n]').forEach(function (el) {
        el.textContent = i18n.t(el.getAttribute('data-i18n'));
      });
      [['data-i18n-placeholder', 'placeholder'], ['data-i18n-title', 'title'],
       ['data-i18n-aria', 'aria-label']].forEach(function (pair) {
        r.querySelectorAll('[' + pair[0] + ']').forEach(function (el) {
          el.setAttribute(pair[1], i18n.t(el.getAttribute(pair[0])));
        });
      });
      document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    },
    set: function (l) {
      if (l !== 'zh' && l !== 'en') { return; }
      lang = l;
      try { localStorage.setItem(KEY, l); } catch (e) { /* private mode */ }
      i18n.apply(document);
      listeners.forEach(function (fn) { fn(l); });
    },
    onChange: function (fn) { listeners.push(fn); }
  };
  W.i18n = i18n;
})(window);
