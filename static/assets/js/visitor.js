/* The visitor chat window. */
(function () {
  'use strict';
  var W = window.Wolive;
  var boot = JSON.parse(document.getElementById('boot').textContent);
  var list = new W.MessageList(document.getElementById('messages'));
  var input = document.getElementById('input');
  var sendBtn = document.getElementById('send');
  var conn = document.getElementById('conn');
  var agent = null, agentChannel = null, assigned = false;
  var ids = { visiter_id: boot.visiter_id, business_id: boot.business_id, channel: boot.channel };
  window.woliveVisitor = { boot: boot };

  function setAgent(a) {
    agent = a;
    document.getElementById('agent-name').textContent = a.nick_name || '客服';
    if (a.avatar) { document.getElementById('agent-avatar').src = a.avatar; }
    setOnline(a.state !== 'offline');
    if (agentChannel !== 'se' + a.service_id) {
      if (agentChannel) { pusher.unsubscribe(agentChannel); }
      agentChannel = 'se' + a.service_id;
      var se = pusher.subscribe(agentChannel);
      se.bind('geton', function () { setOnline(true); });
      se.bind('logout', function () { setOnline(false); });
    }
  }
  function setOnline(on) {
    document.getElementById('head').classList.toggle('offline', !on);
    document.getElementById('agent-state').textContent = on ? '在线 · Online' : '离线 · Offline';
  }
  function setEnabled(on) { input.disabled = !on; sendBtn.disabled = !on; }

  var pusher = W.pusher(boot.pusher, function (state, prev) {
    conn.hidden = state === 'connected';
    conn.textContent = W.CONN_TEXT[state] || state;
    if (state === 'connected' && prev !== 'connecting' && prev !== 'initialized') { loadHistory(); }
  });
  var mine = pusher.subscribe('cu' + boot.channel);
  mine.bind('my-event', function (d) { list.add(d.message, false); });
  mine.bind('cu_notice', function (a) {
    setAgent(a); assigned = true; setEnabled(true);
    if (a.greeting) { list.system(a.greeting); }
  });
  window.woliveVisitor.pusher = pusher;

  function loadHistory() {
    return W.api('GET', '/admin/event/history', ids).then(function (r) {
      if (r.code === 0) {
        r.data.forEach(function (m) { list.add(m, m.direction === 'to_service'); });
      }
    });
  }

  function notice() {
    return W.api('POST', '/admin/event/notice', {
      visiter_id: boot.visiter_id, business_id: boot.business_id, channel: boot.channel,
      visiter_name: boot.visiter_name, avatar: boot.avatar, record: boot.record,
      special: boot.special || undefined
    }).then(function (r) {
      if (r.code === 0) {
        assigned = true; setAgent(r.data); setEnabled(true);
        if (r.data.greeting) { list.system(r.data.greeting); }
      } else if (r.code === 2) {
        setEnabled(false);
        list.system('排队中，您前面还有 ' + Math.max(0, (r.data.position || 1) - 1) +
                    ' 人 · You are number ' + r.data.position + ' in the queue');
      } else if (r.code === 3) {
        setEnabled(false);
        document.getElementById('agent-state').textContent = '客服不在线 · Nobody online';
        list.system('客服暂时不在线，请稍后再来。Nobody is online right now; please come back later.');
      } else {
        setEnabled(false);
        document.getElementById('agent-state').textContent = r.msg;
        list.system(r.msg || '无法咨询 · Chat unavailable');
      }
      window.woliveVisitor.notice = r;
    });
  }

  W.composer(document.getElementById('composer'), input, function (text) {
    return W.api('POST', '/admin/event/chats', {
      visiter_id: ids.visiter_id, business_id: ids.business_id, channel: ids.channel,
      service_id: agent ? agent.service_id : '', content: text
    }).then(function (r) {
      if (r.code === 0) { list.add(r.data, true); return true; }
      list.system('发送失败 · Not sent: ' + (r.msg || r.code));
      return false;
    });
  });

  setEnabled(false);
  loadHistory().then(notice);
})();
