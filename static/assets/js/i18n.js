/* wolive i18n: Chinese by default, English one click away.
 * Usage: Wolive.i18n.add({zh: {key: '中文'}, en: {key: 'English'}}) once per page script;
 *        Wolive.i18n.t('key', {n: 3}) → text ("{n}" placeholders filled);
 *        <span data-i18n="key"></span> is filled (textContent) by Wolive.i18n.apply(root);
 *        data-i18n-placeholder / data-i18n-title / data-i18n-aria fill those attributes;
 *        Wolive.i18n.set('en') switches, remembers the choice and re-applies the page;
 *        Wolive.i18n.onChange(fn) to re-render dynamic parts.
 * Counts: a text may be {one: '…', other: '…'}; t(key, {n: 1}) picks by the language's plural
 *        rule for n ("1 message", "2 messages"; Chinese has one form).
 * Generated names: Wolive.i18n.visitorName(name, visiter_id) shows the server's generated
 *        "访客" + the last 6 characters of the visitor id as "Visitor 8688f2" in English; any
 *        other name is returned as it is (the stored name never changes).
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

  function pluralForm(forms, n) {
    var rule = 'other';
    if (typeof n === 'number' || /^\d+$/.test(String(n))) {
      try { rule = new Intl.PluralRules(lang === 'zh' ? 'zh-CN' : 'en').select(Number(n)); }
      catch (e) { rule = Number(n) === 1 ? 'one' : 'other'; }
    }
    return forms[rule] !== undefined ? forms[rule] : forms.other;
  }
  /* The server names a visitor without a name "访客" + the last 6 characters of its id
   * (realtime/chat/visitors.py, _record_visit). */
  var GENERATED = /^访客(\S{1,6})$/;
  dict.zh['i18n.visitor'] = '访客{id}';
  dict.en['i18n.visitor'] = 'Visitor {id}';

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
      if (s && typeof s === 'object') { s = pluralForm(s, vars && vars.n); }
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
    onChange: function (fn) { listeners.push(fn); },
    visitorName: function (name, visiterId) {
      var s = name === undefined || name === null ? '' : String(name);
      var m = GENERATED.exec(s);
      if (!m) { return s; }
      if (visiterId !== undefined && visiterId !== null && visiterId !== '' &&
          String(visiterId).slice(-6) !== m[1]) { return s; }
      return i18n.t('i18n.visitor', { id: m[1] });
    }
  };
  W.i18n = i18n;
})(window);
