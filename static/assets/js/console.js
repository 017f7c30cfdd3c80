/* The agent console's workbench. */
(function () {
  'use strict';
  var W = window.Wolive;
  var boot = JSON.parse(document.getElementById('boot').textContent);
  var convs = {};          // visiter_id -> conversation
  var active = null;       // visiter_id of the open conversation
  var list = new W.MessageList(document.getElementById('messages'));
  var input = document.getElementById('input');
  var sendBtn = document.getElementById('send');
  var conn = document.getElementById('conn');
  window.woliveConsole = { boot: boot, convs: convs };

  var pusher = W.pusher(boot.pusher, function (state, prev) {
    conn.hidden = state === 'connected';
    conn.textContent = W.CONN_TEXT[state] || state;
    var stateText = state === 'connected' ? '在线 · Online' : '离线 · Offline';
    var dot = document.getElementById('me-dot');
    dot.classList.toggle('on', state === 'connected');
    dot.title = stateText; dot.setAttribute('aria-label', stateText);
    document.getElementById('me-state').textContent = stateText;
    if (state === 'connected' && prev !== 'connecting' && prev !== 'initialized') { refresh(); }
  });
  window.woliveConsole.pusher = pusher;
  var kefu = pusher.subscribe('kefu' + boot.service_id);
  kefu.bind('cu-event', function (d) { incoming(d.message); });
  kefu.bind('geton', function (d) { setVisitorOnline(d.visiter_id, true); });
  kefu.bind('logout', function (d) { setVisitorOnline(d.visiter_id, false); });
  /* A conversation left this agent's list: transferred away, closed or blacklisted. */
  ['getswitch', 'closed', 'blacklisted'].forEach(function (ev) {
    kefu.bind(ev, function () { loadConversations(); });
  });
  pusher.subscribe('ud' + boot.service_id).bind('on_notice', function () { loadConversations(); });
  pusher.subscribe('all' + boot.business_id).bind('on_notice', function () { loadConversations(); });

  function incoming(m) {
    var c = convs[m.visiter_id];
    if (!c) { loadConversations(); return; }
    c.last_content = m.content; c.last_timestamp = m.timestamp;
    if (m.visiter_id === active) {
      list.add(m, false);
      W.api('POST', '/admin/set/getwatch', { visiter_id: m.visiter_id });
    } else {
      c.unread = (c.unread || 0) + 1;
    }
    render();
  }

  function setVisitorOnline(vid, on) {
    if (convs[vid]) {
      convs[vid].online = on; render();
      if (vid === active) { paneTitle(convs[vid]); }
    }
  }

  function loadConversations() {
    return W.api('GET', '/admin/set/getchats', {}).then(function (r) {
      if (r.code !== 0) { return; }
      Object.keys(convs).forEach(function (k) { delete convs[k]; });
      r.data.forEach(function (c) { convs[c.visiter_id] = c; });
      if (active && convs[active]) { convs[active].unread = 0; }
      render();
    });
  }

  function render() {
    var box = document.getElementById('convs');
    var items = Object.keys(convs).map(function (k) { return convs[k]; });
    items.sort(function (a, b) { return (b.last_timestamp || 0) - (a.last_timestamp || 0); });
    box.textContent = '';
    if (!items.length) { box.appendChild(W.el('div', 'empty', '还没有访客。Waiting for visitors…')); }
    items.forEach(function (c) {
      var b = W.el('button', 'conv' + (c.online ? '' : ' offline') + (c.visiter_id === active ? ' active' : ''));
      b.type = 'button';
      b.dataset.visiter = c.visiter_id;
      var img = W.el('img'); img.alt = ''; img.src = c.avatar || '/assets/images/admin/avatar-admin2.png';
      var mid = W.el('div');
      mid.appendChild(W.el('div', 'name', c.visiter_name));
      mid.appendChild(W.el('div', 'last', c.last_content || ''));
      var meta = W.el('div', 'meta');
      meta.appendChild(W.el('span', '', c.last_timestamp ? W.time(c.last_timestamp) : ''));
      var badge = W.el('span', 'badge', c.unread || '');
      badge.hidden = !c.unread;
      meta.appendChild(badge);
      b.appendChild(img); b.appendChild(mid); b.appendChild(meta);
      b.addEventListener('click', function () { open(c.visiter_id); });
      box.appendChild(b);
    });
  }

  function open(vid) {
    active = vid;
    var c = convs[vid];
    document.getElementById('workbench').classList.add('has-active');
    paneTitle(c);
    list.clear();
    input.disabled = false; sendBtn.disabled = false; input.focus();
    c.unread = 0; render();
    W.api('GET', '/admin/set/history', { visiter_id: vid }).then(function (r) {
      if (r.code === 0 && active === vid) {
        r.data.forEach(function (m) { list.add(m, m.direction === 'to_visiter'); });
      }
    });
    W.api('POST', '/admin/set/getwatch', { visiter_id: vid });
  }

  function paneTitle(c) {
    var title = document.getElementById('pane-title');
    title.className = '';
    title.textContent = c.visiter_name;
    title.appendChild(W.el('small', '', c.online ? '在线 · online' : '离线 · offline'));
  }

  /* Phones show the list or the conversation; 返回 goes back to the list. */
  document.getElementById('back').addEventListener('click', function () {
    active = null;
    list.clear();
    input.disabled = true; sendBtn.disabled = true;
    var title = document.getElementById('pane-title');
    title.className = 'pane-idle';
    title.textContent = '← 选择一个对话 · Pick a conversation';
    document.getElementById('workbench').classList.remove('has-active');
    render();
  });

  function refresh() {
    loadConversations();
    if (active) {
      W.api('GET', '/admin/set/history', { visiter_id: active }).then(function (r) {
        if (r.code === 0) { r.data.forEach(function (m) { list.add(m, m.direction === 'to_visiter'); }); }
      });
    }
  }

  W.composer(document.getElementById('composer'), input, function (text) {
    if (!active) { return Promise.resolve(false); }
    var vid = active;
    return W.api('POST', '/admin/set/chats', { visiter_id: vid, content: text }).then(function (r) {
      if (r.code === 0) {
        list.add(r.data, true);
        if (convs[vid]) { convs[vid].last_content = text; convs[vid].last_timestamp = r.data.timestamp; render(); }
        return true;
      }
      list.system('发送失败 · Not sent: ' + (r.msg || r.code));
      return false;
    });
  });

  loadConversations();
})();
