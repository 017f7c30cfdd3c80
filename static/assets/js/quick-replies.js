/* Quick replies kept on the server (/admin/quickreply/*): the API client,
 * the workbench's quick-reply menu (shared and own, grouped), the one-time offer to import
 * the quick replies an older console kept in this browser's localStorage, and the settings
 * page's manager (own ones; shared ones for managers). Every title and content goes into the
 * page through textContent, never HTML. Needs i18n.js and wolive-common.js first. */
(function (root) {
  'use strict';
  var W = root.Wolive;
  var i18n = W.i18n;
  var t = function (k, v) { return i18n.t(k, v); };

  i18n.add({
    zh: {
      'qr.shared': '团队共享', 'qr.mine': '我的', 'qr.examples': '示例',
      'qr.none': '还没有快捷回复，在下面添加。', 'qr.loading': '正在加载…',
      'qr.netError': '网络错误，请稍后再试', 'qr.failed': '操作失败：{msg}',
      'qr.delete': '删除', 'qr.edit': '编辑', 'qr.up': '上移', 'qr.down': '下移',
      'qr.add': '添加', 'qr.save': '保存修改', 'qr.cancel': '取消',
      'qr.title': '标题（可选）', 'qr.content': '内容', 'qr.addShared': '添加共享的快捷回复',
      'qr.addMine': '添加我的快捷回复', 'qr.sharedHelp': '全体客服都能在工作台使用；只有管理员可以修改。',
      'qr.mineHelp': '只有您自己能看到和使用。', 'qr.noShared': '还没有共享的快捷回复。',
      'qr.noMine': '您还没有自己的快捷回复。', 'qr.confirmDelete': '删除快捷回复“{name}”？',
      'qr.importAsk': '这个浏览器里保存着 {n} 条旧的快捷回复。导入到您的账户，在所有设备上使用？',
      'qr.importYes': '导入', 'qr.importNo': '不用了', 'qr.imported': '已导入 {n} 条快捷回复',
      'qr.ex1': '您好，请问有什么可以帮您？', 'qr.ex2': '请稍等，我帮您查一下。',
      'qr.ex3': '感谢您的咨询，祝您生活愉快！', 'qr.saved': '已保存', 'qr.deleted': '已删除'
    },
    en: {
      'qr.shared': 'Shared with the team', 'qr.mine': 'Mine', 'qr.examples': 'Examples',
      'qr.none': 'No quick replies yet; add one below.', 'qr.loading': 'Loading…',
      'qr.netError': 'Network error, please try again', 'qr.failed': 'Failed: {msg}',
      'qr.delete': 'Delete', 'qr.edit': 'Edit', 'qr.up': 'Move up', 'qr.down': 'Move down',
      'qr.add': 'Add', 'qr.save': 'Save changes', 'qr.cancel': 'Cancel',
      'qr.title': 'Title (optional)', 'qr.content': 'Text', 'qr.addShared': 'Add a shared quick reply',
      'qr.addMine': 'Add a quick reply of mine', 'qr.sharedHelp': 'Every agent can use these on the workbench; only managers change them.',
      'qr.mineHelp': 'Only you see and use these.', 'qr.noShared': 'No shared quick replies yet.',
      'qr.noMine': 'You have no quick replies of your own yet.', 'qr.confirmDelete': 'Delete the quick reply “{name}”?',
      'qr.importAsk': 'This browser keeps {n} quick replies from before. Import them to your account, to use them on every device?',
      'qr.importYes': 'Import', 'qr.importNo': 'No thanks', 'qr.imported': '{n} quick replies imported',
      'qr.ex1': 'Hello! How can I help you?', 'qr.ex2': 'One moment please, let me check.',
      'qr.ex3': 'Thank you for contacting us. Have a nice day!', 'qr.saved': 'Saved', 'qr.deleted': 'Deleted'
    }
  });

  var Q = W.quickReplies = {};

  /* W.api, but a request that never got an answer resolves to {code: -1, msg}. */
  function call(method, url, params) {
    return W.api(method, url, params).catch(function () { return { code: -1, msg: t('qr.netError') }; });
  }
  Q.list = function () { return call('GET', '/admin/quickreply/list', {}); };
  Q.add = function (content, title, shared) {
    return call('POST', '/admin/quickreply/add', { content: content, title: title || '', shared: shared ? 1 : 0 });
  };
  Q.edit = function (id, content, title) {
    return call('POST', '/admin/quickreply/edit', { id: id, content: content, title: title });
  };
  Q.remove = function (id) { return call('POST', '/admin/quickreply/delete', { id: id }); };
  Q.reorder = function (ids, shared) {
    return call('POST', '/admin/quickreply/reorder', { ids: ids.join(','), shared: shared ? 1 : 0 });
  };
  Q.importOwn = function (contents) {
    return call('POST', '/admin/quickreply/import', { contents: JSON.stringify(contents) });
  };

  /* ---- the old localStorage ones (key `wolive_quick_{service_id}`, a JSON array of texts) */
  function legacyKey(sid) { return 'wolive_quick_' + sid; }
  function offeredKey(sid) { return 'wolive_quick_' + sid + '_offered'; }
  /* The texts to offer for import, or null when there are none or they were offered. */
  Q.legacy = function (sid) {
    try {
      if (localStorage.getItem(offeredKey(sid))) { return null; }
      var raw = localStorage.getItem(legacyKey(sid));
      if (raw === null) { return null; }
      var saved = JSON.parse(raw);
      var items = Array.isArray(saved) ? saved.filter(function (x) {
        return typeof x === 'string' && x.trim();
      }) : [];
      if (!items.length) { Q.legacyDone(sid, false); return null; }
      return items;
    } catch (e) {
      return null;
    }
  };
  /* Never offer again: imported ones are cleared, declined ones kept but marked. */
  Q.legacyDone = function (sid, imported) {
    try {
      if (imported) { localStorage.removeItem(legacyKey(sid)); }
      localStorage.setItem(offeredKey(sid), '1');
    } catch (e) { /* private mode: nothing kept, nothing to offer */ }
  };

  function label(row) {
    var use = document.createDocumentFragment();
    if (row.title) { use.appendChild(W.el('strong', '', row.title + ' ')); }
    use.appendChild(document.createTextNode(row.content));
    return use;
  }

  /* ---- the workbench menu ------------------------------------------------------------
   * o: {holder, form, text, serviceId, greeting(): text, pick(text), onChange()} */
  Q.menu = function (o) {
    var rows = null, error = '', offer = Q.legacy(o.serviceId), busy = false;

    function item(text, tag, row) {
      var r = W.el('div', 'quick-item');
      var use = W.el('button', 'quick-use'); use.type = 'button';
      if (tag) { use.appendChild(W.el('strong', '', tag + ' ')); use.appendChild(document.createTextNode(text)); }
      else if (row) { use.appendChild(label(row)); } else { use.textContent = text; }
      use.title = text;
      use.addEventListener('click', function () { o.pick(text); });
      r.appendChild(use);
      if (row && row.mine) {
        var del = W.el('button', 'quick-del', '×'); del.type = 'button';
        del.title = t('qr.delete'); del.setAttribute('aria-label', t('qr.delete') + ' ' + text);
        del.addEventListener('click', function (e) {
          e.stopPropagation();
          Q.remove(row.id).then(function (a) { error = a.code === 0 ? '' : t('qr.failed', { msg: a.msg }); load(); });
        });
        r.appendChild(del);
      }
      return r;
    }
    function group(key, cls) {
      var h = W.el('div', 'quick-group ' + cls, t(key));
      h.setAttribute('role', 'heading'); h.setAttribute('aria-level', '3');
      return h;
    }
    function paintOffer(holder) {
      if (!offer) { return; }
      var box = W.el('div', 'quick-import');
      box.appendChild(W.el('p', '', t('qr.importAsk', { n: offer.length })));
      var acts = W.el('div', 'quick-import-actions');
      var yes = W.el('button', 'primary small', t('qr.importYes')); yes.type = 'button';
      var no = W.el('button', 'btn small', t('qr.importNo')); no.type = 'button';
      yes.addEventListener('click', function (e) {
        e.stopPropagation();
        if (busy) { return; }
        busy = true;
        Q.importOwn(offer).then(function (a) {
          busy = false;
          if (a.code !== 0) { error = t('qr.failed', { msg: a.msg }); render(); return; }
          Q.legacyDone(o.serviceId, true); offer = null; error = '';
          if (o.toast) { o.toast(t('qr.imported', { n: a.data.imported })); }
          load();
        });
      });
      no.addEventListener('click', function (e) {
        e.stopPropagation();
        Q.legacyDone(o.serviceId, false); offer = null; render();
      });
      acts.appendChild(yes); acts.appendChild(no);
      box.appendChild(acts);
      holder.appendChild(box);
    }
    function render() {
      var holder = o.holder;
      holder.textContent = '';
      paintOffer(holder);
      if (error) { holder.appendChild(W.el('div', 'quick-error', error)); }
      var greeting = o.greeting();
      if (greeting) { holder.appendChild(item(greeting, t('wb.greeting'))); }
      if (rows === null) { holder.appendChild(W.el('div', 'empty', t('qr.loading'))); return; }
      var shared = rows.filter(function (r) { return r.shared; });
      var mine = rows.filter(function (r) { return r.mine; });
      if (shared.length) {
        holder.appendChild(group('qr.shared', 'shared'));
        shared.forEach(function (r) { holder.appendChild(item(r.content, '', r)); });
      }
      if (mine.length) {
        holder.appendChild(group('qr.mine', 'mine'));
        mine.forEach(function (r) { holder.appendChild(item(r.content, '', r)); });
      }
      if (!shared.length && !mine.length) {
        holder.appendChild(W.el('div', 'empty', t('qr.none')));
        holder.appendChild(group('qr.examples', 'examples'));
        ['qr.ex1', 'qr.ex2', 'qr.ex3'].forEach(function (k) { holder.appendChild(item(t(k))); });
      }
    }
    var asked = 0;
    function load() {
      var mine = ++asked;  // only the latest answer is painted (answers may cross)
      return Q.list().then(function (a) {
        if (mine !== asked) { return; }
        if (a.code === 0) { rows = a.data.rows; } else { error = t('qr.failed', { msg: a.msg }); rows = rows || []; }
        render();
      });
    }
    o.form.addEventListener('submit', function (e) {
      e.preventDefault();
      var v = o.text.value.trim();
      if (!v || busy) { return; }
      busy = true;
      Q.add(v).then(function (a) {
        busy = false;
        if (a.code !== 0) { error = t('qr.failed', { msg: a.msg }); render(); return; }
        error = ''; o.text.value = '';
        load();
      });
    });
    /* Shown: paint what is known at once, then what the server says now. */
    return { show: function () { render(); return load(); }, render: render };
  };

  /* ---- the settings page --------------------------------------------------------------
   * host: an element; o: {canEditShared, toast(text, bad)} */
  Q.manage = function (host, o) {
    var rows = [];
    var lists = {};
    function section(shared) {
      var wrap = W.el('div', 'qr-section');
      wrap.dataset.list = shared ? 'shared' : 'mine';
      wrap.appendChild(W.el('h3', '', t(shared ? 'qr.shared' : 'qr.mine')));
      wrap.appendChild(W.el('p', 'muted small', t(shared ? 'qr.sharedHelp' : 'qr.mineHelp')));
      var list = W.el('div', 'cards qr-list');
      wrap.appendChild(list);
      var editable = !shared || o.canEditShared;
      var form = null, editing = null;
      if (editable) {
        form = W.el('form', 'panel-form form-col qr-form');
        var f1 = W.el('label', 'field'); f1.appendChild(W.el('span', '', t('qr.title')));
        var title = W.el('input'); title.name = 'title'; title.maxLength = 32; f1.appendChild(title);
        var f2 = W.el('label', 'field'); f2.appendChild(W.el('span', '', t('qr.content')));
        var content = W.el('textarea'); content.name = 'content'; content.maxLength = 1000; content.rows = 2;
        content.required = true; f2.appendChild(content);
        var err = W.el('p', 'error'); err.hidden = true;
        var acts = W.el('div', 'actions');
        var save = W.el('button', 'primary', t(shared ? 'qr.addShared' : 'qr.addMine')); save.type = 'submit';
        var cancel = W.el('button', 'btn', t('qr.cancel')); cancel.type = 'button'; cancel.hidden = true;
        acts.appendChild(save); acts.appendChild(cancel);
        [f1, f2, err, acts].forEach(function (n) { form.appendChild(n); });
        wrap.appendChild(form);
        var reset = function () {
          editing = null; form.reset(); err.hidden = true; cancel.hidden = true;
          save.textContent = t(shared ? 'qr.addShared' : 'qr.addMine');
        };
        cancel.addEventListener('click', reset);
        form.addEventListener('submit', function (e) {
          e.preventDefault();
          var c = content.value.trim();
          if (!c || save.disabled) { return; }  // a double click adds once
          save.disabled = true;
          var done = editing ? Q.edit(editing, c, title.value.trim()) : Q.add(c, title.value.trim(), shared);
          done.then(function (a) {
            save.disabled = false;
            if (a.code !== 0) { err.textContent = a.msg; err.hidden = false; return; }
            o.toast(t('qr.saved')); reset(); load();
          });
        });
        lists[shared ? 'shared' : 'mine'] = { list: list, startEdit: function (r) {
          editing = r.id; title.value = r.title; content.value = r.content; cancel.hidden = false;
          save.textContent = t('qr.save'); form.scrollIntoView({ block: 'nearest' }); content.focus();
        } };
      } else {
        lists.shared = { list: list, startEdit: null };
      }
      host.appendChild(wrap);
    }
    function move(group, idx, by) {
      var ids = group.map(function (r) { return r.id; });
      var j = idx + by;
      if (j < 0 || j >= ids.length) { return; }
      var tmp = ids[idx]; ids[idx] = ids[j]; ids[j] = tmp;
      Q.reorder(ids, group[0].shared).then(function (a) {
        if (a.code !== 0) { o.toast(t('qr.failed', { msg: a.msg }), true); }
        load();
      });
    }
    function paint(which, group, noneKey) {
      var L = lists[which];
      L.list.textContent = '';
      if (!group.length) { L.list.appendChild(W.el('p', 'muted', t(noneKey))); return; }
      group.forEach(function (r, i) {
        var c = W.el('article', 'card-row qr-row');
        c.dataset.id = r.id;
        if (r.title) { c.appendChild(W.el('div', 'strong', r.title)); }
        c.appendChild(W.el('div', 'content', r.content));
        if (r.editable && L.startEdit) {
          var acts = W.el('div', 'row-actions');
          var btn = function (key, cls, fn, off) {
            var b = W.el('button', 'btn small ' + cls, t(key)); b.type = 'button';
            b.disabled = !!off; b.addEventListener('click', fn); acts.appendChild(b);
          };
          btn('qr.up', '', function () { move(group, i, -1); }, i === 0);
          btn('qr.down', '', function () { move(group, i, 1); }, i === group.length - 1);
          btn('qr.edit', '', function () { L.startEdit(r); });
          btn('qr.delete', 'danger', function () {
            if (!confirm(t('qr.confirmDelete', { name: r.title || r.content.slice(0, 40) }))) { return; }
            Q.remove(r.id).then(function (a) {
              if (a.code !== 0) { o.toast(t('qr.failed', { msg: a.msg }), true); } else { o.toast(t('qr.deleted')); }
              load();
            });
          });
          c.appendChild(acts);
        }
        L.list.appendChild(c);
      });
    }
    function render() {
      paint('shared', rows.filter(function (r) { return r.shared; }), 'qr.noShared');
      paint('mine', rows.filter(function (r) { return r.mine; }), 'qr.noMine');
    }
    var asked = 0;
    function load() {
      var mine = ++asked;  // only the latest answer is painted (answers may cross)
      return Q.list().then(function (a) {
        if (mine !== asked) { return; }
        if (a.code !== 0) { o.toast(t('qr.failed', { msg: a.msg }), true); return; }
        rows = a.data.rows; render();
      });
    }
    function build() {
      host.textContent = ''; lists = {};
      section(true);
      section(false);
      render();
    }
    i18n.onChange(build);
    build();
    load();
    return { load: load };
  };
})(window);
