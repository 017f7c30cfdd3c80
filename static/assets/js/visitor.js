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
  var input = $('input'), sendBtn = $('send'), conn = $('conn');
  var ids = { visiter_id: boot.visiter_id, business_id: boot.business_id, channel: boot.channel };
  var agent = null, agentChannel = null, agentOnline = false;
  var mode = 'connecting';     // connecting | assigned | waiting | nobody | closed | blocked
  var position = 0;
  var state = { connected: false, everConnected: false };
  window.woliveVisitor = { boot: boot, list: list };

  T.add({
    zh: {
      title: '在线客服', agent_default: '在线客服', connecting_you: '正在为您接通…',
      online: '在线', offline: '离线', nobody_state: '客服不在线', waiting_state: '排队中',
      closed_state: '暂停咨询', blocked_state: '无法咨询',
      nobody_msg: '客服暂时不在线，请给我们留言，我们会尽快回复您。',
      closed_msg: '该网站已经停止客服咨询！', blocked_msg: '您暂时无法发起咨询。',
      unavailable_msg: '暂时无法咨询：{msg}',
      queue: '正在排队，您是第 {n} 位', queue_ahead: '正在排队，您前面还有 {n} 人，请稍候…',
      queue_next: '马上就轮到您了，请稍候…', joined: '{name} 为您服务',
      placeholder: '请输入消息…', placeholder_wait: '可以先输入您的问题…', placeholder_nobody: '客服不在线，请在上方留言', send: '发送',
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
      leave_failed: '提交失败：{msg}', leave_again: '再写一条'
    },
    en: {
      title: 'Live chat', agent_default: 'Support', connecting_you: 'Connecting you…',
      online: 'Online', offline: 'Offline', nobody_state: 'Nobody online',
      waiting_state: 'In the queue', closed_state: 'Chat paused', blocked_state: 'Unavailable',
      nobody_msg: 'Nobody is online right now. Leave us a message and we will get back to you soon.',
      closed_msg: 'This site is not taking chats right now.',
      blocked_msg: 'You cannot start a chat right now.',
      unavailable_msg: 'Chat unavailable: {msg}',
      queue: 'You are number {n} in the queue', queue_ahead: 'In the queue: {n} ahead of you. Please wait…',
      queue_next: 'You are next. Please wait…', joined: '{name} is here to help',
      placeholder: 'Type a message…', placeholder_wait: 'You can write while you wait…',
      placeholder_nobody: 'Nobody online: leave a message above',
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
      leave_failed: 'Not sent: {msg}', leave_again: 'Write another'
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
    renderHead(); renderQueue(); renderConn(); renderSound();
    document.title = T.t('title');
  });

  /* ---- header: agent, presence, state ------------------------------------------------- */
  function renderHead() {
    var key = { connecting: 'connecting_you', waiting: 'waiting_state', nobody: 'nobody_state',
                closed: 'closed_state', blocked: 'blocked_state' }[mode];
    $('head').classList.toggle('offline', !(mode === 'assigned' && agentOnline));
    if (agent) { $('agent-name').textContent = agent.nick_name || T.t('agent_default'); }
    $('agent-state').textContent = mode === 'assigned' ? T.t(agentOnline ? 'online' : 'offline')
                                                       : T.t(key);
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
    if (agentChannel !== 'se' + a.service_id) {
      if (agentChannel) { pusher.unsubscribe(agentChannel); }
      agentChannel = 'se' + a.service_id;
      var se = pusher.subscribe(agentChannel);
      se.bind('geton', function () { agentOnline = true; renderHead(); });
      se.bind('logout', function () { agentOnline = false; renderHead(); });
    }
  }
  function setEnabled(on) {
    input.disabled = !on; sendBtn.disabled = !on;
    ['emoji-btn', 'image-btn', 'file-btn'].forEach(function (id) { $(id).disabled = !on; });
  }
  function assigned(a) {
    var first = mode !== 'assigned' || !agent || agent.service_id !== a.service_id;
    var wasWaiting = mode === 'waiting';
    mode = 'assigned'; setAgent(a); setEnabled(true); stopQueuePoll(); renderQueue();
    renderHead();
    if (first && wasWaiting) { sys('joined', { name: a.nick_name || T.t('agent_default') }); }
    if (first && a.greeting) { list.system(a.greeting); }  // the agent's own words: as written
  }

  /* ---- the queue ---------------------------------------------------------------------- */
  var queueTimer = null;
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
    mode = 'waiting'; position = pos || 1;
    setEnabled(true);  // a waiting visitor may write: every agent of the business sees it
    renderHead(); renderQueue();
    if (!queueTimer) { queueTimer = setInterval(pollPosition, 8000); }
  }
  function stopQueuePoll() { if (queueTimer) { clearInterval(queueTimer); queueTimer = null; } }
  function pollPosition() {
    W.api('GET', '/admin/event/position', ids).then(function (r) {
      if (r.code !== 0 || !r.data) { return; }
      if (r.data.state === 'waiting') { position = r.data.position; renderQueue(); }
      else if (r.data.state === 'assigned' && mode === 'waiting') { notice(); }
    }).catch(function () { /* offline: the next tick tries again */ });
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
      if (state.everConnected) { fetchMissed(); if (mode === 'waiting') { pollPosition(); } }
      state.everConnected = true;
    }
  });
  window.woliveVisitor.pusher = pusher;
  var mine = pusher.subscribe('cu' + boot.channel);
  mine.bind('my-event', function (d) {
    if (d && d.message && list.add(d.message, isMine(d.message))) {
      noteLast(d.message);
      if (d.message.direction !== 'to_service') { ding(); hideTyping(); markRead(); }
    }
  });
  mine.bind('cu_notice', function (a) { assigned(a); });
  mine.bind('typing', function (d) { if (d && d.typing === false) { hideTyping(); } else { showTyping(); } });
  /* The agent read the visitor's messages up to cid: a double tick on them. */
  mine.bind('read', function (d) {
    box.querySelectorAll('.msg.mine[data-cid]').forEach(function (row) {
      if (Number(row.dataset.cid) <= Number(d && d.cid)) { row.classList.add('read'); }
    });
  });

  /* Messages: each cid once, in cid order. After a reconnect only the ones after the last
   * seen cid are asked for (`after`); the list drops any it already shows. */
  var lastCid = 0;
  function noteLast(m) { if (m && m.cid > lastCid) { lastCid = m.cid; } }
  function isMine(m) { return m.direction === 'to_service'; }
  function addAll(rows) {
    var added = [];
    (rows || []).forEach(function (m) {
      if (list.add(m, isMine(m))) { added.push(m); }
      noteLast(m);
    });
    return added;
  }
  function loadHistory() {
    return W.api('GET', '/admin/event/history', ids).then(function (r) {
      if (r.code === 0) { addAll(r.data); }
    });
  }
  function fetchMissed() {
    // wolive-common.js: page by page after list.lastCid(), one run at a time.
    var got = W.fetchMissed(list, '/admin/event/history', ids, isMine).then(function (added) {
      added.forEach(noteLast);
      return added;
    });
    return got.then(function (added) {
      if (added.some(function (m) { return !isMine(m); })) { ding(); markRead(); }
      return added.length;
    }).catch(function () { return 0; /* the next reconnect tries again */ });
  }
  window.woliveVisitor.fetchMissed = fetchMissed;

  /* ---- assignment ------------------------------------------------------------------------ */
  function notice() {
    return W.api('POST', '/admin/event/notice', {
      visiter_id: boot.visiter_id, business_id: boot.business_id, channel: boot.channel,
      visiter_name: boot.visiter_name, avatar: boot.avatar, record: boot.record,
      special: boot.special || undefined
    }).then(function (r) {
      window.woliveVisitor.notice = r;
      noticeFailed = false;
      if (r.code === 0) { assigned(r.data); return; }
      stopQueuePoll();
      if (r.code === 2) { waiting(r.data && r.data.position); return; }
      setEnabled(false);
      if (r.code === 3) {
        mode = 'nobody';
        var said = sys('nobody_msg');
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
      W.api('POST', '/admin/event/message', {
        business_id: boot.business_id, name: v('name'), moblie: v('moblie'),
        email: v('email'), content: v('content')
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
    done.appendChild(again);
    card.replaceWith(done);
    box.scrollTop = box.scrollHeight;
  }

  /* ---- sending ------------------------------------------------------------------------- */
  W.composer($('composer'), input, function (text) {
    showView('chat');
    return W.api('POST', '/admin/event/chats', {
      visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel,
      service_id: agent ? agent.service_id : '', content: text
    }).then(function (r) {
      typingDone();
      if (r.code === 0) { list.add(r.data, true); noteLast(r.data); return true; }
      sys('not_sent', { msg: r.msg || r.code });
      return false;
    }, function () { sys('not_sent', { msg: T.t('conn_unavailable') }); return false; });
  });

  /* The visitor's typing, told to the agent at most every 3 s; "stopped" after 4 s idle
   * or on sending. */
  var lastTyping = 0, typingIdle = null;
  function tellTyping(on) {
    var q = { visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel,
              typing: on ? 1 : 0 };
    W.api('POST', '/admin/event/typing', q).catch(function () { /* best effort */ });
  }
  input.addEventListener('input', function () {
    if (mode !== 'assigned' || !input.value) { return; }
    clearTimeout(typingIdle);
    typingIdle = setTimeout(function () { lastTyping = 0; tellTyping(false); }, 4000);
    var now = Date.now();
    if (now - lastTyping < 3000) { return; }
    lastTyping = now;
    tellTyping(true);
  });
  function typingDone() { if (lastTyping) { clearTimeout(typingIdle); lastTyping = 0; } }

  /* Read receipts: the agent's messages shown while the window is visible are read. */
  var readTimer = null;
  function markRead() {
    if (document.visibilityState === 'hidden' || mode !== 'assigned') { return; }
    clearTimeout(readTimer);
    readTimer = setTimeout(function () {
      var q = { visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel,
                cid: lastCid };
      W.api('POST', '/admin/event/read', q).catch(function () { /* best effort */ });
    }, 300);
  }
  document.addEventListener('visibilitychange', markRead);
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
  function soundOn() {
    var s = null;
    try { s = localStorage.getItem(SOUND_KEY); } catch (e) { s = null; }
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
    try { localStorage.setItem(SOUND_KEY, soundOn() ? 'off' : 'on'); } catch (e) { /* ignore */ }
    renderSound();
  });
  var audio = null;
  function ding() {
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
  } else if (/^https?:\/\//i.test(from)) {
    $('back').hidden = false;
    $('back').addEventListener('click', function () { location.href = from; });
  }
  $('lang-btn').addEventListener('click', function () { T.set(T.lang === 'zh' ? 'en' : 'zh'); });
  /* Video (issue 5 hook): static/assets/js/video.js owns #video-btn (shows it when the
   * business's video_state is open, and starts the call on a click) and exposes Wolive.video.
   * Without that script the button stays hidden. */
  /* ---- start ------------------------------------------------------------------------------ */
  T.apply(document);
  document.title = T.t('title');
  renderHead(); renderSound(); renderConn();
  setEnabled(false);
  loadContent();
  loadHistory().then(notice, notice);
})();
