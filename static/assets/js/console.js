/* The agent workbench: conversations and the waiting queue (left), the conversation
 * (middle), the visitor's details (right). Every piece of visitor or agent text goes into the
 * page through textContent; images only from this server's /upload/ paths (Wolive.bubble). */
(function () {
  'use strict';
  var W = window.Wolive;
  var i18n = W.i18n;
  var t = function (k, v) { return i18n.t(k, v); };
  var boot = JSON.parse(document.getElementById('boot').textContent);
  var $ = function (id) { return document.getElementById(id); };

  i18n.add({
    zh: {
      'wb.title': '工作台 · wolive', 'wb.lists': '对话列表', 'wb.current': '当前对话', 'wb.queue': '排队等待',
      'wb.noVisitors': '还没有访客。', 'wb.noQueue': '没有排队的访客。',
      'wb.conversation': '对话', 'wb.back': '返回对话列表', 'wb.backShort': '返回',
      'wb.pick': '← 选择一个对话', 'wb.transfer': '转接', 'wb.history': '历史',
      'wb.close': '结束', 'wb.blacklist': '拉黑', 'wb.info': '资料',
      'wb.emoji': '表情', 'wb.image': '发送图片', 'wb.file': '发送文件', 'wb.quick': '快捷回复',
      'wb.pasteHint': '可直接粘贴截图', 'wb.quickNew': '新的快捷回复', 'wb.quickSave': '保存',
      'wb.placeholder': '输入回复，Enter 发送，Shift+Enter 换行', 'wb.reply': '回复',
      'wb.send': '发送', 'wb.visitorInfo': '访客资料', 'wb.closePanel': '关闭',
      'wb.noInfo': '选择一个对话查看访客资料。', 'wb.fName': '姓名', 'wb.fTel': '电话',
      'wb.fNote': '备注', 'wb.save': '保存资料', 'wb.saved': '已保存',
      'wb.transferTo': '转接给在线客服', 'wb.cancel': '取消',
      'wb.noColleagues': '没有其他在线客服。', 'wb.online': '在线', 'wb.offline': '离线',
      'wb.connecting': '连接中', 'wb.netError': '网络错误，请稍后再试', 'wb.sound': '提示音', 'wb.claim': '接待',
      'wb.waitingSince': '排第 {n} 位', 'wb.typing': '对方正在输入…',
      'wb.typingShort': '正在输入…', 'wb.sent': '已送达', 'wb.read': '已读',
      'wb.imageMsg': '[图片]', 'wb.fileMsg': '[文件]', 'wb.today': '今天', 'wb.yesterday': '昨天',
      'wb.loadingOlder': '正在加载更早的消息…', 'wb.start': '没有更早的消息了',
      'wb.notSent': '发送失败：{msg}', 'wb.uploadFailed': '上传失败：{msg}',
      'wb.uploading': '正在上传 {name}…', 'wb.claimed': '已被 {name} 接待',
      'wb.claimedOther': '该访客已被其他客服接待', 'wb.confirmClose': '结束与 {name} 的对话？',
      'wb.confirmBlack': '拉黑 {name}？TA 将无法再发送消息。', 'wb.closed': '对话已结束',
      'wb.blacklisted': '已拉黑', 'wb.transferred': '已转接给 {name}',
      'wb.movedAway': '{visitor} 已转给 {name}', 'wb.leftList': '该对话已离开你的列表',
      'wb.newMsg': '【新消息】', 'wb.newFrom': '{name} 发来新消息',
      'wb.notifyAsk': '有新消息时弹出桌面通知？', 'wb.notifyAskShort': '开启新消息通知？', 'wb.notifyYes': '开启通知', 'wb.notifyNo': '不用了',
      'wb.greeting': '问候语', 'wb.delete': '删除', 'wb.noQuick': '还没有快捷回复，在下面添加。',
      'wb.source': '来源页面', 'wb.referrer': '来路', 'wb.ip': 'IP', 'wb.place': '地区',
      'wb.device': '设备', 'wb.firstVisit': '首次访问', 'wb.lastVisit': '最近访问',
      'wb.visits': '访问次数', 'wb.unknown': '未知', 'wb.status': '状态',
      'wb.q1': '您好，请问有什么可以帮您？', 'wb.q2': '请稍等，我帮您查一下。',
      'wb.q3': '感谢您的咨询，祝您生活愉快！',
      'wb.conn.connecting': '正在连接…', 'wb.conn.unavailable': '网络断开，正在重连…',
      'wb.conn.failed': '无法连接服务器', 'wb.conn.disconnected': '已断开，正在重连…',
      'wb.mobile': '手机', 'wb.desktop': '电脑', 'wb.unreadCount': '{n} 条未读',
      'wb.rating': '最近评价', 'wb.ratedToast': '{name}：{text}'
    },
    en: {
      'wb.title': 'Workbench · wolive', 'wb.lists': 'Conversation lists', 'wb.current': 'Conversations', 'wb.queue': 'Waiting',
      'wb.noVisitors': 'No visitors yet.', 'wb.noQueue': 'Nobody is waiting.',
      'wb.conversation': 'Conversation', 'wb.back': 'Back to conversations', 'wb.backShort': 'Back',
      'wb.pick': '← Pick a conversation', 'wb.transfer': 'Transfer', 'wb.history': 'History',
      'wb.close': 'End', 'wb.blacklist': 'Block', 'wb.info': 'Details',
      'wb.emoji': 'Emoji', 'wb.image': 'Send an image', 'wb.file': 'Send a file',
      'wb.quick': 'Quick replies', 'wb.pasteHint': 'Paste a screenshot to send it',
      'wb.quickNew': 'New quick reply', 'wb.quickSave': 'Save',
      'wb.placeholder': 'Type a reply, Enter to send, Shift+Enter for a new line',
      'wb.reply': 'Reply', 'wb.send': 'Send', 'wb.visitorInfo': 'Visitor details',
      'wb.closePanel': 'Close', 'wb.noInfo': 'Pick a conversation to see the visitor.',
      'wb.fName': 'Name', 'wb.fTel': 'Phone', 'wb.fNote': 'Note', 'wb.save': 'Save details',
      'wb.saved': 'Saved', 'wb.transferTo': 'Transfer to an online agent', 'wb.cancel': 'Cancel',
      'wb.noColleagues': 'No other agent is online.', 'wb.online': 'Online',
      'wb.offline': 'Offline', 'wb.connecting': 'Connecting', 'wb.netError': 'Network error, please try again', 'wb.sound': 'Sound',
      'wb.claim': 'Claim', 'wb.waitingSince': '#{n} in line', 'wb.typing': 'Typing…',
      'wb.typingShort': 'typing…', 'wb.sent': 'Delivered', 'wb.read': 'Read',
      'wb.imageMsg': '[Image]', 'wb.fileMsg': '[File]', 'wb.today': 'Today',
      'wb.yesterday': 'Yesterday', 'wb.loadingOlder': 'Loading older messages…',
      'wb.start': 'No older messages', 'wb.notSent': 'Not sent: {msg}',
      'wb.uploadFailed': 'Upload failed: {msg}', 'wb.uploading': 'Uploading {name}…',
      'wb.claimed': 'Claimed by {name}', 'wb.claimedOther': 'Another agent took this visitor',
      'wb.confirmClose': 'End the conversation with {name}?',
      'wb.confirmBlack': 'Block {name}? They will not be able to write again.',
      'wb.closed': 'Conversation ended', 'wb.blacklisted': 'Blocked',
      'wb.transferred': 'Transferred to {name}', 'wb.movedAway': '{visitor} went to {name}',
      'wb.leftList': 'This conversation left your list', 'wb.newMsg': '[New message]',
      'wb.newFrom': 'New message from {name}',
      'wb.notifyAsk': 'Show a desktop notification for new messages?',
      'wb.notifyAskShort': 'Notify me of new messages?',
      'wb.notifyYes': 'Turn on', 'wb.notifyNo': 'No thanks', 'wb.greeting': 'Greeting',
      'wb.delete': 'Delete', 'wb.noQuick': 'No quick replies yet; add one below.',
      'wb.source': 'Page', 'wb.referrer': 'Referrer', 'wb.ip': 'IP', 'wb.place': 'Place',
      'wb.device': 'Device', 'wb.firstVisit': 'First visit', 'wb.lastVisit': 'Last visit',
      'wb.visits': 'Visits', 'wb.unknown': 'unknown', 'wb.status': 'Status',
      'wb.q1': 'Hello! How can I help you?', 'wb.q2': 'One moment please, let me check.',
      'wb.q3': 'Thank you for contacting us. Have a nice day!',
      'wb.conn.connecting': 'Connecting…', 'wb.conn.unavailable': 'Network lost, reconnecting…',
      'wb.conn.failed': 'Cannot reach the server', 'wb.conn.disconnected': 'Disconnected, reconnecting…',
      'wb.mobile': 'Phone', 'wb.desktop': 'Desktop',
      'wb.unreadCount': { one: '{n} unread message', other: '{n} unread messages' },
      'wb.rating': 'Latest rating', 'wb.ratedToast': '{name}: {text}'
    }
  });

  var convs = {};          // visiter_id -> conversation (getchats entry + typing)
  /* geton / logout heard, by visiter_id, numbered: a list asked for before one of them was
   * heard may carry the older state (the visitor's window opened while it was on its way),
   * and a geton for a visitor not in the list yet must still count when it arrives. One entry
   * per visitor seen in this tab (lists may answer out of order, so none is dropped). */
  var presenceSeq = 0;
  var heardOnline = {};    // visiter_id -> {on, seq}
  function withHeardOnline(c, asked) {
    var heard = heardOnline[c.visiter_id];
    if (heard && heard.seq > asked) { c.online = heard.on; }
    return c;
  }
  var waits = {};          // visiter_id -> waiting entry (getwait)
  var active = null;       // visiter_id of the open conversation
  var older = { more: false, loading: false };
  var box = $('messages');
  var list = new W.MessageList(box);
  var input = $('input');
  var sendBtn = $('send');
  var workbench = $('workbench');
  var connState = 'connecting';
  var AVATAR = '/assets/images/admin/avatar-admin2.png';
  var PAGE = 30;
  var api = window.woliveConsole = { boot: boot, convs: convs, waits: waits, list: list };

  /* Per conversation (visiter_id): the highest cid heard from the server's stream (kefu
   * events and history answers; never the agent's own sends), the live messages heard
   * lately (to merge into a getchats snapshot that did not have them yet) and the newest of
   * the agent's messages the visitor has read (the ✓✓ ticks, from the server's read state
   * and `read` events). Kept across list reloads. */
  var stream = api.stream = {
    cids: {}, recent: {}, reads: {},
    RECENT: 200,
    /* Note a message from the stream; true when it is newer than anything heard. */
    heard: function (vid, m) {
      var cid = Number(m && m.cid) || 0;
      if (!cid || cid <= (this.cids[vid] || 0)) { return false; }
      this.cids[vid] = cid;
      if (m.direction) {
        var r = this.recent[vid] = this.recent[vid] || [];
        r.push(m);
        if (r.length > this.RECENT) { r.shift(); }
      }
      return true;
    },
    /* A getchats entry `c` is the server's truth as of `c.last_cid`: add what was heard
     * live after it (unread count, last message), and hear up to it. */
    merge: function (c) {
      var vid = c.visiter_id, at = Number(c.last_cid) || 0;
      (this.recent[vid] || []).forEach(function (m) {
        if (Number(m.cid) <= at) { return; }
        c.last_msg = m; c.last_timestamp = m.timestamp;
        if (m.direction === 'to_service') { c.unread = (c.unread || 0) + 1; }
      });
      if (at > (this.cids[vid] || 0)) { this.cids[vid] = at; }
    },
    read: function (vid, cid) {
      this.reads[vid] = Math.max(this.reads[vid] || 0, Number(cid) || 0);
    },
    readCid: function (vid) { return this.reads[vid] || 0; }
  };

  /* W.api, but a request that never got an answer (server down, network lost) resolves to
   * {code: -1, msg} like any refusal, so every caller's "not 0" branch tells the agent and
   * nothing is left half-done (a disabled button, an unhandled rejection). */
  function call(method, url, params) {
    return W.api(method, url, params).catch(function () {
      return { code: -1, msg: t('wb.netError') };
    });
  }

  function xsrf() {
    return W.cookie('_xsrf');
  }

  /* ---- connection ------------------------------------------------------------------- */
  var pusher = W.pusher(boot.pusher, function (state) {
    connState = state;
    paintConn();
  }, { channelAuthorization: { endpoint: '/pusher/auth', transport: 'ajax',
                               headers: { 'X-XSRFToken': xsrf() } } });
  api.pusher = pusher;
  function paintConn() {
    var on = connState === 'connected';
    var conn = $('conn');
    conn.hidden = on;
    conn.textContent = on ? '' : t('wb.conn.' + connState);
    conn.className = 'conn' + (connState === 'failed' ? ' bad' : '');
    // The top bar's dot and state are pages/presence.js's, as on every console page.
  }

  /* Channel names come from the server (boot.presence.channels, realtime/chat/channels.py). */
  var names = boot.presence.channels;
  var kefu = pusher.subscribe(names.presence);
  kefu.bind('cu-event', function (d) { incoming(d.message); });
  kefu.bind('my-event', function (d) { incoming(d.message); });  // own replies, every tab
  kefu.bind('geton', function (d) { setOnline(d.visiter_id, true); });
  kefu.bind('logout', function (d) { setOnline(d.visiter_id, false); });
  kefu.bind('typing', function (d) { setTyping(d.visiter_id, !!d.typing); });
  kefu.bind('read', function (d) {
    stream.read(d.visiter_id, d.cid);
    if (d.visiter_id === active) { decorate(); }
  });
  /* This agent read a conversation in another tab (or this one): up to `cid` nothing is
   * unread any more; what this tab heard after it still is. */
  kefu.bind('agent_read', function (d) {
    var c = d && convs[d.visiter_id];
    if (!c || !c.unread) { return; }
    c.unread = (stream.recent[d.visiter_id] || []).filter(function (m) {
      return m.direction === 'to_service' && !W.isLine(m) && Number(m.cid) > Number(d.cid);
    }).length;
    render();
  });
  kefu.bind('getswitch', function (d) {
    if (d.visiter_id === active && Number(d.service_id) !== boot.service_id) {
      toast(t('wb.movedAway', { visitor: convName(d.visiter_id), name: d.nick_name || '' }));
    }
    gone(d.visiter_id);
  });
  kefu.bind('handover', function (d) { handedOver(d); });
  kefu.bind('closed', function (d) { gone(d.visiter_id); });
  kefu.bind('blacklisted', function (d) { gone(d.visiter_id); });
  /* `load` (a function returning a promise) made to run one at a time, once more after a
   * run when asked meanwhile: a list read before a change never lands after the change's
   * own reload. */
  function oneAtATime(load) {
    var running = false, again = false;
    return function run() {
      if (running) { again = true; return; }
      running = true; again = false;
      var done = function () { running = false; if (again) { run(); } };
      load().then(done, done);
    };
  }
  var refreshConversations = oneAtATime(function () { return loadConversations(); });
  var refreshQueue = oneAtATime(function () { return loadQueue(); });
  var ud = pusher.subscribe(names.own);
  ud.bind('on_notice', function () {
    refreshConversations();
  });
  /* Coming online hands this agent the waiting visitors at once: what happened
   * before these channels were joined is read again once they are. */
  ud.bind('pusher:subscription_succeeded', refreshConversations);
  var all = pusher.subscribe(names.business);
  all.bind('pusher:subscription_succeeded', refreshQueue);
  all.bind('on_notice', function (d) {
    if (d && d.visiter_id && !waits[d.visiter_id]) { attention(vname(d), null); }
    refreshQueue();
  });
  all.bind('claimed', function (d) {
    delete waits[d.visiter_id];
    renderQueue();
    refreshQueue();
    if (Number(d.service_id) === boot.service_id) { refreshConversations(); }
  });
  all.bind('cu-event', function (d) {
    var m = d.message, w = waits[m.visiter_id];
    if (w) { w.last_msg = m; w.last_timestamp = m.timestamp; renderQueue(); }
    attention(vname(m), m);
  });
  /* Online colleagues, for transfers. */
  var team = pusher.subscribe(names.team);

  /* Exactly once, in order: each time kefu{id} is subscribed (again), everything
   * new reaches the console live; what came meanwhile is fetched for every conversation in
   * the list (getchats: unread counts and last messages, merged with what was heard live,
   * see `stream`) and, for the open one, its messages after the stream cursor. */
  W.onSubscribed(kefu, function (again) {
    loadConversations();
    if (!again) { return; }
    loadQueue();
    if (active) {
      var vid = active;
      W.fetchMissed(list, '/admin/set/history', { visiter_id: vid }, mine).then(function (added) {
        if (vid !== active) { return; }
        stamp(added);
        added.forEach(function (m) { stream.heard(vid, m); });
        decorate();
        if (added.some(function (m) { return m.direction === 'to_service'; })) { markRead(vid); }
      });
      // The visitor may have read messages shown before the drop (a `read` event missed
      // meanwhile): the latest page's read state brings the ticks up to date.
      call('GET', '/admin/set/history', { visiter_id: vid, limit: PAGE }).then(function (r) {
        if (r.code !== 0 || vid !== active) { return; }
        (r.data || []).forEach(function (m) {
          if (m.direction === 'to_visiter' && m.state === 'readed') { stream.read(vid, m.cid); }
        });
        decorate();
      });
    }
  });

  /* ---- conversations ---------------------------------------------------------------- */
  function mine(m) { return m.direction === 'to_visiter'; }

  function preview(m) {
    var type = m.msg_type || 'text';
    if (type === 'system' || type === 'note') { return W.systemText(m); }
    if (type === 'image') { return t('wb.imageMsg'); }
    if (type === 'file') { return t('wb.fileMsg') + ' ' + String(m.content || '').split('\n')[1]; }
    return m.content;
  }
  /* getchats / getwait give the last message's content only: tell uploads by their path. */
  function previewText(content) {
    var s = String(content || ''), first = s.split('\n')[0];
    if (!W.UPLOAD_PATH || !W.UPLOAD_PATH.test(first)) { return s; }
    if (s.indexOf('\n') >= 0) { return t('wb.fileMsg') + ' ' + s.slice(first.length + 1); }
    return /\.(png|jpe?g|gif|webp)$/.test(first) ? t('wb.imageMsg') : t('wb.fileMsg');
  }
  function lastText(c) {
    var m = c.last_msg;
    if (!m) { return ''; }
    return m.guess ? previewText(m.content) : preview(m);
  }
  /* The last message of a getchats / getwait entry (`last_content`, `last_msg_type`): a
   * line the server wrote (system, note) is JSON, shown through W.systemText; anything
   * else is told by its content (previewText). */
  function snapshotMsg(e) {
    var type = e.last_msg_type;
    return W.isLine({ msg_type: type }) ? { content: e.last_content, msg_type: type }
                                        : { content: e.last_content, guess: true };
  }
  function convName(vid) { return convs[vid] ? vname(convs[vid]) : vid; }
  /* A visitor's name as shown: the server's generated "访客xxxxxx" in the page's language. */
  function vname(c) { return i18n.visitorName(c.visiter_name, c.visiter_id); }

  function incoming(m) {
    var c = convs[m.visiter_id];
    // Counted once: one the list's snapshot already had (cid <= its last_cid) is not counted
    // again, but the open conversation still shows it (once: by cid).
    var fresh = stream.heard(m.visiter_id, m);
    if (m.visiter_id === active && addMsg(m, true)) { decorate(); }
    if (!fresh) { return; }
    if (W.isLine(m) || m.direction === 'to_visiter') {
      // A line the server wrote, or this agent's own reply (from another of its tabs):
      // shown, never unread or loud.
      rated(m);
      if (!c) { loadConversations(); return; }
      c.last_msg = m; c.last_timestamp = m.timestamp;
      if (m.visiter_id === active && W.systemInfo(m).key === 'contact') { loadInfo(); }
      render();
      return;
    }
    attention(m.visiter_name ? vname(m) : convName(m.visiter_id), m);
    if (!c) { loadConversations(); return; }
    c.last_msg = m; c.last_timestamp = m.timestamp; c.typing = false;
    if (m.visiter_id === active) {
      showTyping();
      if (!document.hidden) { markRead(m.visiter_id); } else { c.unread = (c.unread || 0) + 1; }
    } else {
      c.unread = (c.unread || 0) + 1;
    }
    render();
  }

  /* A visitor rated its ended conversation: told even when the conversation has
   * left the list; the details panel shows it as the latest rating. */
  function rated(m) {
    if (W.systemInfo(m).key !== 'rated') { return; }
    toast(t('wb.ratedToast', { name: m.visiter_name || convName(m.visiter_id), text: W.systemText(m) }));
    if (card && card.visiter_id === m.visiter_id) { loadInfo(); }
  }

  function setOnline(vid, on) {
    heardOnline[vid] = { on: on, seq: ++presenceSeq };
    var c = convs[vid];
    if (!c) { return; }
    c.online = on;
    if (!on) { c.typing = false; }
    render();
    if (vid === active) { paneHead(); showTyping(); loadInfo(); }
  }

  var typingTimers = {};
  function setTyping(vid, on) {
    var c = convs[vid];
    if (!c) { return; }
    c.typing = on;
    clearTimeout(typingTimers[vid]);
    if (on) { typingTimers[vid] = setTimeout(function () { setTyping(vid, false); }, 8000); }
    render();
    if (vid === active) { showTyping(); }
  }
  function showTyping() {
    var c = active && convs[active];
    var line = $('typing-line');
    line.textContent = c && c.typing ? t('wb.typing') : '';
    line.classList.toggle('on', !!(c && c.typing));
  }

  function loadConversations() {
    var asked = presenceSeq;
    return call('GET', '/admin/set/getchats', {}).then(function (r) {
      if (r.code !== 0) { return; }
      var keep = {};
      Object.keys(convs).forEach(function (k) { keep[k] = convs[k]; delete convs[k]; });
      r.data.forEach(function (c) {
        var old = keep[c.visiter_id];
        c.last_msg = snapshotMsg(c);
        if (old) { c.typing = old.typing; }
        withHeardOnline(c, asked);
        stream.merge(c);
        convs[c.visiter_id] = c;
      });
      if (active && convs[active] && !document.hidden) { convs[active].unread = 0; }
      if (active && !convs[active]) { idle(); }
      render();
    });
  }

  function avatarOf(c) {
    var a = c.avatar || '';
    return /^\/(assets|upload)\//.test(a) && a.indexOf('//') < 0 ? a : '/assets/images/index/avatar-visitor.png';
  }

  function render() {
    var holder = $('convs');
    var items = Object.keys(convs).map(function (k) { return convs[k]; });
    items.sort(function (a, b) { return (b.last_timestamp || 0) - (a.last_timestamp || 0); });
    holder.textContent = '';
    $('conv-count').textContent = items.length ? '(' + items.length + ')' : '';
    if (!items.length) { holder.appendChild(W.el('div', 'empty', t('wb.noVisitors'))); }
    var unread = 0;
    items.forEach(function (c) {
      unread += c.unread || 0;
      var b = W.el('button', 'conv' + (c.online ? '' : ' offline') + (c.visiter_id === active ? ' active' : '') +
                   (c.typing ? ' is-typing' : ''));
      b.type = 'button';
      b.dataset.visiter = c.visiter_id;
      var pic = W.el('span', 'avatar');
      var img = W.el('img'); img.alt = ''; img.src = avatarOf(c);
      pic.appendChild(img);
      pic.appendChild(W.el('span', 'presence' + (c.online ? ' on' : '')));
      var mid = W.el('div');
      mid.appendChild(W.el('div', 'name', vname(c)));
      mid.appendChild(W.el('div', 'last', c.typing ? t('wb.typingShort') : lastText(c)));
      var meta = W.el('div', 'meta');
      meta.appendChild(W.el('span', 'when', c.last_timestamp ? W.time(c.last_timestamp) : ''));
      var isNew = !c.unread && handed && handed[c.visiter_id];  // just transferred to this agent
      var badge = W.el('span', 'badge', c.unread > 99 ? '99+' : (c.unread || (isNew ? t('wb.handedBadge') : '')));
      badge.hidden = !c.unread && !isNew;
      meta.appendChild(badge);
      b.setAttribute('aria-label', vname(c) + ' · ' + (c.online ? t('wb.online') : t('wb.offline')) +
                     (c.unread ? ' · ' + t('wb.unreadCount', { n: c.unread }) : ''));
      b.appendChild(pic); b.appendChild(mid); b.appendChild(meta);
      b.addEventListener('click', function () { open(c.visiter_id); });
      holder.appendChild(b);
    });
    api.unread = unread;
  }

  /* ---- the waiting queue ------------------------------------------------------------ */
  function loadQueue() {
    return call('GET', '/admin/set/getwait', {}).then(function (r) {
      if (r.code !== 0) { return; }
      Object.keys(waits).forEach(function (k) { delete waits[k]; });
      r.data.forEach(function (w) {
        w.last_msg = snapshotMsg(w);
        waits[w.visiter_id] = w;
      });
      renderQueue();
    });
  }

  function renderQueue() {
    var holder = $('queue');
    var items = Object.keys(waits).map(function (k) { return waits[k]; });
    items.sort(function (a, b) { return (a.position || 0) - (b.position || 0); });
    holder.textContent = '';
    $('queue-count').textContent = items.length ? '(' + items.length + ')' : '';
    if (!items.length) { holder.appendChild(W.el('div', 'empty', t('wb.noQueue'))); }
    items.forEach(function (w, n) {
      var row = W.el('div', 'wait' + (w.online === false ? ' offline' : ''));
      row.dataset.visiter = w.visiter_id;
      var img = W.el('img'); img.alt = ''; img.src = avatarOf(w);
      var mid = W.el('div');
      mid.appendChild(W.el('div', 'name', vname(w)));
      mid.appendChild(W.el('div', 'last', lastText(w) || w.from_url || t('wb.waitingSince', { n: n + 1 })));
      var claim = W.el('button', 'primary small claim', t('wb.claim'));
      claim.type = 'button';
      claim.addEventListener('click', function () { claimVisitor(w.visiter_id, claim); });
      row.appendChild(img); row.appendChild(mid); row.appendChild(claim);
      holder.appendChild(row);
    });
  }

  function claimVisitor(vid, btn) {
    btn.disabled = true;
    var asked = presenceSeq;
    call('POST', '/admin/set/get', { visiter_id: vid }).then(function (r) {
      if (r.code === -1) { btn.disabled = false; toast(r.msg); return; }  // not sent: try again
      delete waits[vid];
      renderQueue();
      if (r.code === 0) {
        convs[vid] = withHeardOnline(r.data, asked);
        render();
        open(vid);
      } else {
        toast(r.code === 2 ? t('wb.claimedOther') : (r.msg || String(r.code)));
      }
      loadConversations();
    });
  }

  /* ---- one conversation ------------------------------------------------------------- */
  function open(vid) {
    var c = convs[vid];
    if (!c) { return; }
    if (active && active !== vid) { stopTyping(); }
    active = vid;
    workbench.classList.add('has-active');
    list.clear();
    list.owner = vid;
    older.more = false; older.loading = false;
    input.disabled = false; sendBtn.disabled = false;
    $('toolbar').hidden = false;
    $('pane-actions').hidden = false;
    $('act-history').href = '/admin/page/history?visiter_id=' + encodeURIComponent(vid);
    if (window.matchMedia('(min-width: 721px)').matches) { input.focus(); }
    c.unread = 0;
    seenHandover(vid);
    paneHead(); render(); showTyping();
    call('GET', '/admin/set/history', { visiter_id: vid, limit: PAGE }).then(function (r) {
      if (r.code !== 0 || active !== vid) { return; }
      r.data.forEach(function (m) {
        addMsg(m, true);
        stream.heard(vid, m);
        if (m.direction === 'to_visiter' && m.state === 'readed') { stream.read(vid, m.cid); }
      });
      older.more = r.data.length >= PAGE;
      decorate();
      box.scrollTop = box.scrollHeight;
    });
    markRead(vid);
    loadInfo();
    api.active = vid;
  }

  function idle() {
    stopTyping();
    active = null; api.active = null;
    list.clear();
    list.owner = null;
    input.disabled = true; sendBtn.disabled = true;
    $('toolbar').hidden = true;
    $('pane-actions').hidden = true;
    closePopovers();
    workbench.classList.remove('has-active', 'show-info');
    paneHead(); showTyping(); loadInfo();
    render();
  }

  function gone(vid) {
    delete convs[vid];
    if (vid === active) { idle(); }
    render();
    loadConversations();
  }

  function paneHead() {
    var title = $('pane-title');
    var img = $('pane-avatar');
    var c = active && convs[active];
    title.textContent = '';
    if (!c) {
      title.className = 'pane-idle';
      title.textContent = t('wb.pick');
      img.hidden = true;
      return;
    }
    title.className = '';
    img.hidden = false; img.src = avatarOf(c);
    img.classList.toggle('offline', !c.online);
    title.appendChild(W.el('span', 'who', vname(c)));
    title.appendChild(W.el('small', c.online ? 'on' : '', c.online ? t('wb.online') : t('wb.offline')));
  }

  function markRead(vid) {
    call('POST', '/admin/set/getwatch', { visiter_id: vid });
  }

  /* Add one message (`fromStream`: a live event or a history answer, which moves the
   * list's stream cursor; the agent's own acknowledged sends do not); rows remember their
   * time for the day separators. */
  function addMsg(m, fromStream) {
    if (fromStream) { list.heard(m); }
    if (!list.add(m, mine(m))) { return false; }
    var row = box.querySelector('.msg[data-cid="' + m.cid + '"]');
    if (row) {
      row.dataset.ts = m.timestamp;
      if (mine(m) && !W.isLine(m)) { row.querySelector('.time').appendChild(W.el('span', 'tick')); }
    }
    return true;
  }
  function stamp(ms) { (ms || []).forEach(function (m) {
    var row = box.querySelector('.msg[data-cid="' + m.cid + '"]');
    if (row && !row.dataset.ts) { row.dataset.ts = m.timestamp; }
  }); }

  function dayLabel(ts) {
    var d = new Date(ts * 1000), now = new Date();
    var y = new Date(now); y.setDate(now.getDate() - 1);
    if (d.toDateString() === now.toDateString()) { return t('wb.today'); }
    if (d.toDateString() === y.toDateString()) { return t('wb.yesterday'); }
    return d.getFullYear() + '-' + ('0' + (d.getMonth() + 1)).slice(-2) + '-' + ('0' + d.getDate()).slice(-2);
  }

  /* Day separators between days; "delivered" / "read" on the agent's own messages. */
  function decorate() {
    box.querySelectorAll('.day, .list-start').forEach(function (e) { e.remove(); });
    var readCid = active ? stream.readCid(active) : 0;
    var last = '';
    box.querySelectorAll('.msg[data-cid]').forEach(function (row) {
      var ts = Number(row.dataset.ts || 0);
      var day = ts ? new Date(ts * 1000).toDateString() : last;
      if (day !== last) {
        var sep = W.el('div', 'day'); sep.appendChild(W.el('span', '', dayLabel(ts)));
        box.insertBefore(sep, row);
        last = day;
      }
      var tick = row.querySelector('.tick');
      if (tick) {
        var read = Number(row.dataset.cid) <= readCid;
        tick.textContent = read ? t('wb.read') : t('wb.sent');
        tick.classList.toggle('read', read);
      }
    });
    if (active && !older.more && box.querySelector('.msg[data-cid]')) {
      box.insertBefore(W.el('div', 'list-start', t('wb.start')), box.firstChild);
    }
  }

  /* Older messages when scrolled to the top. */
  box.addEventListener('scroll', function () {
    if (box.scrollTop > 60 || !active || !older.more || older.loading) { return; }
    var vid = active, first = list.firstCid();
    if (!first) { return; }
    older.loading = true;
    var spin = W.el('div', 'list-start', t('wb.loadingOlder'));
    box.insertBefore(spin, box.firstChild);
    call('GET', '/admin/set/history', { visiter_id: vid, before: first, limit: PAGE }).then(function (r) {
      spin.remove();
      older.loading = false;
      if (r.code !== 0 || vid !== active) { return; }
      var h = box.scrollHeight, top = box.scrollTop;
      r.data.forEach(function (m) {
        addMsg(m, true);
        if (m.direction === 'to_visiter' && m.state === 'readed') { stream.read(vid, m.cid); }
      });
      older.more = r.data.length >= PAGE;
      decorate();
      box.scrollTop = top + (box.scrollHeight - h);
    });
  });

  /* ---- sending ---------------------------------------------------------------------- */
  W.composer($('composer'), input, function (text) {
    if (!active) { return Promise.resolve(false); }
    var vid = active;
    typingSignal.sent();
    return call('POST', '/admin/set/chats', { visiter_id: vid, content: text }).then(function (r) {
      if (r.code === 0) {
        if (vid === active) { addMsg(r.data); decorate(); box.scrollTop = box.scrollHeight; }
        if (convs[vid]) { convs[vid].last_msg = r.data; convs[vid].last_timestamp = r.data.timestamp; render(); }
        return true;
      }
      list.system(t('wb.notSent', { msg: r.msg || r.code }));
      return false;
    });
  });

  /* Typing: throttled by Wolive.typingSignal (typing.js), so fast typing, quick lines and
   * switching conversations never meet the server's limit. */
  var typingSignal = W.typingSignal(function (vid, on) {
    call('POST', '/admin/set/typing', { visiter_id: vid, typing: on ? 1 : 0 });
  });
  api.typingSignal = typingSignal;
  input.addEventListener('input', function () {
    if (active && input.value) { typingSignal.key(active); }
  });
  function stopTyping() { typingSignal.stop(); }

  /* ---- uploads: images, files, pasted screenshots ------------------------------------ */
  function upload(file, kind) {
    if (!active || !file) { return; }
    var vid = active;
    var note = list.system(t('wb.uploading', { name: file.name || 'image' }));
    var fd = new FormData();
    fd.append(kind === 'image' ? 'upload' : 'folder', file, file.name || 'screenshot.png');
    fd.append('visiter_id', vid);
    fetch(kind === 'image' ? '/admin/set/upload' : '/admin/set/uploadfile', {
      method: 'POST', body: fd, credentials: 'same-origin', headers: { 'X-XSRFToken': xsrf() }
    }).then(function (r) {
      return r.json().catch(function () { return { code: -1, msg: 'HTTP ' + r.status }; });
    }).then(function (r) {
      note.remove();
      if (r.code === 0) {
        if (vid === active) { addMsg(r.data); decorate(); box.scrollTop = box.scrollHeight; }
        if (convs[vid]) { convs[vid].last_msg = r.data; convs[vid].last_timestamp = r.data.timestamp; render(); }
      } else {
        list.system(t('wb.uploadFailed', { msg: r.msg || r.code }));
      }
    }, function (e) { note.remove(); list.system(t('wb.uploadFailed', { msg: String(e) })); });
  }
  $('tool-image').addEventListener('click', function () { $('pick-image').click(); });
  $('tool-file').addEventListener('click', function () { $('pick-file').click(); });
  $('pick-image').addEventListener('change', function (e) {
    upload(e.target.files[0], 'image'); e.target.value = '';
  });
  $('pick-file').addEventListener('change', function (e) {
    upload(e.target.files[0], 'file'); e.target.value = '';
  });
  input.addEventListener('paste', function (e) {
    var items = (e.clipboardData && e.clipboardData.items) || [];
    for (var i = 0; i < items.length; i++) {
      if (items[i].kind === 'file' && /^image\//.test(items[i].type)) {
        e.preventDefault();
        upload(items[i].getAsFile(), 'image');
        return;
      }
    }
  });

  /* ---- emoji and quick replies ------------------------------------------------------ */
  var EMOJI = ('😀 😁 😂 🤣 😊 😍 😘 😎 🤔 😅 😉 🙂 🙃 😢 😭 😡 😱 😴 🤗 🙏 👍 👎 👌 👏 ' +
               '💪 🤝 👋 ✌️ ❤️ 💔 🎉 🎁 🌹 ☕ 🍵 🔥 ⭐ ✅ ❌ ❓ 📦 🚚 💰 📞 📧 ⏰').split(' ');
  var emojiPanel = $('emoji-panel');
  EMOJI.forEach(function (e) {
    var b = W.el('button', 'emoji', e); b.type = 'button';
    b.addEventListener('click', function () { insert(e); });
    emojiPanel.appendChild(b);
  });
  function insert(text) {
    var s = input.selectionStart, end = input.selectionEnd, v = input.value;
    if (typeof s !== 'number') { s = end = v.length; }
    input.value = v.slice(0, s) + text + v.slice(end);
    input.selectionStart = input.selectionEnd = s + text.length;
    input.dispatchEvent(new Event('input'));
    input.focus();
  }
  function togglePopover(btn, panel) {
    var show = panel.hidden;
    closePopovers();
    panel.hidden = !show;
    btn.setAttribute('aria-expanded', String(show));
    if (show && panel === $('quick-panel')) { renderQuick(); }
  }
  function closePopovers() {
    [['tool-emoji', 'emoji-panel'], ['tool-quick', 'quick-panel']].forEach(function (p) {
      $(p[1]).hidden = true; $(p[0]).setAttribute('aria-expanded', 'false');
    });
  }
  $('tool-emoji').addEventListener('click', function () { togglePopover($('tool-emoji'), emojiPanel); });
  $('tool-quick').addEventListener('click', function () { togglePopover($('tool-quick'), $('quick-panel')); });
  document.addEventListener('keydown', function (e) { if (e.key === 'Escape') { closePopovers(); } });
  document.addEventListener('click', function (e) {
    if (!e.target.closest('.toolbar')) { closePopovers(); }
  });

  /* Quick replies live on the server, shared and own (quick-replies.js). */
  var greeting = '';
  var quickMenu = W.quickReplies.menu({
    holder: $('quick-list'), form: $('quick-add'), text: $('quick-text'),
    serviceId: boot.service_id, greeting: function () { return greeting; },
    pick: function (text) { closePopovers(); insert(text); }, toast: toast
  });
  function renderQuick() { quickMenu.show(); }
  call('GET', '/admin/manager/cmtalk', {}).then(function (r) {
    if (r.code === 0 && r.data && r.data.content) { greeting = String(r.data.content); }
  }, function () { /* no greeting */ });

  /* ---- transfer, close, blacklist --------------------------------------------------- */
  $('act-transfer').addEventListener('click', function () {
    if (!active) { return; }
    paintTransfer();
    var dlg = $('transfer-dialog');
    if (dlg.showModal) { dlg.showModal(); } else { dlg.setAttribute('open', ''); }
  });
  ['pusher:subscription_succeeded', 'pusher:member_added', 'pusher:member_removed'].forEach(function (ev) {
    team.bind(ev, function () { if ($('transfer-dialog').open) { paintTransfer(); } });
  });
  function paintTransfer() {
    var holder = $('transfer-list');
    holder.textContent = '';
    var found = 0;
    if (team.members) {
      team.members.each(function (m) {
        if (String(m.id) === String(boot.service_id)) { return; }
        if (W.presence && W.presence.away[m.id]) { return; }  // away: no transfers
        found++;
        var b = W.el('button', 'transfer-to'); b.type = 'button';
        b.dataset.service = m.id;
        var img = W.el('img'); img.alt = '';
        var av = m.info && m.info.avatar;
        img.src = av && /^\/(assets|upload)\//.test(av) ? av : AVATAR;
        b.appendChild(img);
        b.appendChild(W.el('span', '', (m.info && m.info.nick_name) || ('#' + m.id)));
        b.addEventListener('click', function () { transfer(m.id, (m.info && m.info.nick_name) || m.id); });
        holder.appendChild(b);
      });
    }
    if (!found) { holder.appendChild(W.el('div', 'empty', t('wb.noColleagues'))); }
  }
  function transfer(sid, name) {
    var vid = active;
    var noteBox = $('transfer-note');
    $('transfer-dialog').close();
    call('POST', '/admin/set/transfer', { visiter_id: vid, service_id: sid,
                                          note: noteBox ? noteBox.value.trim() : '' }).then(function (r) {
      if (r.code === 0) {
        if (noteBox) { noteBox.value = ''; }
        toast(t('wb.transferred', { name: name })); gone(vid);
      } else { toast(r.msg || String(r.code)); }
    });
  }

  /* ---- a conversation handed to this agent (a transfer, or its agent left) -------------
   * `kefu{id}` `handover`: a notice with the visitor, who sent it and the note (only this
   * agent gets the note), the sound, and a badge on the conversation until it is opened. */
  i18n.add({
    zh: { 'wb.transferNote': '给接收客服的备注（选填，访客看不到）', 'wb.handedBadge': '新',
          'wb.handedFrom': '{from} 把 {visitor} 转接给了你', 'wb.handedLeft': '{from} 已离线，{visitor} 已转接给你',
          'wb.handedNote': '备注：{note}', 'wb.handedOpen': '查看对话', 'wb.dismiss': '知道了' },
    en: { 'wb.transferNote': 'Note for the receiving agent (optional, the visitor does not see it)',
          'wb.handedBadge': 'new', 'wb.handedFrom': '{from} transferred {visitor} to you',
          'wb.handedLeft': '{from} went offline: {visitor} is yours now',
          'wb.handedNote': 'Note: {note}', 'wb.handedOpen': 'Open', 'wb.dismiss': 'Dismiss' }
  });
  var handed = api.handed = {};   // visiter_id -> true until the agent opens it
  var lastHandover = null;
  function handedOver(d) {
    if (!d || !d.visiter_id) { return; }
    handed[d.visiter_id] = true;
    showHandover(d);
    attention(d.visiter_name || convName(d.visiter_id), null);
    loadConversations();
  }
  function showHandover(d) {
    var note = $('handover');
    if (!note) {
      note = W.el('div', 'handover'); note.id = 'handover';
      note.setAttribute('role', 'status'); note.setAttribute('aria-live', 'polite');
      document.body.appendChild(note);
    }
    lastHandover = d;
    note.textContent = '';
    note.dataset.visiter = d.visiter_id;
    var vars = { from: d.from_nick_name || '—',
                 visitor: d.visiter_name ? vname(d) : d.visiter_id };
    note.appendChild(W.el('strong', '', t(d.reason === 'agent_left' ? 'wb.handedLeft' : 'wb.handedFrom', vars)));
    if (d.note) { note.appendChild(W.el('p', 'handover-note', t('wb.handedNote', { note: d.note }))); }
    var row = W.el('div', 'handover-actions');
    var go = W.el('button', 'primary small', t('wb.handedOpen')); go.type = 'button';
    go.addEventListener('click', function () {
      if (convs[d.visiter_id]) { open(d.visiter_id); return; }
      loadConversations().then(function () { open(d.visiter_id); });
    });
    var no = W.el('button', 'link', t('wb.dismiss')); no.type = 'button';
    no.addEventListener('click', function () { note.hidden = true; lastHandover = null; });
    row.appendChild(go); row.appendChild(no);
    note.appendChild(row);
    note.hidden = false;
  }
  function seenHandover(vid) {
    if (handed) { delete handed[vid]; }
    var note = $('handover');
    if (note && note.dataset.visiter === vid) { note.hidden = true; lastHandover = null; }
  }
  i18n.onChange(function () { if (lastHandover) { showHandover(lastHandover); } });
  $('act-close').addEventListener('click', function () {
    var vid = active;
    if (!vid || !window.confirm(t('wb.confirmClose', { name: convName(vid) }))) { return; }
    call('POST', '/admin/set/close', { visiter_id: vid }).then(function (r) {
      if (r.code === 0) { toast(t('wb.closed')); gone(vid); } else { toast(r.msg || String(r.code)); }
    });
  });
  $('act-black').addEventListener('click', function () {
    var vid = active;
    if (!vid || !window.confirm(t('wb.confirmBlack', { name: convName(vid) }))) { return; }
    call('POST', '/admin/set/blacklist', { visiter_id: vid }).then(function (r) {
      if (r.code === 0) { toast(t('wb.blacklisted')); gone(vid); } else { toast(r.msg || String(r.code)); }
    });
  });

  /* ---- the visitor's details -------------------------------------------------------- */
  var card = null;
  function fmtTime(s) {
    if (!s) { return t('wb.unknown'); }
    var d = new Date(s * 1000);
    return d.getFullYear() + '-' + ('0' + (d.getMonth() + 1)).slice(-2) + '-' + ('0' + d.getDate()).slice(-2) +
      ' ' + ('0' + d.getHours()).slice(-2) + ':' + ('0' + d.getMinutes()).slice(-2);
  }
  function loadInfo() {
    var vid = active;
    if (!vid) { card = null; paintInfo(); return; }
    call('GET', '/admin/set/visitor', { visiter_id: vid }).then(function (r) {
      if (vid !== active) { return; }
      card = r.code === 0 ? r.data : null;
      paintInfo(true);
    });
  }
  function paintInfo(fillForm) {
    var body = $('info-body');
    body.textContent = '';
    $('info-form').hidden = !card;
    if (!card) { body.appendChild(W.el('div', 'empty', t('wb.noInfo'))); return; }
    var head = W.el('div', 'info-who');
    var img = W.el('img'); img.alt = ''; img.src = avatarOf(card);
    head.appendChild(img);
    var nm = W.el('div');
    nm.appendChild(W.el('strong', '', vname(card)));
    var c = convs[card.visiter_id];
    var on = c ? c.online : card.online;
    nm.appendChild(W.el('span', 'state' + (on ? ' on' : ''), on ? t('wb.online') : t('wb.offline')));
    head.appendChild(nm);
    body.appendChild(head);
    var dl = W.el('dl', 'facts');
    function fact(label, value, cls) {
      dl.appendChild(W.el('dt', '', label));
      var dd = W.el('dd', cls || '', value || t('wb.unknown'));
      if (value) { dd.title = value; }
      dl.appendChild(dd);
    }
    var dev = card.device || {};
    var devText = [dev.os, dev.browser, dev.device].filter(Boolean).join(' · ');
    if (devText) { devText += ' (' + (dev.mobile ? t('wb.mobile') : t('wb.desktop')) + ')'; }
    fact(t('wb.source'), card.from_url, 'url');
    fact(t('wb.referrer'), card.referrer, 'url');
    fact(t('wb.ip'), card.ip);
    fact(t('wb.place'), card.place);
    fact(t('wb.device'), devText);
    fact(t('wb.firstVisit'), card.first_visit ? fmtTime(card.first_visit) : '');
    fact(t('wb.lastVisit'), card.last_visit ? fmtTime(card.last_visit) : '');
    fact(t('wb.visits'), card.visits ? String(card.visits) : '');
    var rt = card.rating;
    fact(t('wb.rating'), rt ? W.stars(rt.score) + ' ' + rt.score + '/5' + (rt.comment ? ' “' + rt.comment + '”' : '') +
         ' · ' + fmtTime(rt.timestamp) : t('rating.none'), 'rating');
    body.appendChild(dl);
    if (fillForm) {
      $('f-name').value = card.name || '';
      $('f-tel').value = card.tel || '';
      $('f-note').value = card.note || '';
      $('info-saved').textContent = '';
    }
  }
  $('info-form').addEventListener('submit', function (e) {
    e.preventDefault();
    if (!card) { return; }
    var vid = card.visiter_id;
    call('POST', '/admin/set/visitor', { visiter_id: vid, name: $('f-name').value,
                                          tel: $('f-tel').value, note: $('f-note').value }).then(function (r) {
      if (r.code === 0 && vid === active) { card = r.data; paintInfo(true); $('info-saved').textContent = t('wb.saved'); }
      else if (r.code !== 0) { $('info-saved').textContent = r.msg || String(r.code); }
    });
  });
  $('act-info').addEventListener('click', function () {
    var on = workbench.classList.toggle('show-info');
    $('act-info').setAttribute('aria-expanded', String(on));
  });
  $('info-close').addEventListener('click', function () {
    workbench.classList.remove('show-info');
    $('act-info').setAttribute('aria-expanded', 'false');
  });

  /* Phones show the list or the conversation; 返回 goes back to the list. */
  $('back').addEventListener('click', idle);

  /* ---- attention: sound, title, notifications --------------------------------------- */
  var SOUND_KEY = 'wolive_sound_' + boot.service_id;
  var soundOn = (function () { try { return localStorage.getItem(SOUND_KEY) !== 'off'; } catch (e) { return true; } })();
  var voice = { state: 'open', address: '' };
  var audioCtx = null, audioEl = null;
  function paintSound() {
    var b = $('sound-toggle');
    b.textContent = soundOn ? '🔔' : '🔕';
    b.setAttribute('aria-pressed', String(soundOn));
  }
  $('sound-toggle').addEventListener('click', function () {
    soundOn = !soundOn;
    try { localStorage.setItem(SOUND_KEY, soundOn ? 'on' : 'off'); } catch (e) { /* private */ }
    paintSound();
    if (soundOn) { ding(); }
  });
  if (boot.level !== 'service') {
    call('GET', '/admin/manager/switches', { business_id: boot.business_id }).then(function (r) {
      if (r.code === 0 && r.data) {
        voice.state = r.data.voice_state;
        voice.address = String(r.data.voice_address || '');
      }
    });
  }
  /* WoLive's default /upload/voice/… file is never served here: those get the beep. */
  function voiceUrl() {
    var a = voice.address;
    return /^\/(?!\/)[^?#]*\.(mp3|wav|ogg|m4a|aac)$/i.test(a) && a.indexOf('..') < 0 &&
      !/^\/upload\/voice\//.test(a) ? a : '';
  }
  function beep() {
    try {
      var Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) { return; }
      audioCtx = audioCtx || new Ctx();
      var o = audioCtx.createOscillator(), g = audioCtx.createGain(), now = audioCtx.currentTime;
      o.type = 'sine'; o.frequency.setValueAtTime(880, now);
      o.frequency.setValueAtTime(1320, now + 0.09);
      g.gain.setValueAtTime(0.0001, now);
      g.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, now + 0.25);
      o.connect(g); g.connect(audioCtx.destination);
      o.start(now); o.stop(now + 0.26);
    } catch (e) { /* no audio */ }
  }
  function ding() {
    api.dings = (api.dings || 0) + 1;
    var url = voiceUrl();
    if (!url) { beep(); return; }
    if (!audioEl || audioEl.dataset.src !== url) {
      audioEl = new Audio(url); audioEl.dataset.src = url;
      audioEl.addEventListener('error', function () { voice.address = ''; });
    }
    try {
      audioEl.currentTime = 0;
      var p = audioEl.play();
      if (p && p.catch) { p.catch(beep); }
    } catch (e) { beep(); }
  }
  /* Let WebAudio start after the first click (browsers' autoplay rule). */
  document.addEventListener('pointerdown', function () {
    if (audioCtx && audioCtx.state === 'suspended') { audioCtx.resume(); }
  });

  var baseTitle = document.title, blink = null, blinkOn = false;
  function startBlink() {
    if (blink) { return; }
    blink = setInterval(function () {
      blinkOn = !blinkOn;
      document.title = blinkOn ? t('wb.newMsg') + ' ' + baseTitle : baseTitle;
    }, 900);
  }
  function stopBlink() {
    clearInterval(blink); blink = null; blinkOn = false; document.title = baseTitle;
  }
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) {
      stopBlink();
      if (active && convs[active] && convs[active].unread) {
        convs[active].unread = 0; render(); markRead(active);
      }
    }
  });
  api.attentionCount = 0;
  function attention(name, m) {
    api.attentionCount++;
    if (soundOn && voice.state !== 'close') { ding(); }
    if (document.hidden) {
      startBlink();
      if ('Notification' in window && Notification.permission === 'granted') {
        try {
          var n = new Notification(t('wb.newFrom', { name: name || '' }), {
            body: m ? preview(m) : '', tag: 'wolive-' + (m ? m.visiter_id : 'queue'),
            icon: '/assets/images/index/im.png' });
          n.onclick = function () { window.focus(); if (m && convs[m.visiter_id]) { open(m.visiter_id); } n.close(); };
        } catch (e) { /* not allowed here */ }
      }
    }
  }
  /* Asked politely: a banner the agent clicks, never on load. */
  var NOTIFY_KEY = 'wolive_notify_asked';
  (function () {
    var banner = $('notify-banner');
    var asked = false;
    try { asked = localStorage.getItem(NOTIFY_KEY) === '1'; } catch (e) { /* private */ }
    if (!('Notification' in window) || Notification.permission !== 'default' || asked) { return; }
    banner.hidden = false;
    $('notify-yes').addEventListener('click', function () {
      banner.hidden = true;
      try { localStorage.setItem(NOTIFY_KEY, '1'); } catch (e) { /* private */ }
      Notification.requestPermission();
    });
    ['notify-no', 'notify-x'].forEach(function (id) {
      $(id).addEventListener('click', function () {
        banner.hidden = true;
        try { localStorage.setItem(NOTIFY_KEY, '1'); } catch (e) { /* private */ }
      });
    });
  })();

  var toastTimer = null;
  function toast(text) {
    var el = $('wb-toast');
    el.textContent = text; el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { el.hidden = true; }, 4000);
  }

  /* ---- language --------------------------------------------------------------------- */
  i18n.onChange(function () {
    baseTitle = document.title;
    paintConn(); render(); renderQueue(); paneHead(); showTyping(); decorate(); paintInfo(false);
    list.retranslate();
    if (!$('quick-panel').hidden) { renderQuick(); }
  });

  i18n.apply(document);
  baseTitle = document.title;
  paintConn();
  paintSound();
  loadConversations();
  loadQueue();
})();
