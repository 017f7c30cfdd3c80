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
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return { code: -1, msg: 'HTTP ' + r.status }; });
    });
  };

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

  /* A message list that shows each cid once, in cid order, whatever order they arrive in. */
  W.MessageList = function (container) {
    this.box = container;
    this.seen = {};
  };
  W.MessageList.prototype.clear = function () {
    this.box.textContent = '';
    this.seen = {};
  };
  W.MessageList.prototype.add = function (m, mine) {
    if (m.cid) {
      if (this.seen[m.cid]) { return false; }
      this.seen[m.cid] = true;
    }
    var row = W.el('div', 'msg ' + (mine ? 'mine' : 'theirs'));
    if (m.cid) { row.dataset.cid = m.cid; }
    row.appendChild(W.bubble(m));
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
    return true;
  };
  /* The newest cid shown (0: none): what to ask for with `after` after a reconnect. */
  W.MessageList.prototype.lastCid = function () {
    var max = 0;
    Object.keys(this.seen).forEach(function (k) { if (Number(k) > max) { max = Number(k); } });
    return max;
  };
  W.MessageList.prototype.firstCid = function () {
    var min = 0;
    Object.keys(this.seen).forEach(function (k) {
      if (!min || Number(k) < min) { min = Number(k); }
    });
    return min;
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
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var text = textarea.value.trim();
      if (!text) { return; }
      textarea.disabled = true;
      // A rejected send counts as not sent: the text stays, the box is usable again.
      send(text).catch(function () { return false; }).then(function (ok) {
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

  /* No lost messages (issue 5). `W.onReconnect(pusher, fn)` calls fn() each time the
   * connection comes back after having been lost (not on the first connect); pusher-js itself
   * reconnects and subscribes again. `W.fetchMissed(list, url, params, mine)` then asks `url`
   * (a history URL that takes `after`) for every message after `list.lastCid()`, page by page,
   * and adds each to the MessageList (which shows each cid once, in cid order); `mine(m)` says
   * whether a message is the page's own. Resolves to the messages added. One run at a time per
   * list: a second call while one runs waits for it and runs again. Visitor window:
   *   W.onReconnect(pusher, function () { W.fetchMissed(list, '/admin/event/history',
   *     {visiter_id: .., business_id: .., channel: ..},
   *     function (m) { return m.direction === 'to_service'; }); });                       */
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
  W.fetchMissed = function (list, url, params, mine) {
    var run = function () {
      var added = [];
      var page = function () {
        var q = {};
        Object.keys(params || {}).forEach(function (k) { q[k] = params[k]; });
        q.after = list.lastCid();
        q.limit = W.MISSED_PAGE;
        return W.api('GET', url, q).then(function (r) {
          if (r.code !== 0 || !r.data) { return added; }
          r.data.forEach(function (m) {
            if (list.add(m, mine ? mine(m) : false)) { added.push(m); }
          });
          return r.data.length >= W.MISSED_PAGE ? page() : added;
        });
      };
      return page();
    };
    var prev = list._missed || Promise.resolve();
    var next = prev.then(run, run);
    list._missed = next.catch(function () { return []; });
    return next;
  };



})(window);
