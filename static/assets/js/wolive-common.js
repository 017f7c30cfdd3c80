/* Shared by the console and the visitor window: API calls, the Pusher connection, messages.
 * Every piece of user text goes into the page through textContent, never innerHTML. */
(function (root) {
  'use strict';
  var W = root.Wolive = root.Wolive || {};

  function cookie(name) {
    var m = document.cookie.match('(?:^|; )' + name + '=([^;]*)');
    return m ? decodeURIComponent(m[1]) : '';
  }
  W.cookie = cookie;

  /* POST (or GET) form-encoded params; resolves to the {code, msg, data} answer. */
  W.api = function (method, url, params) {
    return request(method, url, params).then(answer);
  };

  /* W.api for calls that must not fail in a burst (the visitor's notice and sends): a 503
   * (the server is busy or its database briefly unavailable; docs/api.md) is asked again
   * after its Retry-After seconds (default 5, at most 30, plus up to a fifth more so the
   * visitors of one burst do not all come back at once), `tries` times in all (default 6).
   * Resolves to the {code, msg, data} answer of the first other status; rejects (as when
   * there is no answer) after the last 503. */
  W.apiRetry = function (method, url, params, tries) {
    var left = tries || 6;
    function attempt() {
      return request(method, url, params).then(function (r) {
        if (r.status !== 503) { return answer(r); }
        left -= 1;
        if (left <= 0) { throw new Error('HTTP 503'); }
        var after = parseInt(r.headers.get('Retry-After'), 10);
        after = Math.min(30, after >= 0 ? after : 5) * 1000;
        return new Promise(function (resolve) {
          W.retryTimer(resolve, after + Math.random() * after / 5);
        }).then(attempt);
      });
    }
    return attempt();
  };
  /* The timer apiRetry waits with (tests drive it on a virtual clock). */
  W.retryTimer = function (fn, ms) { return setTimeout(fn, ms); };

  function answer(r) {
    return r.json().catch(function () { return { code: -1, msg: 'HTTP ' + r.status }; });
  }

  function request(method, url, params) {
    var body = new URLSearchParams();
    Object.keys(params || {}).forEach(function (k) {
      if (params[k] !== undefined && params[k] !== null) { body.append(k, params[k]); }
    });
    var opts = { method: method, credentials: 'same-origin', headers: {} };
    if (method === 'GET') {
      url += (url.indexOf('?') < 0 ? '?' : '&') + body.toString();
    } else {
      opts.body = body;
      var x = cookie('_xsrf');
      if (x) { opts.headers['X-XSRFToken'] = x; }
    }
    return fetch(url, opts);
  }

  /* Console pages: the agent's session is over (it logged out in another tab, or was
   * deleted): leave for the sign-in page, once (pusher-js reports the closing error twice:
   * the frame, then the close; a second navigation would abort the first). */
  W.SIGN_IN = '/admin/login/index';
  var leaving = false;
  W.toSignIn = function () {
    if (leaving) { return; }
    leaving = true;
    location.replace(W.SIGN_IN);
  };
  /* The Pusher error code a console socket is closed with when its agent's session ended
   * on the server (realtime/pusher/protocol.py, SESSION_ENDED; pusher-js does not reconnect). */
  W.SESSION_ENDED = 4009;

  /* A Pusher client against this server (same host; WoLive's 9090 port when configured). */
  W.pusher = function (cfg, onState, extra) {
    var tls = location.protocol === 'https:';
    var port = cfg.ws_port || Number(location.port) || (tls ? 443 : 80);
    var opts = {
      cluster: 'wolive', wsHost: location.hostname, wsPort: port, wssPort: port,
      forceTLS: tls, enabledTransports: ['ws', 'wss'], disableStats: true
    };
    Object.keys(extra || {}).forEach(function (k) { opts[k] = extra[k]; });
    var p = new Pusher(cfg.key, opts);
    if (onState) {
      p.connection.bind('state_change', function (s) { onState(s.current, s.previous); });
    }
    return p;
  };

  W.el = function (tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    return e;
  };

  W.time = function (ts) {
    var d = new Date(ts * 1000), now = new Date();
    var hm = ('0' + d.getHours()).slice(-2) + ':' + ('0' + d.getMinutes()).slice(-2);
    if (d.toDateString() === now.toDateString()) { return hm; }
    return (d.getMonth() + 1) + '-' + d.getDate() + ' ' + hm;
  };

  /* A message's bubble. Text as text; msg_type "image": an <img> only for this server's
   * /upload/ paths; "file" (content "URL\nname"): a download link. Never HTML. */
  W.UPLOAD_PATH = /^\/upload\/[0-9a-f]{32}\.[a-z0-9]{1,5}$/;
  W.bubble = function (m) {
    var type = m.msg_type || 'text', content = String(m.content || '');
    var url = content.split('\n')[0];
    if ((type === 'image' || type === 'file') && W.UPLOAD_PATH.test(url)) {
      var b = W.el('div', 'bubble ' + type);
      if (type === 'image') {
        var a = W.el('a'); a.href = url; a.target = '_blank'; a.rel = 'noopener';
        var img = W.el('img'); img.src = url; img.alt = ''; img.loading = 'lazy';
        a.appendChild(img); b.appendChild(a);
      } else {
        var f = W.el('a', 'file', content.slice(url.length + 1) || url.slice(8));
        f.href = url; f.setAttribute('download', ''); f.rel = 'noopener';
        b.appendChild(f);
      }
      return b;
    }
    return W.el('div', 'bubble', content);
  };

  /* System lines (msg_type "system"): lines the server writes into a transcript, content JSON
   * {key, vars}. W.systemText(m) is the line in the page's language ('sys.' + key in the i18n
   * dictionaries; pages add their keys with Wolive.i18n.add); always put in as text. */
  W.systemInfo = function (m) {
    try {
      var o = JSON.parse(String(m.content || ''));
      if (o && typeof o.key === 'string') { return { key: o.key, vars: o.vars || {} }; }
    } catch (e) { /* not JSON: shown as it is */ }
    return { key: '', vars: {} };
  };
  /* A line the server wrote: `system` (both sides) or `note` (the agents only: a
   * transfer's note). */
  W.isLine = function (m) { return m.msg_type === 'system' || m.msg_type === 'note'; };
  W.systemText = function (m) {
    var s = W.systemInfo(m);
    if (!s.key) { return String(m.content || ''); }
    var vars = s.key === 'rated' ? W.ratingVars(s.vars) : s.vars;
    return W.i18n ? W.i18n.t('sys.' + s.key, vars) : s.key;
  };
  /* Hand-over lines (transfers, the agent who leaves, contact details left). */
  if (W.i18n) {
    W.i18n.add({
      zh: { 'sys.transferred': '{from} 已将对话转接给 {to}', 'sys.transferred_waiting': '对话已转接给 {to}',
            'sys.taken_over': '{to} 接替 {from} 继续为您服务',
            'sys.agent_left': '{name} 已离开对话', 'sys.contact': '访客留下了联系方式：{text}',
            'sys.transfer_note': '{from} 转接备注（仅客服可见）：{note}' },
      en: { 'sys.transferred': '{from} transferred the conversation to {to}',
            'sys.transferred_waiting': 'The conversation was transferred to {to}',
            'sys.taken_over': '{to} took over from {from}',
            'sys.agent_left': '{name} has left the chat', 'sys.contact': 'Contact details left: {text}',
            'sys.transfer_note': 'Note from {from} (agents only): {note}' }
    });
  }

  /* End and rating: the lines `ended` {name}, `reopened`, `rated` {score, comment,
   * ended_cid}. W.stars(n) is "★★★★☆"; W.ratingVars adds {stars, quoted} (the comment in
   * quotes, or nothing) for the texts. The visitor window words `rated` its own way. */
  W.stars = function (n) {
    var k = Math.max(0, Math.min(5, Number(n) || 0));
    return '★★★★★'.slice(0, k) + '☆☆☆☆☆'.slice(0, 5 - k);
  };
  W.ratingVars = function (v) {
    var out = { score: v.score, stars: W.stars(v.score), comment: v.comment || '' };
    out.quoted = v.comment ? ' “' + String(v.comment) + '”' : '';
    return out;
  };
  if (W.i18n) {
    W.i18n.add({
      zh: { 'sys.ended': '{name} 结束了本次对话', 'sys.reopened': '新的对话开始了',
            'sys.rated': '访客评价：{stars}（{score}/5）{quoted}', 'rating.none': '还没有评价' },
      en: { 'sys.ended': '{name} ended the conversation', 'sys.reopened': 'A new conversation started',
            'sys.rated': 'Visitor rated {stars} ({score}/5){quoted}', 'rating.none': 'No rating yet' }
    });
  }

  /* A message list that shows each cid once, in cid order, whatever order they arrive in.
   * It also keeps the conversation's stream cursor (docs/api.md, "Exactly once, in order"): the
   * highest cid *received from the server's stream* — live events and history/catch-up
   * answers — noted with `heard(m)`. A page's own acknowledged sends are shown with
   * `add(m, true)` but never heard: they may carry a higher cid than a message of the other
   * side not received yet, and the catch-up asks for what came after the cursor. */
  W.MessageList = function (container) {
    this.box = container;
    this.seen = {};
    this.cursor = 0;
    this.owner = null;  // the conversation shown (visiter_id), when the page says so
  };
  W.MessageList.prototype.clear = function () {
    this.box.textContent = '';
    this.seen = {};
    this.cursor = 0;
  };
  /* Note a message (any row with a cid: text, upload, system line) as received from the
   * server's stream; returns the cursor. */
  W.MessageList.prototype.heard = function (m) {
    var cid = Number(m && m.cid) || 0;
    if (cid > this.cursor) { this.cursor = cid; }
    return this.cursor;
  };
  W.MessageList.prototype.add = function (m, mine) {
    if (m.cid) {
      if (this.seen[m.cid]) { return false; }
      this.seen[m.cid] = true;
    }
    var sys = W.isLine(m);
    var row = W.el('div', 'msg ' + (sys ? 'system' + (m.msg_type === 'note' ? ' note' : '')
                                         : (mine ? 'mine' : 'theirs')));
    if (m.cid) { row.dataset.cid = m.cid; }
    if (sys) { row.dataset.sys = W.systemInfo(m).key; row.woliveMessage = m; }
    row.appendChild(sys ? W.el('div', 'bubble', W.systemText(m)) : W.bubble(m));
    row.appendChild(W.el('div', 'time', W.time(m.timestamp || Date.now() / 1000)));
    var before = null;
    if (m.cid) {
      var rows = this.box.querySelectorAll('.msg[data-cid]');
      for (var i = rows.length - 1; i >= 0; i--) {
        if (Number(rows[i].dataset.cid) > m.cid) { before = rows[i]; } else { break; }
      }
    }
    var atBottom = this.box.scrollHeight - this.box.scrollTop - this.box.clientHeight < 80;
    this.box.insertBefore(row, before);
    if (atBottom || mine) { this.box.scrollTop = this.box.scrollHeight; }
    if (mine) { W.scrollOnLoad(this.box, row); }
    return true;
  };
  /* A message from the server's stream: shown (once) and heard. Returns whether it is new. */
  W.MessageList.prototype.received = function (m, mine) {
    this.heard(m);
    return this.add(m, mine);
  };
  /* The stream cursor (0: nothing heard yet): what to ask for with `after` after a
   * reconnect. Never raised by the page's own sends. */
  W.MessageList.prototype.lastCid = function () {
    return this.cursor;
  };
  /* An image in `row` that loads after it was scrolled into view pushes the list's bottom
   * down: keep the row in view once it has its size (the page's own image). */
  W.scrollOnLoad = function (box, row) {
    row.querySelectorAll('img').forEach(function (img) {
      if (img.complete) { return; }
      img.addEventListener('load', function () {
        var gap = box.scrollHeight - box.scrollTop - box.clientHeight;
        if (gap - img.offsetHeight < 80) { box.scrollTop = box.scrollHeight; }
      }, { once: true });
    });
  };
  W.MessageList.prototype.firstCid = function () {
    var min = 0;
    Object.keys(this.seen).forEach(function (k) {
      if (!min || Number(k) < min) { min = Number(k); }
    });
    return min;
  };
  /* The server's system lines again in the page's language (after a language switch). */
  W.MessageList.prototype.retranslate = function () {
    this.box.querySelectorAll('.msg.system[data-sys]').forEach(function (row) {
      if (row.woliveMessage) { row.firstChild.textContent = W.systemText(row.woliveMessage); }
    });
  };
  W.MessageList.prototype.system = function (text) {
    var row = W.el('div', 'msg system');
    row.appendChild(W.el('div', 'bubble', text));
    this.box.appendChild(row);
    this.box.scrollTop = this.box.scrollHeight;
    return row;
  };

  /* Enter sends, Shift+Enter is a new line; the box grows with its text (up to its CSS max). */
  W.composer = function (form, textarea, send) {
    function fit() {
      textarea.style.height = '';
      if (textarea.value && textarea.scrollHeight > textarea.clientHeight) {
        textarea.style.height = (textarea.scrollHeight + textarea.offsetHeight -
                                 textarea.clientHeight) + 'px';
      }
    }
    textarea.addEventListener('input', fit);
    var sending = false;  // one send at a time: a double click on Send sends once
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var text = textarea.value.trim();
      if (!text || sending) { return; }
      sending = true;
      textarea.disabled = true;
      // A rejected send counts as not sent: the text stays, the box is usable again.
      send(text).catch(function () { return false; }).then(function (ok) {
        sending = false;
        textarea.disabled = false;
        if (ok) { textarea.value = ''; fit(); }
        textarea.focus();
      });
    });
    textarea.addEventListener('keydown', function (e) {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        form.requestSubmit ? form.requestSubmit() : form.dispatchEvent(new Event('submit'));
      }
    });
  };

  /* No lost messages. `W.onReconnect(pusher, fn)` calls fn() each time the
   * connection comes back after having been lost (not on the first connect); pusher-js
   * itself reconnects and subscribes again. `W.onSubscribed(channel, fn)` calls fn(again)
   * each time `channel`'s subscription succeeds (again = false the first time): from then on
   * every new message reaches the page live, so that is when to ask for what was missed.
   *
   * `W.fetchMissed(list, url, params, mine)` asks `url` (a history URL that takes `after`)
   * for every message after the list's stream cursor (`list.lastCid()`), page by page (each
   * page after the previous page's last cid), adds each to the MessageList (shown once, in
   * cid order) and hears it; `mine(m)` says whether a message is the page's own. Resolves to
   * the messages added. One run at a time per list: a second call while one runs waits for
   * it and runs again. The server pushes a conversation's messages in cid order, so the
   * answer and the live stream together leave no gap. Visitor window:
   *   W.onSubscribed(pusher.subscribe(boot.channels.visitor), function () {
   *     W.fetchMissed(list, '/admin/event/history', {visiter_id: .., business_id: ..,
   *       channel: ..}, function (m) { return m.direction === 'to_service'; }); });        */
  W.MISSED_PAGE = 100;
  W.onReconnect = function (pusher, fn) {
    var was = false, lost = false;
    pusher.connection.bind('state_change', function (s) {
      if (s.current === 'connected') {
        if (was && lost) { lost = false; fn(); }
        was = true;
      } else if (was) {
        lost = true;
      }
    });
  };
  W.onSubscribed = function (channel, fn) {
    var times = 0;
    channel.bind('pusher:subscription_succeeded', function () { fn(times++ > 0); });
  };
  W.fetchMissed = function (list, url, params, mine) {
    var run = function () {
      var added = [];
      var page = function (after) {
        var q = {};
        Object.keys(params || {}).forEach(function (k) { q[k] = params[k]; });
        q.after = after;
        q.limit = W.MISSED_PAGE;
        return W.api('GET', url, q).then(function (r) {
          if (r.code !== 0 || !r.data) { return added; }
          var last = after;
          r.data.forEach(function (m) {
            if (Number(m.cid) > last) { last = Number(m.cid); }
            // The list has moved on to another conversation meanwhile (the console): skip.
            if (q.visiter_id && m.visiter_id && m.visiter_id !== list.owner) { return; }
            if (list.received(m, mine ? mine(m) : false)) { added.push(m); }
          });
          return r.data.length >= W.MISSED_PAGE && last > after ? page(last) : added;
        });
      };
      return page(list.lastCid());
    };
    var prev = list._missed || Promise.resolve();
    var next = prev.then(run, run);
    list._missed = next.catch(function () { return []; });
    return next;
  };

})(window);
