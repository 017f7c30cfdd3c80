/* /admin/page/settings: greetings (/admin/manager/cmtalk, greetings, greetingstate), FAQ
 * (addquestion, questions, delquestion), visitor-window tabs (/admin/set/gettab, tabs,
 * deltab) with a small rich-text editor, and the business switches (/admin/manager/switches). */
(function () {
  'use strict';
  var P = Wolive.page, t = P.t, el = P.el, boot = P.boot;
  Wolive.i18n.add({
    zh: { 'st.greeting': '问候语', 'st.quick': '快捷回复', 'st.faq': '常见问题', 'st.tabs': '访客页标签', 'st.switches': '开关',
          'st.greetingHelp': '访客接入时自动发给他的第一句话（纯文本）。', 'st.myGreeting': '我的问候语',
          'st.greetingPh': '您好，我是客服小王，有什么可以帮您？', 'st.greetingOn': '启用',
          'st.teamGreetings': '团队的问候语', 'st.agent': '客服', 'st.state': '状态', 'st.using': '启用中', 'st.unuse': '已停用',
          'st.enable': '启用', 'st.disable': '停用', 'st.noGreeting': '还没有人设置问候语。',
          'st.quickHelp': '在工作台输入框旁的 ⚡ 菜单里使用；保存在服务器上，换电脑也在。',
          'st.toWorkbench': '去工作台', 'st.faqHelp': '访客在聊天窗口里点一个问题，就能看到答案。',
          'st.question': '问题', 'st.answer': '答案', 'st.addFaq': '添加问题', 'st.saveFaq': '保存修改',
          'st.noFaq': '还没有常见问题。', 'st.faqCount': '{n} / 200 个', 'st.tabsHelp': '显示在访客聊天窗口旁的信息页，例如“关于我们”“配送说明”。',
          'st.tabTitle': '标题', 'st.tabContent': '内容', 'st.addTab': '添加标签', 'st.saveTab': '保存修改',
          'st.noTab': '还没有标签。', 'st.tabCount': '{n} / 20 个', 'st.rule': '访客分配方式',
          'rule.autoLong': '自动分配给空闲客服', 'rule.claimLong': '排队，由客服认领', 'st.video': '视频通话',
          'st.audio': '语音通话', 'st.sound': '新消息提示音', 'st.soundFile': '提示音文件（本服务器上的路径，如 /upload/voice/default.mp3）',
          'st.soundNote': '上传后立即生效；也可以填写本服务器上的声音文件路径。',
          'st.soundUpload': '上传提示音（MP3、WAV、OGG）', 'st.soundPlay': '试听',
          'st.open': '商户营业（关闭后访客无法发起对话）', 'st.empty': '请先填写内容' },
    en: { 'st.greeting': 'Greeting', 'st.quick': 'Quick replies', 'st.faq': 'FAQ', 'st.tabs': 'Visitor tabs', 'st.switches': 'Switches',
          'st.greetingHelp': 'The first line a visitor gets when you take the chat (plain text).', 'st.myGreeting': 'My greeting',
          'st.greetingPh': 'Hello, I am Wang from support. How can I help?', 'st.greetingOn': 'In use',
          'st.teamGreetings': 'The team\'s greetings', 'st.agent': 'Agent', 'st.state': 'State', 'st.using': 'In use', 'st.unuse': 'Off',
          'st.enable': 'Turn on', 'st.disable': 'Turn off', 'st.noGreeting': 'Nobody has a greeting yet.',
          'st.quickHelp': 'Use them from the ⚡ menu next to the reply box on the workbench; they are kept on the server, so they follow you to any computer.',
          'st.toWorkbench': 'Go to the workbench', 'st.faqHelp': 'Visitors click a question in the chat window and see its answer.',
          'st.question': 'Question', 'st.answer': 'Answer', 'st.addFaq': 'Add question', 'st.saveFaq': 'Save changes',
          'st.noFaq': 'No questions yet.', 'st.faqCount': '{n} of 200', 'st.tabsHelp': 'Pages shown beside the visitor chat window, like “About us” or “Shipping”.',
          'st.tabTitle': 'Title', 'st.tabContent': 'Content', 'st.addTab': 'Add tab', 'st.saveTab': 'Save changes',
          'st.noTab': 'No tabs yet.', 'st.tabCount': '{n} of 20', 'st.rule': 'How visitors are assigned',
          'rule.autoLong': 'Automatically, to a free agent', 'rule.claimLong': 'They queue and agents claim them', 'st.video': 'Video calls',
          'st.audio': 'Voice calls', 'st.sound': 'Sound on new messages', 'st.soundFile': 'Sound file (a path on this server, like /upload/voice/default.mp3)',
          'st.soundNote': 'An upload takes effect at once; you can also enter the path of a sound file on this server.',
          'st.soundUpload': 'Upload a sound (MP3, WAV, OGG)', 'st.soundPlay': 'Play',
          'st.open': 'Business open (closed: visitors cannot start a chat)', 'st.empty': 'Please write something first' }
  });
  Wolive.i18n.apply(document);

  // ---- my greeting ----
  var gForm = document.getElementById('greet-form');
  var gErr = document.getElementById('greet-error');
  P.call('GET', '/admin/manager/cmtalk', {}).then(function (g) {
    if (g) { gForm.elements.content.value = g.content || ''; gForm.elements.using.checked = g.state !== 'unuse'; }
  }).catch(function () {});
  gForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var using = gForm.elements.using.checked;
    P.call('POST', '/admin/manager/cmtalk', { content: gForm.elements.content.value.trim() }, gErr).then(function (g) {
      if ((g.state !== 'unuse') === using) { return g; }
      return P.call('POST', '/admin/manager/greetingstate', { state: using ? 'using' : 'unuse' }, gErr);
    }).then(function () { P.toast(t('c.saved')); loadGreetings(); }).catch(function () {});
  });

  var gRows = document.getElementById('greet-rows');
  var greetings = null;  // the team's greetings as last loaded: painted again on a language switch
  function loadGreetings() {
    if (!gRows) { return; }
    P.call('GET', '/admin/manager/greetings', {}).then(function (rows) {
      greetings = rows;
      paintGreetings();
    }).catch(function () {});
  }
  function paintGreetings() {
    var rows = greetings;
    gRows.textContent = '';
    if (!rows || !rows.length) {
      var tr = el('tr'), td = el('td', 'muted', t('st.noGreeting')); td.colSpan = 4; tr.appendChild(td); gRows.appendChild(tr);
      return;
    }
    rows.forEach(function (g) {
      var tr = el('tr'), on = g.state !== 'unuse';
      tr.appendChild(el('td', 'strong nowrap', g.nick_name));
      tr.appendChild(el('td', 'pre', g.content));
      var st = el('td'); st.appendChild(el('span', 'pill ' + (on ? 'ok' : ''), t(on ? 'st.using' : 'st.unuse'))); tr.appendChild(st);
      var act = el('td', 'right');
      act.appendChild(P.button(on ? 'st.disable' : 'st.enable', '', function () {
        P.call('POST', '/admin/manager/greetingstate', { service_id: g.service_id, state: on ? 'unuse' : 'using' })
          .then(function () { P.toast(t('c.saved')); loadGreetings(); }).catch(function () {});
      }));
      tr.appendChild(act);
      gRows.appendChild(tr);
    });
  }
  loadGreetings();
  Wolive.i18n.onChange(function () { if (gRows && greetings) { paintGreetings(); } });

  // ---- quick replies: own; shared for managers (quick-replies.js) ----
  Wolive.quickReplies.manage(document.getElementById('quick-manager'),
    { canEditShared: P.atLeast('manager'), toast: P.toast });

  if (!P.atLeast('manager')) { return; }

  // ---- FAQ and tabs: the same shape (a plain title + rich content) ----
  function richList(o) {
    var form = document.getElementById(o.form), err = document.getElementById(o.error);
    var list = document.getElementById(o.list), count = document.getElementById(o.count);
    var save = document.getElementById(o.save), cancel = document.getElementById(o.cancel);
    var ed = P.editor(document.getElementById(o.editor));
    var editing = null, rows = [];
    function reset() {
      editing = null; form.reset(); ed.clear(); err.hidden = true; cancel.hidden = true;
      save.setAttribute('data-i18n', o.addKey); save.textContent = t(o.addKey);
    }
    function render() {
      list.textContent = '';
      count.textContent = t(o.countKey, { n: rows.length });
      if (!rows.length) { P.empty(list, o.noneKey); return; }
      rows.forEach(function (r) {
        var c = el('article', 'card-row');
        c.dataset.id = r[o.id];
        c.appendChild(el('div', 'strong', r[o.titleField]));
        var body = el('div', 'rich muted-body');
        body.appendChild(P.clean(r[o.bodyField]));
        c.appendChild(body);
        var acts = el('div', 'row-actions');
        acts.appendChild(P.button('c.edit', '', function () {
          editing = r[o.id];
          form.elements[o.titleField].value = r[o.titleField];
          ed.set(r[o.bodyField]);
          cancel.hidden = false;
          save.setAttribute('data-i18n', o.saveKey); save.textContent = t(o.saveKey);
          form.scrollIntoView({ block: 'nearest' });
          form.elements[o.titleField].focus();
        }));
        acts.appendChild(P.button('c.delete', 'danger', function () {
          if (!confirm(t('c.confirmDelete', { name: r[o.titleField] }))) { return; }
          var p = {}; p[o.id] = r[o.id];
          P.call('POST', o.del, p).then(function () { P.toast(t('c.deleted')); if (editing === r[o.id]) { reset(); } load(); })
            .catch(function () {});
        }));
        c.appendChild(acts);
        list.appendChild(c);
      });
    }
    function load() {
      return P.call('GET', o.listUrl, {}).then(function (d) { rows = d || []; render(); }).catch(function () {});
    }
    cancel.addEventListener('click', reset);
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      if (!ed.text() && !ed.area.querySelector('img')) { err.textContent = t('st.empty'); err.hidden = false; return; }
      var p = {};
      p[o.titleField] = form.elements[o.titleField].value.trim();
      p[o.bodyField] = ed.html();
      p[o.bodyField + '_read'] = ed.text();
      if (editing) { p[o.id] = editing; }
      P.call('POST', o.saveUrl, p, err).then(function () { P.toast(t('c.saved')); reset(); load(); }).catch(function () {});
    });
    Wolive.i18n.onChange(render);
    load();
  }
  richList({ form: 'faq-form', error: 'faq-error', list: 'faq-list', count: 'faq-count', save: 'faq-save',
    cancel: 'faq-cancel', editor: 'faq-editor', id: 'qid', titleField: 'question', bodyField: 'answer',
    listUrl: '/admin/manager/questions', saveUrl: '/admin/manager/addquestion', del: '/admin/manager/delquestion',
    addKey: 'st.addFaq', saveKey: 'st.saveFaq', noneKey: 'st.noFaq', countKey: 'st.faqCount' });
  richList({ form: 'tab-form', error: 'tab-error', list: 'tab-list', count: 'tab-count', save: 'tab-save',
    cancel: 'tab-cancel', editor: 'tab-editor', id: 'tid', titleField: 'title', bodyField: 'content',
    listUrl: '/admin/set/tabs', saveUrl: '/admin/set/gettab', del: '/admin/set/deltab',
    addKey: 'st.addTab', saveKey: 'st.saveTab', noneKey: 'st.noTab', countKey: 'st.tabCount' });

  // ---- switches ----
  var sw = document.getElementById('sw-form');
  var swErr = document.getElementById('sw-error');
  var FLAGS = ['video_state', 'audio_state', 'voice_state', 'state'];
  var current = {};
  function fill(d) {
    current = d;
    sw.querySelectorAll('input[name=distribution_rule]').forEach(function (r) { r.checked = r.value === d.distribution_rule; });
    FLAGS.forEach(function (k) { if (sw.elements[k]) { sw.elements[k].checked = d[k] === 'open'; } });
    sw.elements.voice_address.value = d.voice_address || '';
  }
  P.call('GET', '/admin/manager/switches', { business_id: boot.business_id }).then(fill).catch(function () {});
  sw.addEventListener('submit', function (e) {
    e.preventDefault();
    var p = { business_id: boot.business_id }, changed = false;
    var rule = sw.querySelector('input[name=distribution_rule]:checked');
    if (rule && rule.value !== current.distribution_rule) { p.distribution_rule = rule.value; changed = true; }
    FLAGS.forEach(function (k) {
      if (!sw.elements[k]) { return; }
      var v = sw.elements[k].checked ? 'open' : 'close';
      if (v !== current[k]) { p[k] = v; changed = true; }
    });
    var addr = sw.elements.voice_address.value.trim();
    if (addr !== (current.voice_address || '')) { p.voice_address = addr; changed = true; }
    if (!changed) { P.toast(t('c.saved')); return; }
    P.call('POST', '/admin/manager/switches', p, swErr).then(function (d) { fill(d); P.toast(t('c.saved')); })
      .catch(function () {});
  });
  // The business's sound: POST /admin/manager/uploadvoice (field `voice`) sets voice_address.
  document.getElementById('voice-file').addEventListener('change', function (e) {
    var file = e.target.files[0];
    if (!file) { return; }
    var fd = new FormData();
    fd.append('voice', file);
    fd.append('business_id', boot.business_id);
    fetch('/admin/manager/uploadvoice', { method: 'POST', body: fd, credentials: 'same-origin',
      headers: { 'X-XSRFToken': Wolive.cookie('_xsrf') } })
      .then(function (r) { return r.json(); })
      .then(function (r) {
        if (r.code !== 0) { throw new Error(r.msg); }
        fill(r.data); P.toast(t('c.saved'));
      })
      .catch(function (err) { P.toast(t('c.error', { msg: err.message || '' }), true); });
    e.target.value = '';
  });
  document.getElementById('voice-play').addEventListener('click', function () {
    var addr = sw.elements.voice_address.value.trim() || '/upload/voice/default.mp3';
    if (!/^\/[A-Za-z0-9_\-.\/]+$/.test(addr)) { return; }
    try { new Audio(addr).play().catch(function () {}); } catch (err) { /* no audio */ }
  });
})();
