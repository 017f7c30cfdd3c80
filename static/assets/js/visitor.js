/* The visitor chat window (/index/index/home): the agent in the header (grey when offline),
 * greeting, queue position, FAQ and tab panels, emoji, image and file upload, sound, the
 * agent's typing, the leave-a-message form when nobody is online, connection state with
 * missed messages fetched after a reconnect, and a zh/en switch.
 * Everything from people goes into the page as text; only the FAQ answers and tab contents
 * (sanitised by the server, cleaned again here) are inserted as HTML. */
(function () {
  'use strict';
  var W = window.Wolive;
  var T = W.i18n;
  var $ = function (id) { return document.getElementById(id); };
  var boot = JSON.parse($('boot').textContent);
  var box = $('messages');
  var list = new W.MessageList(box);
  list.owner = boot.visiter_id;
  var input = $('input'), sendBtn = $('send'), conn = $('conn');
  var ids = { visiter_id: boot.visiter_id, business_id: boot.business_id, channel: boot.channel };
  var agent = null, agentChannel = null, agentOnline = false, agentAway = false;
  var mode = 'connecting';     // connecting | assigned | waiting | nobody | closed | blocked
  var position = 0;
  var state = { connected: false, everConnected: false };
  window.woliveVisitor = { boot: boot, list: list };

  T.add({
    zh: {
      title: '在线客服', agent_default: '在线客服', connecting_you: '正在为您接通…',
      online: '在线', offline: '已离线，可留言', agent_away: '暂时离开', nobody_state: '客服不在线', waiting_state: '排队中',
      closed_state: '暂停咨询', blocked_state: '无法咨询',
      nobody_msg: '客服暂时不在线，请给我们留言，我们会尽快回复您。',
      closed_msg: '该网站已经停止客服咨询！', blocked_msg: '您暂时无法发起咨询。',
      unavailable_msg: '暂时无法咨询：{msg}',
      queue: '正在排队，您是第 {n} 位', queue_ahead: '正在排队，您前面还有 {n} 人，请稍候…',
      queue_next: '马上就轮到您了，请稍候…', joined: '{name} 为您服务',
      placeholder: '请输入消息…', placeholder_wait: '先写问题…', placeholder_nobody: '请在上方留言', send: '发送',
      emoji: '表情', image: '发送图片', file: '发送文件', sound: '提示音',
      sound_on: '提示音：开', sound_off: '提示音：关', video: '视频通话',
      video_soon: '视频通话暂不可用', back: '返回网站', close: '关闭窗口',
      lang_other: 'EN', lang_switch: 'English',
      conn_connecting: '正在连接…', conn_unavailable: '网络断开，正在重连…',
      conn_failed: '无法连接，请检查网络', conn_disconnected: '已断开，正在重连…',
      uploading: '正在上传 {name}…', upload_failed: '上传失败：{msg}', not_sent: '发送失败：{msg}',
      typing: '客服正在输入…', view_chat: '对话', view_faq: '常见问题',
      leave_title: '请留言',
      name: '姓名', phone: '电话', email: '邮箱', content: '留言内容',
      contact_hint: '电话或邮箱至少填一项', need_name: '请填写姓名', need_contact: '请填写电话或邮箱',
      need_content: '请填写留言内容', submit: '提交留言', submitting: '正在提交…',
      thanks_title: '留言成功', thanks: '谢谢 {name}！我们已收到您的留言，会尽快联系您。',
      leave_failed: '提交失败：{msg}', leave_again: '再写一条', chat_now: '在线咨询',
      'sys.rated': '您的评价：{stars}{quoted}，谢谢！',
      rate_title: '请为本次服务评分', rate_star: '{n} 星', rate_stars: '评分（1–5 星）',
      rate_comment: '还有什么想告诉我们的吗？（可选）', rate_submit: '提交评价',
      rate_later: '以后再说', rate_need: '请选择 1–5 星', rate_failed: '评价未提交：{msg}',
      rate_already: '这次对话已经评价过了', rate_sending: '正在提交…'
    },
    en: {
      title: 'Live chat', agent_default: 'Support', connecting_you: 'Connecting you…',
      online: 'Online', offline: 'Offline · write anyway', agent_away: 'Away', nobody_state: 'Nobody online',
      waiting_state: 'In the queue', closed_state: 'Chat paused', blocked_state: 'Unavailable',
      nobody_msg: 'Nobody is online right now. Leave us a message and we will get back to you soon.',
      closed_msg: 'This site is not taking chats right now.',
      blocked_msg: 'You cannot start a chat right now.',
      unavailable_msg: 'Chat unavailable: {msg}',
      queue: 'You are number {n} in the queue', queue_ahead: 'In the queue: {n} ahead of you. Please wait…',
      queue_next: 'You are next. Please wait…', joined: '{name} is here to help',
      placeholder: 'Message…', placeholder_wait: 'Ask away…',
      placeholder_nobody: 'Use the form',
      send: 'Send', emoji: 'Emoji', image: 'Send a picture', file: 'Send a file',
      sound: 'Sound', sound_on: 'Sound: on', sound_off: 'Sound: off', video: 'Video call',
      video_soon: 'Video calls are not available yet', back: 'Back to the site',
      close: 'Close', lang_other: '中文', lang_switch: '中文',
      conn_connecting: 'Connecting…', conn_unavailable: 'Connection lost, reconnecting…',
      conn_failed: 'Cannot connect. Check your network', conn_disconnected: 'Disconnected, reconnecting…',
      uploading: 'Uploading {name}…', upload_failed: 'Upload failed: {msg}', not_sent: 'Not sent: {msg}',
      typing: 'typing…', view_chat: 'Chat', view_faq: 'FAQ',
      leave_title: 'Leave a message',
      name: 'Name', phone: 'Phone', email: 'Email', content: 'Message',
      contact_hint: 'A phone number or an email, at least one.',
      need_name: 'Please give your name',
      need_contact: 'Please give a phone number or an email', need_content: 'Please write a message',
      submit: 'Send message', submitting: 'Sending…', thanks_title: 'Message sent',
      thanks: 'Thank you, {name}! We got your message and will get back to you soon.',
      leave_failed: 'Not sent: {msg}', leave_again: 'Write another', chat_now: 'Chat now',
      'sys.rated': 'Your rating: {stars}{quoted}. Thank you!',
      rate_title: 'How was our service?', rate_star: '{n} of 5 stars', rate_stars: 'Rating (1 to 5 stars)',
      rate_comment: 'Anything else to tell us? (optional)', rate_submit: 'Send rating',
      rate_later: 'Not now', rate_need: 'Please pick 1 to 5 stars', rate_failed: 'Rating not sent: {msg}',
      rate_already: 'This conversation is rated already', rate_sending: 'Sending…'
    }
  });

  /* ---- system lines that follow the language switch ---------------------------------- */
  var sysRows = [];
  function sys(key, vars) {
    var row = list.system(T.t(key, vars));
    row.dataset.key = key;
    sysRows.push({ row: row, key: key, vars: vars });
    return row;
  }
  T.onChange(function () {
    sysRows.forEach(function (s) { s.row.firstChild.textContent = T.t(s.key, s.vars); });
    list.retranslate();
    renderHead(); renderQueue(); renderConn(); renderSound();
    document.title = T.t('title');
  });

  /* ---- header: agent, presence, state ------------------------------------------------- */
  function renderHead() {
    var key = { connecting: 'connecting_you', waiting: 'waiting_state', nobody: 'nobody_state',
                closed: 'closed_state', blocked: 'blocked_state' }[mode];
    $('head').classList.toggle('offline', !(mode === 'assigned' && agentOnline));
    if (agent) { $('agent-name').textContent = agent.nick_name || T.t('agent_default'); }
    $('head').classList.toggle('away', mode === 'assigned' && agentOnline && agentAway);
    $('agent-state').textContent = mode === 'assigned'
      ? T.t(agentOnline ? (agentAway ? 'agent_away' : 'online') : 'offline') : T.t(key);
    input.placeholder = T.t(mode === 'waiting' ? 'placeholder_wait' :
                            mode === 'nobody' ? 'placeholder_nobody' : 'placeholder');
  }
  function safeImage(src) {
    return typeof src === 'string' && /^\/(upload|assets)\/[^\s"'<>\\]*$/.test(src) &&
      src.indexOf('//') < 0 && src.indexOf('..') < 0;
  }
  function setAgent(a) {
    agent = a;
    if (safeImage(a.avatar)) { $('agent-avatar').src = a.avatar; }
    agentOnline = a.state !== 'offline';
    agentAway = a.status === 'away';
    // `agent_channel`: the agent's state channel, as the server names it (se{service_id}).
    if (a.agent_channel && agentChannel !== a.agent_channel) {
      if (agentChannel) { pusher.unsubscribe(agentChannel); }
      agentChannel = a.agent_channel;
      var se = pusher.subscribe(agentChannel);
      se.bind('geton', function () { agentOnline = true; awayTold = false; renderHead(); });
      se.bind('logout', function () { agentOnline = false; renderHead(); });
      // The agent's explicit available / away; geton / logout stay online / offline.
      se.bind('status', function (d) { agentAway = !!d && d.status === 'away'; renderHead(); });
    }
  }
  function setEnabled(on) {
    input.disabled = !on; sendBtn.disabled = !on;
    ['emoji-btn', 'image-btn', 'file-btn'].forEach(function (id) { $(id).disabled = !on; });
  }
  function assigned(a) {
    var first = mode !== 'assigned' || !agent || agent.service_id !== a.service_id;
    var wasWaiting = mode === 'waiting' || mode === 'nobody';
    dropLeaveForm();
    // Another agent took over (its agent had left): the contact form offered meanwhile goes.
    if (first) { dropContactForm(); awayTold = false; }
    mode = 'assigned'; setAgent(a); setEnabled(true); renderQueue();
    renderHead();
    if (first && wasWaiting) { sys('joined', { name: a.nick_name || T.t('agent_default') }); }
    // The greeting is the agent's first message (stored, in the transcript): shown once, by cid.
    if (a.greeting_message) { list.add(a.greeting_message, false); noteLast(a.greeting_message); }
  }

  /* ---- the queue ---------------------------------------------------------------------- */
  /* The server pushes `queue` {position} to everyone waiting whenever the line changes
   * (and when an agent comes online to a visitor on "nobody online"), and `cu_notice` when
   * an agent takes the visitor: both switch the window live. The HTTP position is asked
   * only after a reconnect, for what was missed meanwhile. */
  function renderQueue() {
    var q = $('queue');
    q.hidden = mode !== 'waiting';
    if (mode === 'waiting') {
      $('queue-text').textContent = position > 1 ? T.t('queue_ahead', { n: position - 1 })
                                                 : T.t('queue_next');
      q.title = T.t('queue', { n: position });
    }
  }
  function waiting(pos) {
    dropLeaveForm();
    mode = 'waiting'; position = pos || 1;
    setEnabled(true);  // a waiting visitor may write: every agent of the business sees it
    renderHead(); renderQueue();
  }
  function pollPosition() {
    W.api('GET', '/admin/event/position', ids).then(function (r) {
      if (r.code !== 0 || !r.data) { return; }
      if (r.data.state === 'waiting' && r.data.position >= 1) { position = r.data.position; renderQueue(); }
      else if (mode === 'waiting') { notice(); }  // taken meanwhile, out of the line, or nobody online
    }).catch(function () { /* offline: the next reconnect tries again */ });
  }
  window.woliveVisitor.pollPosition = pollPosition;

  /* ---- connection ---------------------------------------------------------------------- */
  var connState = 'connecting';
  function renderConn() {
    conn.hidden = connState === 'connected' || connState === 'initialized';
    conn.textContent = T.t('conn_' + connState);
    conn.className = 'conn ' + connState;
  }
  var pusher = W.pusher(boot.pusher, function (s) {
    connState = s; renderConn();
    if (s === 'connected') {
      if (state.everConnected) {
        if (mode === 'waiting') { pollPosition(); } else if (mode === 'nobody' && leaving()) { notice(); }
      }
      state.everConnected = true;
    }
  });
  window.woliveVisitor.pusher = pusher;
  var mine = pusher.subscribe(boot.channels.visitor);
  mine.bind('my-event', function (d) {
    if (d && d.message && list.received(d.message, isMine(d.message))) {
      noteLast(d.message);
      if (d.message.msg_type === 'system') { agentLine(d.message); return; }
      if (d.message.direction !== 'to_service') { ding(); hideTyping(); markRead(); }
    }
  });
  mine.bind('cu_notice', function (a) { if (a && a.service_id) { assigned(a); } });
  mine.bind('queue', function (d) {
    var pos = Number(d && d.position);
    // Position 0: the last agent went offline. The notice answers "nobody online" (code 3)
    // and the window shows it with the leave-a-message form, not a stale place.
    if (pos === 0 && mode === 'waiting') { notice(); return; }
    if (!(pos >= 1) || mode === 'assigned' || mode === 'blocked' || mode === 'closed') { return; }
    if (mode === 'waiting') { position = pos; renderQueue(); } else { waiting(pos); }
  });
  mine.bind('typing', function (d) { if (d && d.typing === false) { hideTyping(); } else { showTyping(); } });
  /* The agent read the visitor's messages up to cid: a double tick on them. */
  mine.bind('read', function (d) {
    box.querySelectorAll('.msg.mine[data-cid]').forEach(function (row) {
      if (Number(row.dataset.cid) <= Number(d && d.cid)) { row.classList.add('read'); }
    });
  });

  /* Once the channel is subscribed (again), everything new arrives live: ask for what
   * came after the stream cursor meanwhile (wolive-common.js, W.fetchMissed). */
  W.onSubscribed(mine, function () { fetchMissed(); });

  /* Messages: each cid once, in cid order. After a reconnect only the ones after the
   * stream cursor (never raised by the window's own sends) are asked for (`after`); the
   * list drops any it already shows. */
  var lastCid = 0;
  function noteLast(m) { if (m && m.cid > lastCid) { lastCid = m.cid; } }
  function isMine(m) { return m.direction === 'to_service'; }
  function addAll(rows) {
    var added = [];
    (rows || []).forEach(function (m) {
      if (list.received(m, isMine(m))) { added.push(m); }
      noteLast(m);
    });
    return added;
  }
  /* In a site's closed panel nothing is seen yet: history is read with `peek` (marks nothing
   * read); the read receipt goes when the panel opens (markRead). */
  function historyIds() {
    if (!W.embed || W.embed.open) { return ids; }
    return { visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel, peek: 1 };
  }
  function loadHistory() {
    return W.api('GET', '/admin/event/history', historyIds()).then(function (r) {
      if (r.code === 0) { addAll(r.data); }
      // In a site's panel: replies the visitor has not seen yet count on the closed button.
      var unseen = (r.data || []).filter(function (m) { return !isMine(m) && m.state === 'unread'; });
      if (W.embed && unseen.length) { W.embed.agent(unseen.length, false); }
    });
  }
  /* The first history load, set at start. A catch-up waits for it: run before it, the
   * catch-up would take the whole history for new messages (a badge of every reply ever). */
  var historyLoaded = null;
  function fetchMissed() {
    return Promise.resolve(historyLoaded).catch(function () { /* history failed: catch up */ })
      .then(catchUp);
  }
  function catchUp() {
    // wolive-common.js: page by page after list.lastCid(), one run at a time.
    var got = W.fetchMissed(list, '/admin/event/history', historyIds(), isMine).then(function (added) {
      added.forEach(noteLast);
      return added;
    });
    return got.then(function (added) {
      var theirs = added.filter(function (m) { return !isMine(m); }).length;
      if (theirs) { ding(theirs); markRead(); }
      return added.length;
    }).catch(function () { return 0; /* the next reconnect tries again */ });
  }
  window.woliveVisitor.fetchMissed = fetchMissed;

  /* ---- assignment ------------------------------------------------------------------------ */
  function notice() {
    return W.apiRetry('POST', '/admin/event/notice', {
      visiter_id: boot.visiter_id, business_id: boot.business_id, channel: boot.channel,
      visiter_name: boot.visiter_name, avatar: boot.avatar, record: boot.record,
      special: boot.special || undefined
    }).then(function (r) {
      window.woliveVisitor.notice = r;
      noticeFailed = false;
      if (r.code === 0) { assigned(r.data); return; }
      if (r.code === 2) { waiting(r.data && r.data.position); return; }
      setEnabled(false);
      if (r.code === 3) {
        if (mode === 'nobody') { return; }  // asked again (a reconnect): still nobody
        mode = 'nobody';
        var said = nobodyLine = sys('nobody_msg');
        leaveForm();
        box.scrollTop = Math.max(0, said.offsetTop - box.offsetTop - 12);
      } else if (r.code === 1) {
        mode = 'closed'; sys('closed_msg');
      } else if (r.code === 4) {
        mode = 'blocked'; sys('blocked_msg');
      } else {
        mode = 'blocked'; sys('unavailable_msg', { msg: r.msg || r.code });
      }
      renderHead(); renderQueue();
    }, function () {
      // No answer (server restarting, network lost): say so, and ask again shortly.
      if (!noticeFailed) { noticeFailed = true; sys('unavailable_msg', { msg: T.t('conn_unavailable') }); }
      clearTimeout(noticeRetry);
      noticeRetry = setTimeout(notice, 3000);
    });
  }
  var noticeRetry = 0, noticeFailed = false;
  /* The visitor asks for an agent again (after leaving a message): a fresh notice whose
   * "nobody online" is said again, with the form. */
  function askAgain() {
    if (mode !== 'nobody') { return; }
    mode = 'connecting'; renderHead();
    notice();
  }
  /* Code 4 on a send or an upload: the site blocked this visitor. The window turns into its
   * "blocked" state (header, a localized line, composer off), once. */
  function blockedNow() {
    if (mode === 'blocked') { return; }
    mode = 'blocked'; setEnabled(false); sys('blocked_msg');
    renderHead(); renderQueue();
  }

  /* ---- the leave-a-message form (code 3) ---------------------------------------------- */
  function field(name, key, type, attrs) {
    var label = W.el('label');
    label.appendChild(W.el('span', null, T.t(key))).setAttribute('data-i18n', key);
    var inp = W.el(type === 'textarea' ? 'textarea' : 'input');
    if (type !== 'textarea') { inp.type = type; }
    inp.name = name;
    Object.keys(attrs || {}).forEach(function (k) { inp.setAttribute(k, attrs[k]); });
    label.appendChild(inp);
    return label;
  }
  /* Still waiting for an agent on "nobody online": the form is not sent yet. */
  function leaving() { return !!document.getElementById('leave'); }
  /* An agent took the visitor, or it is in the queue now: the form goes (the visitor
   * talks instead). A sent form's thanks card stays. */
  function dropLeaveForm() {
    var f = document.getElementById('leave');
    if (f) { f.remove(); }
    // Its "nobody online, leave a message" line goes with it: somebody is here now.
    if (nobodyLine) { nobodyLine.remove(); nobodyLine = null; }
  }
  var nobodyLine = null;
  function leaveForm() {
    var card = W.el('form', 'leave-card');
    card.id = 'leave';
    card.noValidate = true;
    card.appendChild(W.el('h2', null, T.t('leave_title'))).setAttribute('data-i18n', 'leave_title');
    var name = field('name', 'name', 'text', { maxlength: '64', autocomplete: 'name', required: '' });
    if (boot.visiter_name && !/^访客/.test(boot.visiter_name)) {
      name.lastChild.value = boot.visiter_name;
    }
    card.appendChild(name);
    var two = W.el('div', 'two');
    two.appendChild(field('moblie', 'phone', 'tel', { maxlength: '32', autocomplete: 'tel',
                                                       inputmode: 'tel' }));
    two.appendChild(field('email', 'email', 'email', { maxlength: '254', autocomplete: 'email' }));
    card.appendChild(two);
    card.appendChild(W.el('p', 'hint', T.t('contact_hint'))).setAttribute('data-i18n', 'contact_hint');
    card.appendChild(field('content', 'content', 'textarea', { maxlength: '2000', rows: '4',
                                                               required: '' }));
    var err = W.el('p', 'error'); err.hidden = true; err.setAttribute('role', 'alert');
    card.appendChild(err);
    var btn = W.el('button', 'primary', T.t('submit'));
    btn.type = 'submit'; btn.setAttribute('data-i18n', 'submit');
    card.appendChild(btn);
    card.addEventListener('submit', function (e) {
      e.preventDefault();
      var v = function (n) { return card.elements[n].value.trim(); };
      var problem = !v('name') ? 'need_name' : (!v('moblie') && !v('email')) ? 'need_contact'
                  : !v('content') ? 'need_content' : '';
      if (problem) { err.textContent = T.t(problem); err.hidden = false; return; }
      err.hidden = true; btn.disabled = true; btn.textContent = T.t('submitting');
      // With the visitor's ids: having left a message, it stops waiting for an agent.
      W.api('POST', '/admin/event/message', {
        business_id: boot.business_id, visiter_id: ids.visiter_id, channel: ids.channel,
        name: v('name'), moblie: v('moblie'), email: v('email'), content: v('content')
      }).then(function (r) {
        btn.disabled = false; btn.textContent = T.t('submit');
        if (r.code === 0) { thanks(card, v('name')); return; }
        err.textContent = T.t('leave_failed', { msg: r.msg || r.code }); err.hidden = false;
      }, function () {
        btn.disabled = false; btn.textContent = T.t('submit');
        err.textContent = T.t('leave_failed', { msg: T.t('conn_unavailable') }); err.hidden = false;
      });
    });
    box.appendChild(card);
    T.apply(card);
    box.scrollTop = box.scrollHeight;
    window.woliveVisitor.leave = card;
  }
  function thanks(card, name) {
    var done = W.el('div', 'leave-card done');
    done.id = 'leave-done'; done.setAttribute('role', 'status');
    done.appendChild(W.el('div', 'check', '✓')).setAttribute('aria-hidden', 'true');
    done.appendChild(W.el('h2', null, T.t('thanks_title'))).setAttribute('data-i18n', 'thanks_title');
    var p = W.el('p', null, T.t('thanks', { name: name }));
    done.appendChild(p);
    T.onChange(function () { p.textContent = T.t('thanks', { name: name }); });
    var again = W.el('button', 'link', T.t('leave_again'));
    again.type = 'button'; again.setAttribute('data-i18n', 'leave_again');
    again.addEventListener('click', function () { done.remove(); leaveForm(); });
    // Having left a message the visitor is not pulled into a chat; it may ask for one: an
    // agent online now takes it, else it is told nobody is online again (with the form).
    var chatNow = W.el('button', 'link', T.t('chat_now'));
    chatNow.type = 'button'; chatNow.setAttribute('data-i18n', 'chat_now');
    chatNow.id = 'chat-now';
    chatNow.addEventListener('click', askAgain);
    done.appendChild(chatNow);
    done.appendChild(again);
    card.replaceWith(done);
    box.scrollTop = box.scrollHeight;
  }

  /* ---- the agent left: told, moved, queued again, or asked for contact details -----------
   * A system line `agent_left` {name, then} comes live: "moved" (a `taken_over` line and
   * cu_notice follow), "queue" (ask notice again: the window shows its place), "contact"
   * (nobody can take over: the contact form). Writing while the agent is offline is stored
   * for the agent, and the window says so and offers the same form. */
  T.add({
    zh: { agent_away_saved: '客服已离线，您的消息已保存，客服回来后会看到。', contact_title: '留下联系方式',
          contact_intro: '客服已离线，留下联系方式，我们会尽快联系您。', contact_note: '想说的话（选填）',
          contact_submit: '提交联系方式', contact_thanks: '谢谢！客服会通过您留下的方式联系您。' },
    en: { agent_away_saved: 'Your agent is offline. Your message is saved and they will see it when they are back.',
          contact_title: 'Leave your contact details',
          contact_intro: 'Your agent is offline. Leave your contact details and we will get back to you soon.',
          contact_note: 'Anything to add (optional)', contact_submit: 'Send my details',
          contact_thanks: 'Thank you! An agent will contact you the way you gave.' }
  });
  var awayTold = false;
  function agentLine(m) {
    var s = W.systemInfo(m);
    if (s.key !== 'agent_left' || !agent || Number(m.service_id) !== Number(agent.service_id)) { return; }
    agentOnline = false; renderHead();
    if (s.vars.then === 'queue') {  // waiting again: no agent in the header until one claims it
      agent = null; $('agent-name').textContent = T.t('agent_default');
      notice();
    }
    else if (s.vars.then === 'contact') { contactForm(); }
  }
  function awayCheck() {
    if (mode !== 'assigned' || agentOnline || awayTold) { return; }
    awayTold = true;
    sys('agent_away_saved');
    contactForm();
  }
  function dropContactForm() { var f = document.getElementById('contact'); if (f) { f.remove(); } }
  function contactForm() {
    if ($('contact') || $('contact-done')) { return; }
    var card = W.el('form', 'leave-card');
    card.id = 'contact'; card.noValidate = true;
    card.appendChild(W.el('h2', null, T.t('contact_title'))).setAttribute('data-i18n', 'contact_title');
    card.appendChild(W.el('p', 'hint', T.t('contact_intro'))).setAttribute('data-i18n', 'contact_intro');
    var name = field('name', 'name', 'text', { maxlength: '64', autocomplete: 'name' });
    if (boot.visiter_name && !/^访客/.test(boot.visiter_name)) { name.lastChild.value = boot.visiter_name; }
    card.appendChild(name);
    var two = W.el('div', 'two');
    two.appendChild(field('tel', 'phone', 'tel', { maxlength: '32', autocomplete: 'tel', inputmode: 'tel' }));
    two.appendChild(field('email', 'email', 'email', { maxlength: '254', autocomplete: 'email' }));
    card.appendChild(two);
    card.appendChild(W.el('p', 'hint', T.t('contact_hint'))).setAttribute('data-i18n', 'contact_hint');
    card.appendChild(field('note', 'contact_note', 'textarea', { maxlength: '500', rows: '3' }));
    var err = W.el('p', 'error'); err.hidden = true; err.setAttribute('role', 'alert');
    card.appendChild(err);
    var btn = W.el('button', 'primary', T.t('contact_submit'));
    btn.type = 'submit'; btn.setAttribute('data-i18n', 'contact_submit');
    card.appendChild(btn);
    card.addEventListener('submit', function (e) {
      e.preventDefault();
      var v = function (n) { return card.elements[n].value.trim(); };
      if (!v('tel') && !v('email')) { err.textContent = T.t('need_contact'); err.hidden = false; return; }
      err.hidden = true; btn.disabled = true; btn.textContent = T.t('submitting');
      var q = { visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel,
                name: v('name'), tel: v('tel'), email: v('email'), note: v('note') };
      W.api('POST', '/admin/event/contact', q).then(function (r) {
        btn.disabled = false; btn.textContent = T.t('contact_submit');
        if (r.code === 0) {
          var done = W.el('div', 'leave-card done'); done.id = 'contact-done'; done.setAttribute('role', 'status');
          done.appendChild(W.el('div', 'check', '✓')).setAttribute('aria-hidden', 'true');
          done.appendChild(W.el('p', null, T.t('contact_thanks'))).setAttribute('data-i18n', 'contact_thanks');
          card.replaceWith(done);
          box.scrollTop = box.scrollHeight;
          return;
        }
        err.textContent = T.t('leave_failed', { msg: r.msg || r.code }); err.hidden = false;
      }, function () {
        btn.disabled = false; btn.textContent = T.t('contact_submit');
        err.textContent = T.t('leave_failed', { msg: T.t('conn_unavailable') }); err.hidden = false;
      });
    });
    box.appendChild(card);
    T.apply(card);
    box.scrollTop = box.scrollHeight;
    window.woliveVisitor.contact = card;
  }

  /* ---- end and rating ----------------------------------------------------------------- */
  /* After the newest `ended` line that no `rated` line follows, a rating card: 1–5 stars
   * (radio buttons: arrows and space on a keyboard, big targets on a phone) and an optional
   * comment. It follows the transcript, however lines arrive (live, history, catch-up). */
  var SKIP_KEY = 'wolive_rate_skip_' + boot.business_id + '_' + boot.visiter_id;
  var rateCard = null;
  function skipped(cid) {
    try { return localStorage.getItem(SKIP_KEY) === String(cid); } catch (e) { return false; }
  }
  function checkRating() {
    var rows = box.querySelectorAll('.msg[data-sys="ended"], .msg[data-sys="rated"]');
    var ended = null;
    for (var i = rows.length - 1; i >= 0 && !ended; i--) {
      if (rows[i].dataset.sys === 'rated') { break; }
      ended = rows[i];
    }
    var want = ended && !skipped(ended.dataset.cid) ? ended.dataset.cid : '';
    if (rateCard && rateCard.dataset.cid !== want) { rateCard.remove(); rateCard = null; }
    if (want && !rateCard) {
      rateCard = ratingCard(want);
      var wasBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
      ended.after(rateCard);
      if (wasBottom) { box.scrollTop = box.scrollHeight; }
    }
  }
  new MutationObserver(checkRating).observe(box, { childList: true });
  function ratingCard(cid) {
    var card = W.el('form', 'rate-card');
    card.id = 'rate'; card.noValidate = true; card.dataset.cid = cid;
    card.setAttribute('aria-labelledby', 'rate-title');
    var title = card.appendChild(W.el('h2', null, T.t('rate_title')));
    title.id = 'rate-title'; title.setAttribute('data-i18n', 'rate_title');
    var group = card.appendChild(W.el('div', 'stars'));
    group.setAttribute('role', 'radiogroup');
    group.setAttribute('data-i18n-aria', 'rate_stars');
    group.setAttribute('aria-label', T.t('rate_stars'));
    var labels = [];
    for (var n = 1; n <= 5; n++) {
      var inp = W.el('input');
      inp.type = 'radio'; inp.name = 'score'; inp.value = String(n); inp.id = 'rate-' + n;
      var lab = W.el('label', 'star', '★');
      lab.htmlFor = inp.id; lab.dataset.n = String(n);
      lab.title = T.t('rate_star', { n: n });
      lab.setAttribute('aria-label', lab.title);
      group.appendChild(inp); group.appendChild(lab); labels.push(lab);
    }
    function paint(upto) {
      labels.forEach(function (l) { l.classList.toggle('on', Number(l.dataset.n) <= upto); });
    }
    function chosen() {
      var c = card.querySelector('input[name=score]:checked');
      return c ? Number(c.value) : 0;
    }
    group.addEventListener('change', function () { paint(chosen()); err.hidden = true; });
    group.addEventListener('mouseover', function (e) {
      var l = e.target.closest('label.star'); if (l) { paint(Number(l.dataset.n)); }
    });
    group.addEventListener('mouseleave', function () { paint(chosen()); });
    var text = W.el('textarea');
    text.name = 'comment'; text.maxLength = 500; text.rows = 2;
    text.setAttribute('data-i18n-placeholder', 'rate_comment');
    text.placeholder = T.t('rate_comment');
    text.setAttribute('aria-label', T.t('rate_comment'));
    card.appendChild(text);
    var err = card.appendChild(W.el('p', 'error'));
    err.hidden = true; err.setAttribute('role', 'alert');
    var row = card.appendChild(W.el('div', 'rate-actions'));
    var send = row.appendChild(W.el('button', 'primary', T.t('rate_submit')));
    send.type = 'submit'; send.setAttribute('data-i18n', 'rate_submit');
    var later = row.appendChild(W.el('button', 'link', T.t('rate_later')));
    later.type = 'button'; later.setAttribute('data-i18n', 'rate_later');
    later.addEventListener('click', function () {
      try { localStorage.setItem(SKIP_KEY, cid); } catch (e) { /* private mode */ }
      checkRating();
      input.focus();
    });
    card.addEventListener('submit', function (e) {
      e.preventDefault();
      var score = chosen();
      if (!score) { err.textContent = T.t('rate_need'); err.hidden = false; return; }
      send.disabled = true; send.textContent = T.t('rate_sending');
      W.api('POST', '/admin/event/rating', {
        visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel,
        score: score, comment: text.value.trim()
      }).then(function (r) {
        send.disabled = false; send.textContent = T.t('rate_submit');
        if (r.code === 0) { list.add(r.data.line, false); noteLast(r.data.line); return; }
        if (r.code === 2) {
          try { localStorage.setItem(SKIP_KEY, cid); } catch (e2) { /* private mode */ }
          checkRating(); sys('rate_already'); return;
        }
        err.textContent = T.t('rate_failed', { msg: r.msg || r.code }); err.hidden = false;
      }, function () {
        send.disabled = false; send.textContent = T.t('rate_submit');
        err.textContent = T.t('rate_failed', { msg: T.t('conn_unavailable') }); err.hidden = false;
      });
    });
    return card;
  }
  T.onChange(function () {
    if (!rateCard) { return; }
    T.apply(rateCard);
    rateCard.querySelectorAll('label.star').forEach(function (l) {
      l.title = T.t('rate_star', { n: l.dataset.n }); l.setAttribute('aria-label', l.title);
    });
    rateCard.querySelector('textarea').setAttribute('aria-label', T.t('rate_comment'));
  });
  window.woliveVisitor.checkRating = checkRating;

  /* ---- sending ------------------------------------------------------------------------- */
  W.composer($('composer'), input, function (text) {
    showView('chat');
    return W.apiRetry('POST', '/admin/event/chats', {
      visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel,
      service_id: agent ? agent.service_id : '', content: text
    }).then(function (r) {
      typingDone();
      if (r.code === 0) { list.add(r.data, true); noteLast(r.data); awayCheck(); return true; }
      // After the composer has given the box back (it does once the send settles).
      if (r.code === 4) { setTimeout(blockedNow, 0); return false; }
      sys('not_sent', { msg: r.msg || r.code });
      return false;
    }, function () { sys('not_sent', { msg: T.t('conn_unavailable') }); return false; });
  });

  /* The visitor's typing, told to the agent through Wolive.typingSignal (typing.js): at most
   * one "typing" every 3 s while shown, "stopped" after 3 s idle (a sent line ends it by
   * itself), never two signals within 0.7 s. */
  var typingSignal = W.typingSignal(function (target, on) {
    var q = { visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel,
              typing: on ? 1 : 0 };
    W.api('POST', '/admin/event/typing', q).catch(function () { /* best effort */ });
  });
  window.woliveVisitor.typingSignal = typingSignal;
  input.addEventListener('input', function () {
    if (mode === 'assigned' && input.value) { typingSignal.key(ids.visiter_id); }
  });
  function typingDone() { typingSignal.sent(); }

  /* Read receipts: the agent's messages shown while the window is visible are read. */
  var readTimer = null;
  function seen() {
    if (document.visibilityState === 'hidden' || mode !== 'assigned') { return false; }
    return !(W.embed && !W.embed.open);  // a site's panel, closed: not seen yet
  }
  function markRead() {
    if (!seen()) { return; }
    // What is on screen now is read, not what comes before the timer fires: a reply that
    // arrives after the panel was closed stays unread (and counts on the button).
    var upTo = lastCid;
    clearTimeout(readTimer);
    readTimer = setTimeout(function () {
      if (!seen()) { return; }  // closed or hidden meanwhile: the next open says so again
      var q = { visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel,
                cid: upTo };
      W.api('POST', '/admin/event/read', q).catch(function () { /* best effort */ });
    }, 300);
  }
  document.addEventListener('visibilitychange', markRead);
  if (W.embed) {
    W.embed.onOpen(function () {
      if (box.hidden === false) { box.scrollTop = box.scrollHeight; }
      markRead();
      // Opened again on "nobody online" after leaving a message: ask again, quietly (an
      // agent who came online meanwhile takes the visitor; else nothing changes).
      if (mode === 'nobody' && !leaving()) { notice(); }
    });
  }
  var typingTimer = null;
  function showTyping() {
    $('typing').hidden = false;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(hideTyping, 5000);
  }
  function hideTyping() { $('typing').hidden = true; clearTimeout(typingTimer); }

  /* ---- uploads --------------------------------------------------------------------------- */
  function upload(fileInput, url, fieldName) {
    var f = fileInput.files && fileInput.files[0];
    fileInput.value = '';
    if (!f) { return; }
    var row = sys('uploading', { name: f.name });
    var fd = new FormData();
    fd.append('visiter_id', ids.visiter_id);
    fd.append('business_id', ids.business_id);
    fd.append('channel', ids.channel);
    fd.append(fieldName, f, f.name);
    fetch(url, { method: 'POST', body: fd, credentials: 'same-origin' }).then(function (r) {
      return r.json().catch(function () { return { code: -1, msg: 'HTTP ' + r.status }; });
    }).then(function (r) {
      row.remove();
      if (r.code === 0) { return fetchMissed(); }
      if (r.code === 4) { blockedNow(); return; }
      sys('upload_failed', { msg: r.msg || r.code });
    }, function () { row.remove(); sys('upload_failed', { msg: T.t('conn_unavailable') }); });
  }
  $('image-btn').addEventListener('click', function () { $('image-file').click(); });
  $('file-btn').addEventListener('click', function () { $('file-file').click(); });
  $('image-file').addEventListener('change', function () {
    upload(this, '/admin/event/upload', 'upload');
  });
  $('file-file').addEventListener('change', function () {
    upload(this, '/admin/event/uploadfile', 'folder');
  });
  /* A pasted screenshot is sent as an image. */
  input.addEventListener('paste', function (e) {
    var items = (e.clipboardData && e.clipboardData.files) || [];
    if (items.length && /^image\//.test(items[0].type) && !input.disabled) {
      e.preventDefault();
      var dt = new DataTransfer(); dt.items.add(items[0]);
      $('image-file').files = dt.files;
      upload($('image-file'), '/admin/event/upload', 'upload');
    }
  });
  /* Images that load late keep the list at the bottom when it was there. */
  box.addEventListener('load', function () {
    if (box.scrollHeight - box.scrollTop - box.clientHeight < 400) { box.scrollTop = box.scrollHeight; }
  }, true);

  /* ---- emoji ------------------------------------------------------------------------------ */
  var EMOJI = ('😀 😁 😂 🤣 😊 😍 😘 😎 🤔 😅 😭 😡 😴 😮 🙄 😇 🥰 🤗 🤝 👍 👎 👌 ' +
               '👏 🙏 💪 👋 ❤️ 💔 🎉 🔥 ⭐ ✅ ❌ ❓ 💡 📦 🚚 💰 🎁 ☕ 🌹 ⏰').split(' ');
  var pop = $('emoji-pop'), emojiBtn = $('emoji-btn');
  EMOJI.forEach(function (e) {
    var b = W.el('button', 'emo', e);
    b.type = 'button'; b.setAttribute('aria-label', e);
    pop.appendChild(b);
  });
  function toggleEmoji(open) {
    pop.hidden = !open; emojiBtn.setAttribute('aria-expanded', String(open));
    if (open) { pop.querySelector('button').focus(); }
  }
  emojiBtn.addEventListener('click', function () { toggleEmoji(pop.hidden); });
  pop.addEventListener('click', function (e) {
    var b = e.target.closest('button.emo');
    if (!b) { return; }
    var s = input.selectionStart || input.value.length, end = input.selectionEnd || s;
    input.value = input.value.slice(0, s) + b.textContent + input.value.slice(end);
    input.selectionStart = input.selectionEnd = s + b.textContent.length;
    input.dispatchEvent(new Event('input'));
    toggleEmoji(false); input.focus();
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && !pop.hidden) { toggleEmoji(false); emojiBtn.focus(); }
  });
  document.addEventListener('click', function (e) {
    if (!pop.hidden && !pop.contains(e.target) && !emojiBtn.contains(e.target)) { toggleEmoji(false); }
  });

  /* ---- sound ------------------------------------------------------------------------------ */
  var SOUND_KEY = 'wolive_sound';
  var soundMemo = null;  // the switch when storage is refused (a site's panel, cross-site)
  function soundOn() {
    var s = soundMemo;
    try { s = localStorage.getItem(SOUND_KEY) || s; } catch (e) { s = soundMemo; }
    return s ? s === 'on' : boot.voice_state !== 'close';
  }
  function renderSound() {
    var on = soundOn(), b = $('sound-btn');
    b.setAttribute('aria-pressed', String(on));
    b.classList.toggle('muted', !on);
    b.title = T.t(on ? 'sound_on' : 'sound_off');
    b.setAttribute('aria-label', b.title);
  }
  $('sound-btn').addEventListener('click', function () {
    soundMemo = soundOn() ? 'off' : 'on';
    try { localStorage.setItem(SOUND_KEY, soundMemo); } catch (e) { /* kept for this page */ }
    renderSound();
  });
  var audio = null;
  /* n new messages from the agent. In a site's panel (visitor-embed.js) the page plays the
   * sound and counts them on its button while the panel is closed. */
  function ding(n) {
    if (W.embed) { W.embed.agent(n || 1, soundOn()); return; }
    if (!soundOn()) { return; }
    try {
      audio = audio || new (window.AudioContext || window.webkitAudioContext)();
      var o = audio.createOscillator(), g = audio.createGain(), t = audio.currentTime;
      o.type = 'sine'; o.frequency.setValueAtTime(880, t); o.frequency.setValueAtTime(1320, t + 0.09);
      g.gain.setValueAtTime(0.0001, t); g.gain.exponentialRampToValueAtTime(0.15, t + 0.02);
      g.gain.exponentialRampToValueAtTime(0.0001, t + 0.3);
      o.connect(g); g.connect(audio.destination); o.start(t); o.stop(t + 0.32);
    } catch (e) { /* no audio: fine */ }
  }

  /* ---- FAQ and tabs ---------------------------------------------------------------------- */
  /* The server sanitised this HTML (nh3). Cleaned once more before it is shown: no scripts,
   * no handlers, links only http(s)/mailto opening elsewhere, images only from this server. */
  function richNode(html) {
    var tpl = document.createElement('template');
    tpl.innerHTML = String(html || '');
    var frag = tpl.content;
    frag.querySelectorAll('script,style,iframe,object,embed,form,input,button,textarea,select,' +
                          'link,meta,base,svg,math,video,audio,source').forEach(function (n) {
      n.remove();
    });
    frag.querySelectorAll('*').forEach(function (n) {
      Array.prototype.slice.call(n.attributes).forEach(function (a) {
        var name = a.name.toLowerCase();
        if (name.indexOf('on') === 0 || name === 'style' || name === 'srcset') { n.removeAttribute(a.name); }
      });
      if (n.tagName === 'A') {
        if (!/^(https?:|mailto:)/i.test(n.getAttribute('href') || '')) { n.removeAttribute('href'); }
        n.target = '_blank'; n.rel = 'noopener noreferrer nofollow';
      }
      if (n.tagName === 'IMG' && !safeImage(n.getAttribute('src'))) { n.remove(); }
    });
    return frag;
  }
  var tabs = [];
  function showView(view) {
    document.querySelectorAll('.view-tab').forEach(function (b) {
      b.setAttribute('aria-selected', String(b.dataset.view === view));
    });
    box.hidden = view !== 'chat';
    $('faq-view').hidden = view !== 'faq';
    $('tab-view').hidden = view.indexOf('tab:') !== 0;
    if (view.indexOf('tab:') === 0) {
      var t = tabs.filter(function (x) { return 'tab:' + x.tid === view; })[0];
      var body = $('tab-body');
      body.textContent = '';
      if (t) { body.appendChild(richNode(t.content)); }
    }
    if (view === 'chat') { box.scrollTop = box.scrollHeight; }
  }
  window.woliveVisitor.showView = showView;
  $('views').addEventListener('click', function (e) {
    var b = e.target.closest('.view-tab');
    if (b) { showView(b.dataset.view); }
  });
  function loadContent() {
    var q = { business_id: boot.business_id };
    W.api('GET', '/admin/event/questions', q).then(function (r) {
      var rows = r.code === 0 ? r.data || [] : [];
      if (!rows.length) { return; }
      var faq = $('faq-list');
      rows.forEach(function (row) {
        var d = W.el('details', 'faq');
        d.appendChild(W.el('summary', null, row.question));
        var ans = W.el('div', 'rich');
        ans.appendChild(richNode(row.answer));
        d.appendChild(ans);
        faq.appendChild(d);
      });
      $('faq-tab').hidden = false; $('views').hidden = false;
    }).catch(function () { /* no FAQ: no panel */ });
    W.api('GET', '/admin/event/tabs', q).then(function (r) {
      tabs = r.code === 0 ? r.data || [] : [];
      tabs.forEach(function (t) {
        var b = W.el('button', 'view-tab', t.title);
        b.type = 'button'; b.setAttribute('role', 'tab'); b.dataset.view = 'tab:' + t.tid;
        b.setAttribute('aria-selected', 'false');
        $('views').appendChild(b);
      });
      if (tabs.length) { $('views').hidden = false; }
    }).catch(function () { /* no tabs */ });
  }

  /* ---- header buttons: back to the site (phone), close (popup), language, video ----------- */
  var from = String(boot.record || '');
  var popup = false;
  try { popup = !!window.opener && window.opener !== window; } catch (e) { popup = true; }
  if (popup) {
    $('close-btn').hidden = false;
    $('close-btn').addEventListener('click', function () { window.close(); });
  } else if (!W.embed && /^https?:\/\//i.test(from)) {
    $('back').hidden = false;
    $('back').addEventListener('click', function () { location.href = from; });
  }
  $('lang-btn').addEventListener('click', function () { T.set(T.lang === 'zh' ? 'en' : 'zh'); });
  /* Video hook: static/assets/js/video.js owns #video-btn (shows it when the
   * business's video_state is open, and starts the call on a click) and exposes Wolive.video.
   * Without that script the button stays hidden. */
  /* ---- start ------------------------------------------------------------------------------ */
  T.apply(document);
  document.title = T.t('title');
  renderHead(); renderSound(); renderConn();
  setEnabled(false);
  loadContent();
  // In a site's panel that is still closed (loaded ahead), the visitor is not put in front of
  // an agent (`notice`) until they open it; replies reach the panel either way.
  var ask = !W.embed ? notice : function () {
    W.embed.whenOpen(function () { notice().then(markRead); });  // read receipt once assigned
  };
  historyLoaded = loadHistory();
  historyLoaded.then(ask, ask);
})();
