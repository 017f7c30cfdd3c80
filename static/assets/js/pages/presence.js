/* The agent's presence on every console page, loaded by the shared top bar
 * (templates/topbar.html) with `defer`.
 *
 * - Keeps the agent online: holds the agent's channel (`boot.presence.channels.presence`,
 *   `kefu{id}`, named by the server) on every page, so the agent is online while any console
 *   page is open in any tab. The workbench's own connection (console.js) is reused there.
 * - Shows the real state in the top bar: the connection (dot, #me-state) and the agent's
 *   explicit status, available / away (#me-status, a toggle stored on the server through
 *   POST /admin/set/status). Every tab follows the `status` event on the agent's own channel.
 * - Leaves for the sign-in page when the server ends the agent's session (the socket's
 *   `pusher:error` SESSION_ENDED, 4009: the agent was deleted).
 * - Exposes `Wolive.presence` = {status, state, away: {service_id: true}, onChange(fn)}: the
 *   workbench's transfer list leaves out colleagues who are away.
 * Every piece of text goes into the page through textContent. */
(function () {
  'use strict';
  var DICT = {
    zh: {
      'ps.online': '在线', 'ps.connecting': '连接中', 'ps.offline': '离线',
      'ps.available': '可接待', 'ps.away': '暂时离开',
      'ps.toAway': '点击设为“暂时离开”：不再分配新访客',
      'ps.toAvailable': '点击设为“可接待”：开始分配新访客',
      'ps.failed': '未能更改状态：{msg}', 'ps.network': '网络错误，请重试',
      'ps.handed': '{from} 把 {visitor} 转接给了你', 'ps.handedLeft': '{from} 已离线，{visitor} 已转接给你',
      'ps.handedNote': '备注：{note}', 'ps.handedOpen': '去工作台接待', 'ps.dismiss': '知道了'
    },
    en: {
      'ps.online': 'Online', 'ps.connecting': 'Connecting', 'ps.offline': 'Offline',
      'ps.available': 'Available', 'ps.away': 'Away',
      'ps.toAway': 'Click to go away: no new visitors are given to you',
      'ps.toAvailable': 'Click to become available: new visitors are given to you again',
      'ps.failed': 'Status not changed: {msg}', 'ps.network': 'Network error, please retry',
      'ps.handed': '{from} transferred {visitor} to you',
      'ps.handedLeft': '{from} went offline: {visitor} is yours now',
      'ps.handedNote': 'Note: {note}', 'ps.handedOpen': 'Go to the workbench', 'ps.dismiss': 'Dismiss'
    }
  };

  function init() {
    var W = window.Wolive, i18n = W.i18n;
    var bootEl = document.getElementById('boot');
    if (!bootEl || !window.Pusher) { return; }
    var boot = JSON.parse(bootEl.textContent);
    var pb = boot.presence;
    if (!pb || !boot.pusher) { return; }
    i18n.add(DICT);
    var t = function (k, v) { return i18n.t(k, v); };
    var $ = function (id) { return document.getElementById(id); };
    var listeners = [];
    var P = W.presence = {
      status: pb.status, state: 'connecting', away: {},
      onChange: function (fn) { listeners.push(fn); }
    };
    (pb.away || []).forEach(function (id) { P.away[id] = true; });

    var shared = window.woliveConsole && window.woliveConsole.pusher;
    var pusher = shared || W.pusher(boot.pusher, null, {
      channelAuthorization: { endpoint: '/pusher/auth', transport: 'ajax',
                              headers: { 'X-XSRFToken': W.cookie('_xsrf') } }
    });
    P.pusher = pusher;
    // The server ended this agent's session (the agent was deleted): its socket is closed
    // for good with SESSION_ENDED; the page goes to sign-in, as after "Log out".
    pusher.connection.bind('error', function (e) {
      if (e && e.data && Number(e.data.code) === W.SESSION_ENDED) { W.toSignIn(); }
    });
    function hold(name) { return pusher.channel(name) || pusher.subscribe(name); }

    function changed() {
      paint();
      listeners.forEach(function (fn) { fn(P); });
    }
    function paint() {
      var on = P.state === 'connected';
      var away = P.status === 'away';
      var text = on ? t('ps.online') : t(P.state === 'connecting' || P.state === 'initialized'
                                         ? 'ps.connecting' : 'ps.offline');
      var dot = $('me-dot');
      if (dot) {
        dot.classList.toggle('on', on && !away);
        dot.classList.toggle('away', on && away);
        dot.title = text;
        dot.setAttribute('aria-label', text);
      }
      var st = $('me-state');
      if (st) { st.textContent = text; }
      var btn = $('me-status');
      if (btn) {
        btn.hidden = false;
        var label = btn.querySelector('.status-text') || btn.appendChild(W.el('span', 'status-text'));
        label.textContent = t(away ? 'ps.away' : 'ps.available');
        btn.setAttribute('aria-label', label.textContent);
        btn.title = t(away ? 'ps.toAvailable' : 'ps.toAway');
        btn.setAttribute('aria-pressed', away ? 'true' : 'false');
        btn.classList.toggle('away', away);
        btn.dataset.status = P.status;
      }
    }

    P.state = pusher.connection.state;
    pusher.connection.bind('state_change', function (s) { P.state = s.current; changed(); });
    var own = hold(pb.channels.presence);  // holding it is what keeps the agent online
    if (!document.getElementById('workbench')) {
      // On the other console pages a conversation handed to this agent (a transfer, or its
      // agent left) is announced here, note included; the workbench has its own notice.
      own.bind('handover', function (d) { if (d) { handedOver(d); } });
    }
    hold(pb.channels.team);      // online colleagues (the workbench's transfer list)
    hold(pb.channels.own).bind('status', function (d) {
      if (!d || Number(d.service_id) !== Number(boot.service_id)) { return; }
      P.status = d.status;
      if (d.status === 'away') { P.away[d.service_id] = true; } else { delete P.away[d.service_id]; }
      changed();
    });
    var business = pusher.channel(pb.channels.business);  // subscribed by the workbench
    if (business) {
      business.bind('status', function (d) {
        if (!d) { return; }
        if (d.status === 'away') { P.away[d.service_id] = true; } else { delete P.away[d.service_id]; }
        changed();
      });
    }

    function handedOver(d) {
      var old = $('ps-handover');
      if (old) { old.remove(); }
      var box = W.el('div', 'handover-notice');
      box.id = 'ps-handover';
      box.setAttribute('role', 'alert');
      var visitor = i18n.visitorName ? i18n.visitorName(d.visiter_name || '', d.visiter_id)
                                     : (d.visiter_name || d.visiter_id);
      var vars = { from: d.from_nick_name || '—', visitor: visitor };
      box.appendChild(W.el('strong', null, t(d.reason === 'agent_left' ? 'ps.handedLeft' : 'ps.handed', vars)));
      if (d.note) { box.appendChild(W.el('p', 'handover-note', t('ps.handedNote', { note: d.note }))); }
      var go = W.el('a', 'primary small', t('ps.handedOpen'));
      go.href = '/admin/index/index';
      var shut = W.el('button', 'ghost small', t('ps.dismiss'));
      shut.type = 'button';
      shut.addEventListener('click', function () { box.remove(); });
      box.appendChild(go); box.appendChild(shut);
      document.body.appendChild(box);
    }

    var btn = $('me-status');
    var toast = function (msg) {
      var box = $('toast') || $('wb-toast');
      if (!box) { return; }
      box.textContent = msg;
      box.className = 'toast bad';
      box.hidden = false;
      setTimeout(function () { box.hidden = true; }, 5000);
    };
    if (btn) {
      btn.addEventListener('click', function () {
        var want = P.status === 'away' ? 'available' : 'away';
        btn.disabled = true;
        W.api('POST', '/admin/set/status', { status: want }).then(function (r) {
          if (r && r.code === 0) {
            P.status = r.data.status;
            changed();
          } else {
            toast(t('ps.failed', { msg: (r && r.msg) || '?' }));
          }
        }, function () { toast(t('ps.network')); }).then(function () { btn.disabled = false; });
      });
    }
    i18n.onChange(paint);
    paint();
  }

  if (window.Wolive && window.Wolive.i18n && window.Wolive.pusher) { init(); }
})();
