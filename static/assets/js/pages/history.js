/* /admin/page/history: filter conversations by agent (manager and up), visitor, dates and
 * message text (/admin/set/searchhistory), then read one (/admin/set/getdesignForViews). */
(function () {
  'use strict';
  var P = Wolive.page, t = P.t, el = P.el, boot = P.boot;
  var VISITOR_AVATAR = '/assets/images/index/avatar-visitor.png';
  Wolive.i18n.add({
    zh: { 'hi.title': '历史记录', 'hi.agent': '客服', 'hi.allAgents': '全部客服', 'hi.visitor': '访客',
          'hi.visitorPh': '名字或 ID', 'hi.from': '从', 'hi.to': '到', 'hi.q': '消息内容', 'hi.qPh': '搜索消息里的文字',
          'hi.search': '搜索', 'hi.visitors': '访客', 'hi.back': '‹ 返回', 'hi.pick': '选择左侧的访客查看对话',
          'hi.none': '这段时间没有符合条件的对话。', 'hi.count': '{n} 条消息', 'hi.matches': '{n} 条匹配',
          'hi.noMsg': '这段时间没有消息。', 'hi.image': '[图片]', 'hi.file': '[文件]', 'hi.agentSaid': '{name}：',
          'hi.online': '在线', 'hi.range': '{start} 至 {end}', 'hi.rangeUntil': '截至 {end}',
          'hi.rangeFrom': '{start} 起', 'hi.rangeAll': '全部时间', 'hi.visitorSide': '访客',
          'hi.ratings': '评价' },
    en: { 'hi.title': 'History', 'hi.agent': 'Agent', 'hi.allAgents': 'All agents', 'hi.visitor': 'Visitor',
          'hi.visitorPh': 'Name or ID', 'hi.from': 'From', 'hi.to': 'To', 'hi.q': 'Message text', 'hi.qPh': 'Search the messages',
          'hi.search': 'Search', 'hi.visitors': 'Visitors', 'hi.back': '‹ Back', 'hi.pick': 'Pick a visitor to read the conversation',
          'hi.none': 'No conversation matches in this period.', 'hi.count': { one: '{n} message', other: '{n} messages' }, 'hi.matches': '{n} matching',
          'hi.noMsg': 'No messages in this period.', 'hi.image': '[picture]', 'hi.file': '[file]', 'hi.agentSaid': '{name}: ',
          'hi.online': 'Online', 'hi.range': '{start} to {end}', 'hi.rangeUntil': 'until {end}',
          'hi.rangeFrom': 'from {start}', 'hi.rangeAll': 'all time', 'hi.visitorSide': 'Visitor',
          'hi.ratings': 'Ratings' }
  });
  Wolive.i18n.apply(document);

  var form = document.getElementById('filters');
  var list = document.getElementById('visitors');
  var vpager = document.getElementById('vpager');
  var box = document.getElementById('messages');
  var mpager = document.getElementById('mpager');
  var titleEl = document.getElementById('conv-title');
  var wrap = document.getElementById('history');
  var err = document.getElementById('error');
  var today = new Date();
  form.elements.end.value = P.ymd(today);
  form.elements.start.value = P.ymd(new Date(today.getTime() - 29 * 86400000));
  var filters = {}, current = null, listData = null;
  // ?visiter_id= (the workbench's "History" button): that visitor's conversation, at any date.
  var wanted = new URLSearchParams(location.search).get('visiter_id') || '';
  if (wanted) { form.elements.visiter.value = wanted; form.elements.start.value = ''; }

  function preview(r) {
    if (r.last_type === 'image') { return t('hi.image'); }
    if (r.last_type === 'file') { return t('hi.file') + ' ' + String(r.last_content).split('\n').pop(); }
    if (r.last_type === 'system' || r.last_type === 'note') { return window.Wolive.systemText({ content: r.last_content }); }
    return r.last_content;
  }

  /* The visitor's name; the server's generated "访客xxxxxx" in the page's language. */
  function visitorLabel(r) {
    return r.visiter_name ? Wolive.i18n.visitorName(r.visiter_name, r.visiter_id) : r.visiter_id;
  }

  function renderList() {
    var d = listData;
    list.textContent = '';
    if (!d.rows.length) { P.empty(list, 'hi.none'); }
    d.rows.forEach(function (r) {
      var b = el('button', 'vrow' + (current && current.channel === r.channel ? ' active' : ''));
      b.type = 'button';
      b.dataset.visiter = r.visiter_id;
      var img = el('img', 'avatar'); img.alt = ''; img.src = r.avatar && r.avatar.charAt(0) === '/' && r.avatar.charAt(1) !== '/' ? r.avatar : VISITOR_AVATAR;
      b.appendChild(img);
      var mid = el('div', 'vmid');
      var top = el('div', 'vtop');
      top.appendChild(el('span', 'name', visitorLabel(r)));
      top.appendChild(el('span', 'muted small nowrap', P.datetime(r.last_time)));
      mid.appendChild(top);
      var prefix = r.last_direction === 'to_visiter' && r.nick_name && r.last_type !== 'system' && r.last_type !== 'note'
        ? t('hi.agentSaid', { name: r.nick_name }) : '';
      mid.appendChild(el('div', 'last', prefix + preview(r)));
      mid.appendChild(el('div', 'muted small', t(filters.q ? 'hi.matches' : 'hi.count', { n: r.messages })));
      b.appendChild(mid);
      b.addEventListener('click', function () { open(r, 1); });
      list.appendChild(b);
    });
    P.pager(vpager, d, search);
  }

  function search(page) {
    var p = { page: page || 1, limit: 20 };
    Object.keys(filters).forEach(function (k) { if (filters[k]) { p[k] = filters[k]; } });
    return P.call('GET', '/admin/set/searchhistory', p, err).then(function (d) {
      listData = d; renderList();
      if (wanted) {
        var row = d.rows.filter(function (r) { return r.visiter_id === wanted; })[0];
        wanted = '';
        if (row) { open(row, 1); }
      }
    }).catch(function () {});
  }

  function mark(parent, text, q) {
    if (!q) { parent.textContent = text; return; }
    var lower = text.toLowerCase(), ql = q.toLowerCase(), i = 0, j;
    while ((j = lower.indexOf(ql, i)) >= 0) {
      parent.appendChild(document.createTextNode(text.slice(i, j)));
      parent.appendChild(el('mark', '', text.slice(j, j + q.length)));
      i = j + q.length;
    }
    parent.appendChild(document.createTextNode(text.slice(i)));
  }

  function bubble(m) {
    if (window.Wolive.isLine(m)) {
      var line = el('div', 'msg system' + (m.msg_type === 'note' ? ' note' : ''));
      line.dataset.cid = m.cid;
      line.appendChild(el('div', 'bubble', window.Wolive.systemText(m)));
      line.appendChild(el('div', 'time', P.datetime(m.timestamp)));
      return line;
    }
    var mine = m.direction === 'to_visiter';
    var row = el('div', 'msg ' + (mine ? 'mine' : 'theirs'));
    row.dataset.cid = m.cid;
    var bub = el('div', 'bubble');
    var type = m.msg_type || 'text';
    if (type === 'image' && /^\/upload\/[A-Za-z0-9._-]+$/.test(m.content)) {
      bub.classList.add('image');
      var img = el('img'); img.src = m.content; img.alt = t('hi.image'); img.loading = 'lazy';
      bub.appendChild(img);
    } else if (type === 'file') {
      var parts = String(m.content).split('\n');
      bub.classList.add('file');
      var a = el('a', '', parts[1] || parts[0]);
      if (/^\/upload\/[A-Za-z0-9._-]+$/.test(parts[0])) { a.href = parts[0]; }
      bub.appendChild(a);
    } else {
      mark(bub, String(m.content), filters.q);
    }
    row.appendChild(bub);
    var who = mine ? (m.nick_name || '') : t('hi.visitorSide');
    row.appendChild(el('div', 'time', who + ' · ' + P.datetime(m.timestamp)));
    return row;
  }

  /* The visitor's ratings in the period, above the transcript. */
  function ratings(rows) {
    var wrapEl = el('div', 'hist-ratings');
    wrapEl.appendChild(el('strong', '', t('hi.ratings')));
    rows.forEach(function (x) {
      var line = el('div', 'hist-rating');
      line.appendChild(el('span', 'stars', window.Wolive.stars(x.score)));
      line.appendChild(el('span', '', ' ' + x.score + '/5' + (x.comment ? ' “' + x.comment + '”' : '')));
      line.appendChild(el('span', 'muted small', ' · ' + P.datetime(x.timestamp)));
      wrapEl.appendChild(line);
    });
    return wrapEl;
  }

  function open(r, page) {
    current = r;
    wrap.classList.add('has-active');
    if (listData) { renderList(); }
    titleEl.removeAttribute('data-i18n');
    // An open end is said in words ("until …", "all time"), not left as an empty date.
    var range = { start: filters.start, end: filters.end };
    titleEl.textContent = visitorLabel(r) + ' · ' +
      t(range.start ? (range.end ? 'hi.range' : 'hi.rangeFrom') : (range.end ? 'hi.rangeUntil' : 'hi.rangeAll'), range);
    var p = { channel: r.channel, start: filters.start || '1970-01-01', end: filters.end || P.ymd(new Date()),
              page: page || 1, limit: 100 };
    P.call('GET', '/admin/set/getdesignForViews', p).then(function (d) {
      box.textContent = '';
      if (d.ratings && d.ratings.length) { box.appendChild(ratings(d.ratings)); }
      if (!d.rows.length) { box.appendChild(el('div', 'empty', t('hi.noMsg'))); }
      d.rows.forEach(function (m) { box.appendChild(bubble(m)); });
      var first = box.querySelector('mark');
      if (first) { first.scrollIntoView({ block: 'center' }); } else { box.scrollTop = 0; }
      P.pager(mpager, d, function (n) { open(r, n); });
    }).catch(function () {});
  }

  document.getElementById('back').addEventListener('click', function () {
    wrap.classList.remove('has-active');
  });

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    filters = {};
    ['service_id', 'visiter', 'start', 'end', 'q'].forEach(function (k) {
      if (form.elements[k]) { filters[k] = form.elements[k].value.trim(); }
    });
    search(1);
  });

  if (P.atLeast('manager')) {
    P.call('GET', '/admin/manager/list', {}).then(function (agents) {
      var sel = form.elements.service_id;
      (agents || []).forEach(function (a) {
        var o = el('option', '', a.nick_name + ' (' + a.user_name + ')');
        o.value = a.service_id;
        sel.appendChild(o);
      });
    }).catch(function () {});
  }
  Wolive.i18n.onChange(function () { if (listData) { renderList(); } });
  form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event('submit'));
})();
