/* /admin/page/messages: the message board (/admin/set/messages, readmessage, delmessage);
 * a new message (`all{business_id}` `new_message`) shows up at once. */
(function () {
  'use strict';
  var P = Wolive.page, t = P.t, boot = P.boot, el = P.el;
  Wolive.i18n.add({
    zh: { 'ms.title': '留言', 'ms.live': '实时', 'ms.offline': '未连接',
          'ms.help': '客服都不在线时，访客可以在聊天窗口留言。新留言会自动出现在这里。',
          'ms.unread': '{n} 条未读', 'ms.allRead': '全部已读', 'ms.markRead': '标为已读',
          'ms.markUnread': '标为未读', 'ms.new': '新留言', 'ms.none': '还没有留言。',
          'ms.phone': '电话', 'ms.email': '邮箱', 'ms.arrived': '收到一条新留言' },
    en: { 'ms.title': 'Messages', 'ms.live': 'Live', 'ms.offline': 'Not connected',
          'ms.help': 'When no agent is online, visitors can leave a message in the chat window. New ones appear here by themselves.',
          'ms.unread': '{n} unread', 'ms.allRead': 'All read', 'ms.markRead': 'Mark read',
          'ms.markUnread': 'Mark unread', 'ms.new': 'New', 'ms.none': 'No messages yet.',
          'ms.phone': 'Phone', 'ms.email': 'Email', 'ms.arrived': 'A new message arrived' }
  });
  Wolive.i18n.apply(document);

  var list = document.getElementById('list');
  var pager = document.getElementById('pager');
  var unreadEl = document.getElementById('unread');
  var state = { page: 1, data: null };
  var fresh = {};

  function card(m) {
    var c = el('article', 'card-row msg-card' + (m.state === 'unread' ? ' unread' : ''));
    c.dataset.mid = m.mid;
    var head = el('div', 'row-head');
    head.appendChild(el('strong', 'name', m.name));
    if (m.state === 'unread') { head.appendChild(el('span', 'pill hot', t('ms.new'))); }
    head.appendChild(el('span', 'muted small push', P.datetime(m.timestamp)));
    c.appendChild(head);
    var contact = el('div', 'muted small contact');
    if (m.moblie) {
      var tel = el('a', '', m.moblie);
      tel.href = 'tel:' + String(m.moblie).replace(/[^0-9+]/g, '');
      contact.appendChild(el('span', '', t('ms.phone') + ' '));
      contact.appendChild(tel);
    }
    if (m.email) {
      var mail = el('a', '', m.email);
      mail.href = 'mailto:' + m.email;
      contact.appendChild(el('span', '', (m.moblie ? ' · ' : '') + t('ms.email') + ' '));
      contact.appendChild(mail);
    }
    c.appendChild(contact);
    c.appendChild(el('p', 'content', m.content));
    var acts = el('div', 'row-actions');
    var unread = m.state === 'unread';
    acts.appendChild(P.button(unread ? 'ms.markRead' : 'ms.markUnread', unread ? 'btn-main' : '', function () {
      P.call('POST', '/admin/set/readmessage', { mid: m.mid, state: unread ? 'readed' : 'unread' })
        .then(function () { load(state.page); }).catch(function () {});
    }));
    if (P.atLeast('manager')) {
      acts.appendChild(P.button('c.delete', 'danger', function () {
        if (!confirm(t('c.confirmDelete', { name: m.name }))) { return; }
        P.call('POST', '/admin/set/delmessage', { mid: m.mid }).then(function () {
          P.toast(t('c.deleted')); load(state.page);
        }).catch(function () {});
      }));
    }
    c.appendChild(acts);
    if (fresh[m.mid]) { c.classList.add('flash'); }
    return c;
  }

  function render() {
    var d = state.data;
    list.textContent = '';
    unreadEl.textContent = d.unread ? t('ms.unread', { n: d.unread }) : t('ms.allRead');
    unreadEl.className = 'pill' + (d.unread ? ' hot' : '');
    if (!d.rows.length) { P.empty(list, 'ms.none'); }
    d.rows.forEach(function (m) { list.appendChild(card(m)); });
    P.pager(pager, d, load);
  }

  function load(page) {
    return P.call('GET', '/admin/set/messages', { page: page || 1, limit: 20 }).then(function (d) {
      state.page = d.page; state.data = d;
      render();
    }).catch(function () {});
  }

  // Live: a new board message for this business.
  var live = document.getElementById('live');
  try {
    var pusher = Wolive.pusher(boot.pusher, function (s) {
      var on = s === 'connected';
      live.classList.toggle('on', on);
      live.setAttribute('data-i18n', on ? 'ms.live' : 'ms.offline');
      live.textContent = t(on ? 'ms.live' : 'ms.offline');
    });
    pusher.subscribe(boot.presence.channels.business).bind('new_message', function (d) {
      if (d && d.message) { fresh[d.message.mid] = true; }
      P.toast(t('ms.arrived'));
      load(1);
    });
    window.woliveMessages = { pusher: pusher };
  } catch (e) { live.hidden = true; }

  Wolive.i18n.onChange(function () { if (state.data) { render(); } });
  load(1);
})();
