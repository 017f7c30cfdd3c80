/* wolive video calls, for the console and the visitor window (docs/api.md, "Video").
 *
 * Asking: the visitor POSTs /admin/event/video, the agent /admin/set/video; the other side
 * gets `video` {call, ice_servers, ...} on its own channel (kefu{id} / cu{channel}) and
 * accepts or refuses (/admin/event/refuse, /admin/set/refuse → `video-refuse`). Refusing
 * also ends a running call (hang up): the server forgets the call channel at once.
 *
 * Signalling: both sides join the private call channel `private-call-…` on a second Pusher
 * connection whose channelAuthorization is /admin/set/videoauth (agent: cookie + X-XSRFToken)
 * or /admin/event/videoauth (visitor: visiter_id, business_id, channel as params). There they
 * exchange client events: `client-hello` {role} when joined, `client-offer` / `client-answer`
 * {i, n, sdp} (the SDP in parts, each well under the server's 10 KB limit), `client-ice`
 * {c: [candidates]} batched every 200 ms, `client-hangup`. Every client event goes through
 * one paced queue (at most ~8/s) since the server allows 10 per second per connection.
 * The caller makes the offer when the callee says hello (the hello means "accepted").
 *
 * The page: a button #video-btn (shown when boot.video_state is "open"), an incoming-call
 * dialog, a call view (remote and local video, mute, camera off, hang up) and a short notice.
 * All text through Wolive.i18n (zh default, en); every name goes in through textContent.
 * Tests read window.woliveVideo (state, pc, the last notice).
 */
(function () {
  'use strict';
  var W = window.Wolive;
  var bootEl = document.getElementById('boot');
  if (!W || !bootEl) { return; }
  var boot = JSON.parse(bootEl.textContent);
  var isAgent = !boot.visiter_id;
  var i18n = W.i18n || { t: function (k) { return k; }, add: function () {},
    apply: function () {}, onChange: function () {} };
  var t = function (k, v) { return i18n.t(k, v); };

  i18n.add({
    zh: {
      'video.call': '视频通话', 'video.incoming': '邀请您进行视频通话',
      'video.accept': '接听', 'video.refuse': '拒绝', 'video.hangup': '挂断',
      'video.mute': '静音', 'video.unmute': '取消静音',
      'video.cameraOff': '关闭摄像头', 'video.cameraOn': '打开摄像头',
      'video.calling': '正在呼叫 {name}…', 'video.connecting': '正在接通…',
      'video.connected': '通话中', 'video.unstable': '网络不稳定，正在重连…',
      'video.refused': '{name} 拒绝了视频通话', 'video.ended': '视频通话已结束',
      'video.noAnswer': '无人接听', 'video.failed': '视频连接失败，请稍后再试',
      'video.noDevice': '无法使用摄像头或麦克风：{why}', 'video.unsupported': '此浏览器不支持视频通话',
      'video.error': '无法发起视频通话：{why}', 'video.pick': '请先选择一个对话',
      'video.busy': '正在通话中', 'video.you': '我', 'video.visitor': '访客', 'video.agent': '客服',
      'video.cameraIsOff': '摄像头已关闭', 'video.close': '关闭'
    },
    en: {
      'video.call': 'Video call', 'video.incoming': 'wants a video call with you',
      'video.accept': 'Accept', 'video.refuse': 'Decline', 'video.hangup': 'Hang up',
      'video.mute': 'Mute', 'video.unmute': 'Unmute',
      'video.cameraOff': 'Turn camera off', 'video.cameraOn': 'Turn camera on',
      'video.calling': 'Calling {name}…', 'video.connecting': 'Connecting…',
      'video.connected': 'In call', 'video.unstable': 'Network unstable, reconnecting…',
      'video.refused': '{name} declined the video call', 'video.ended': 'Video call ended',
      'video.noAnswer': 'No answer', 'video.failed': 'The video connection failed; please try again later',
      'video.noDevice': 'Cannot use the camera or microphone: {why}',
      'video.unsupported': 'This browser cannot make video calls',
      'video.error': 'Cannot start a video call: {why}', 'video.pick': 'Pick a conversation first',
      'video.busy': 'Already in a call', 'video.you': 'You', 'video.visitor': 'Visitor',
      'video.agent': 'Agent', 'video.cameraIsOff': 'Camera off', 'video.close': 'Close'
    }
  });

  var RING_MS = 60000;          // unanswered calls end after a minute
  var PACE_MS = 120;            // ≤ 8.3 client events per second (server: 10/s)
  var ICE_BATCH_MS = 200;
  var SDP_PART = 4000;          // characters per part: JSON-escaped, still far under 10 KB
  var DEFAULT_AVATAR = '/assets/images/admin/avatar-admin2.png';

  var state = { call: null, notice: '', history: [] };
  window.woliveVideo = state;

  /* ---- the page's pieces ------------------------------------------------------------- */

  var btn = document.getElementById('video-btn');

  function el(tag, cls, attrs) {
    var e = W.el(tag, cls);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    return e;
  }
  function i18nText(e, key) { e.setAttribute('data-i18n', key); e.textContent = t(key); return e; }
  function safeAvatar(src) {
    return typeof src === 'string' && /^\/(?!\/)[^\s"'<>\\]*$/.test(src) ? src : DEFAULT_AVATAR;
  }
  var ICONS = {
    mic: 'M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.9V21h2v-3.1A7 7 0 0 0 19 11z',
    cam: 'M4 6.5A2.5 2.5 0 0 1 6.5 4h8A2.5 2.5 0 0 1 17 6.5v2.1l3.4-2.3A1 1 0 0 1 22 7.1v9.8a1 1 0 0 1-1.6.8L17 15.4v2.1a2.5 2.5 0 0 1-2.5 2.5h-8A2.5 2.5 0 0 1 4 17.5z',
    phone: 'M21 15.5v3.1a1.5 1.5 0 0 1-1.6 1.5A17.5 17.5 0 0 1 3.9 4.6 1.5 1.5 0 0 1 5.4 3h3.1a1.5 1.5 0 0 1 1.5 1.3c.1 1 .4 2 .7 2.9a1.5 1.5 0 0 1-.3 1.6L9 10.2a14 14 0 0 0 4.8 4.8l1.4-1.4a1.5 1.5 0 0 1 1.6-.3c.9.3 1.9.6 2.9.7a1.5 1.5 0 0 1 1.3 1.5z'
  };
  function icon(name) {
    var ns = 'http://www.w3.org/2000/svg';
    var svg = document.createElementNS(ns, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24'); svg.setAttribute('width', '22');
    svg.setAttribute('height', '22'); svg.setAttribute('aria-hidden', 'true');
    var path = document.createElementNS(ns, 'path');
    path.setAttribute('fill', 'currentColor'); path.setAttribute('d', ICONS[name]);
    svg.appendChild(path);
    return svg;
  }
  function roundButton(id, cls, iconName, labelKey) {
    var b = el('button', 'wv-round ' + cls, { id: id, type: 'button' });
    b.appendChild(icon(iconName));
    var label = el('span', 'wv-label');
    b.appendChild(i18nText(label, labelKey));
    return b;
  }

  /* Incoming-call dialog. */
  var incoming = el('div', 'wv-incoming', { id: 'video-incoming', role: 'alertdialog',
                                             'aria-modal': 'false', 'aria-labelledby': 'video-incoming-name' });
  incoming.hidden = true;
  var inAvatar = el('img', 'wv-avatar', { alt: '' });
  var inText = el('div', 'wv-intext');
  var inName = el('strong', '', { id: 'video-incoming-name' });
  var inWhat = i18nText(el('span'), 'video.incoming');
  inText.appendChild(inName); inText.appendChild(inWhat);
  var inButtons = el('div', 'wv-inbuttons');
  var refuseBtn = roundButton('video-refuse', 'wv-red wv-hang', 'phone', 'video.refuse');
  var acceptBtn = roundButton('video-accept', 'wv-green', 'cam', 'video.accept');
  inButtons.appendChild(refuseBtn); inButtons.appendChild(acceptBtn);
  incoming.appendChild(inAvatar); incoming.appendChild(inText); incoming.appendChild(inButtons);

  /* Call view. */
  var view = el('section', 'wv-call' + (isAgent ? ' wv-agent' : ' wv-visitor'),
                { id: 'video-call', 'aria-label': t('video.call') });
  view.hidden = true;
  var stage = el('div', 'wv-stage');
  var remote = el('video', 'wv-remote', { id: 'video-remote', autoplay: '', playsinline: '' });
  var local = el('video', 'wv-local', { id: 'video-local', autoplay: '', playsinline: '' });
  local.muted = true;
  var localOff = i18nText(el('div', 'wv-localoff'), 'video.cameraIsOff');
  localOff.hidden = true;
  var peerBox = el('div', 'wv-peer');
  var peerAvatar = el('img', 'wv-avatar', { alt: '' });
  var peerName = el('strong', 'wv-peername');
  var status = el('div', 'wv-status', { id: 'video-status', role: 'status', 'aria-live': 'polite' });
  peerBox.appendChild(peerAvatar); peerBox.appendChild(peerName); peerBox.appendChild(status);
  stage.appendChild(remote); stage.appendChild(peerBox); stage.appendChild(local);
  stage.appendChild(localOff);
  var bar = el('div', 'wv-bar');
  var muteBtn = roundButton('video-mute', 'wv-toggle', 'mic', 'video.mute');
  var camBtn = roundButton('video-camera', 'wv-toggle', 'cam', 'video.cameraOff');
  var hangBtn = roundButton('video-hangup', 'wv-red wv-hang', 'phone', 'video.hangup');
  muteBtn.setAttribute('aria-pressed', 'false'); camBtn.setAttribute('aria-pressed', 'false');
  bar.appendChild(muteBtn); bar.appendChild(camBtn); bar.appendChild(hangBtn);
  view.appendChild(stage); view.appendChild(bar);

  /* A short notice (refused, ended, errors). */
  var toast = el('div', 'wv-toast', { id: 'video-notice', role: 'status', 'aria-live': 'polite' });
  toast.hidden = true;
  var toastTimer = null;
  function notify(text) {
    state.notice = text;
    state.history.push(text);
    toast.textContent = text;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () { toast.hidden = true; }, 6000);
  }

  document.body.appendChild(incoming);
  document.body.appendChild(view);
  document.body.appendChild(toast);

  function relabel() {
    muteBtn.querySelector('.wv-label').setAttribute('data-i18n',
      muteBtn.getAttribute('aria-pressed') === 'true' ? 'video.unmute' : 'video.mute');
    camBtn.querySelector('.wv-label').setAttribute('data-i18n',
      camBtn.getAttribute('aria-pressed') === 'true' ? 'video.cameraOn' : 'video.cameraOff');
    view.setAttribute('aria-label', t('video.call'));
    i18n.apply(incoming); i18n.apply(view);
    [muteBtn, camBtn, hangBtn, acceptBtn, refuseBtn].forEach(function (b) {
      b.title = b.querySelector('.wv-label').textContent;
    });
    if (btn) { btn.title = t('video.call'); btn.setAttribute('aria-label', t('video.call')); }
    showStatus();
  }
  i18n.onChange(relabel);

  /* ---- who am I talking to ------------------------------------------------------------ */

  function activeVisitor() {
    var c = window.woliveConsole;
    if (c && c.active) { return typeof c.active === 'function' ? c.active() : c.active; }
    var row = document.querySelector('#convs .conv.active');
    return row ? row.getAttribute('data-visiter') : null;
  }
  function visitorInfo(vid) {
    var c = window.woliveConsole, conv = c && c.convs && c.convs[vid];
    return { name: (conv && conv.visiter_name && W.i18n.visitorName(conv.visiter_name, vid)) ||
                   vid || t('video.visitor'),
             avatar: conv && conv.avatar };
  }
  function agentInfo() {
    var name = document.getElementById('agent-name');
    var img = document.getElementById('agent-avatar');
    return { name: (name && name.textContent) || t('video.agent'),
             avatar: img && img.getAttribute('src') };
  }
  var visitorIds = { visiter_id: boot.visiter_id, business_id: boot.business_id,
                     channel: boot.channel };

  function api(kind, params) {
    var urls = isAgent
      ? { ask: '/admin/set/video', refuse: '/admin/set/refuse' }
      : { ask: '/admin/event/video', refuse: '/admin/event/refuse' };
    var body = {};
    Object.keys(isAgent ? {} : visitorIds).forEach(function (k) { body[k] = visitorIds[k]; });
    Object.keys(params || {}).forEach(function (k) { body[k] = params[k]; });
    // No answer (network gone) reads as a refusal: callers check `code`, none is left hanging.
    return W.api('POST', urls[kind], body).catch(function () { return { code: -1 }; });
  }

  /* ---- the button --------------------------------------------------------------------- */

  function updateButton() {
    if (!btn) { return; }
    btn.hidden = boot.video_state !== 'open';
    btn.disabled = !!state.call || starting || (isAgent && !activeVisitor());
    btn.classList.toggle('wv-busy', !!state.call);
  }
  if (btn) {
    btn.addEventListener('click', function () { startCall(); });
    if (isAgent) {
      var watched = document.getElementById('convs');
      if (watched && window.MutationObserver) {
        new MutationObserver(updateButton).observe(watched, {
          subtree: true, childList: true, attributes: true, attributeFilter: ['class'] });
      }
      var wb = document.getElementById('workbench');
      if (wb && window.MutationObserver) {
        new MutationObserver(updateButton).observe(wb, { attributes: true, attributeFilter: ['class'] });
      }
    }
    updateButton();
  }

  /* ---- media -------------------------------------------------------------------------- */

  function getMedia() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.RTCPeerConnection) {
      return Promise.reject(new Error(t('video.unsupported')));
    }
    return navigator.mediaDevices.getUserMedia({
      audio: true, video: { width: { ideal: 1280 }, height: { ideal: 720 } }
    }).catch(function (err) {
      // A machine without a camera can still talk.
      if (err && (err.name === 'NotFoundError' || err.name === 'OverconstrainedError')) {
        return navigator.mediaDevices.getUserMedia({ audio: true });
      }
      throw err;
    });
  }

  /* ---- a call ------------------------------------------------------------------------- */

  function Call(opts) {
    this.name = opts.call;
    this.role = opts.role;                 // 'caller' makes the offer
    this.peer = opts.peer;                 // {name, avatar}
    this.visiterId = opts.visiterId;       // agent side: whom to refuse
    this.iceServers = Array.isArray(opts.ice_servers) ? opts.ice_servers : [];
    this.phase = opts.role === 'caller' ? 'calling' : 'connecting';
    this.outbox = []; this.iceOut = []; this.iceIn = []; this.parts = {};
    this.pc = null; this.stream = null; this.sock = null; this.ch = null;
    this.remoteSet = false; this.offered = false; this.ended = false;
    this.started = 0;
  }

  Call.prototype.join = function () {
    var self = this, cfg = boot.pusher || {};
    var auth = isAgent
      ? { endpoint: '/admin/set/videoauth', transport: 'ajax',
          headers: { 'X-XSRFToken': W.cookie('_xsrf') } }
      : { endpoint: '/admin/event/videoauth', transport: 'ajax', params: visitorIds };
    this.sock = W.pusher(cfg, null, { channelAuthorization: auth });
    this.ch = this.sock.subscribe(this.name);
    this.ch.bind('pusher:subscription_succeeded', function () {
      self.send('client-hello', { role: self.role });
      self.pump();
    });
    this.ch.bind('pusher:subscription_error', function () {
      self.fail(t('video.failed'));
    });
    this.ch.bind('client-hello', function (d) { self.onHello(d || {}); });
    this.ch.bind('client-offer', function (d) { self.onPart('offer', d); });
    this.ch.bind('client-answer', function (d) { self.onPart('answer', d); });
    this.ch.bind('client-ice', function (d) { self.onIce(d); });
    this.ch.bind('client-hangup', function () { self.end(t('video.ended'), false); });
    this.pumpTimer = setInterval(function () { self.pump(); }, PACE_MS);
    this.iceTimer = setInterval(function () { self.flushIce(); }, ICE_BATCH_MS);
  };

  Call.prototype.send = function (event, data) { this.outbox.push([event, data]); };

  /* One client event per tick, only once the channel is joined. */
  Call.prototype.pump = function () {
    var now = Date.now();
    if (!this.ch || !this.ch.subscribed || !this.outbox.length || now - (this.lastSent || 0) < PACE_MS) {
      return;
    }
    var next = this.outbox.shift();
    this.lastSent = now;
    this.ch.trigger(next[0], next[1]);
  };

  Call.prototype.flushIce = function () {
    if (!this.iceOut.length) { return; }
    // Keep each event well under 10 KB.
    var batch = [], size = 0;
    while (this.iceOut.length && size < 6000) {
      var c = this.iceOut.shift();
      batch.push(c); size += JSON.stringify(c).length;
    }
    this.send('client-ice', { c: batch });
  };

  Call.prototype.peerConnection = function () {
    if (this.pc) { return this.pc; }
    var self = this;
    var pc = this.pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.stream.getTracks().forEach(function (tr) { pc.addTrack(tr, self.stream); });
    pc.onicecandidate = function (e) {
      if (e.candidate) { self.iceOut.push(e.candidate.toJSON ? e.candidate.toJSON() : e.candidate); }
    };
    pc.ontrack = function (e) {
      var s = e.streams && e.streams[0];
      if (!s) { s = remote.srcObject || new MediaStream(); s.addTrack(e.track); }
      if (remote.srcObject !== s) { remote.srcObject = s; }
      var p = remote.play(); if (p && p.catch) { p.catch(function () {}); }
    };
    pc.onconnectionstatechange = function () {
      var s = pc.connectionState;
      if (s === 'connected') {
        if (!self.started) { self.started = Date.now(); }
        self.phase = 'connected';
        view.classList.add('wv-live');
      } else if (s === 'disconnected') {
        self.phase = 'unstable';
      } else if (s === 'failed') {
        self.fail(t('video.failed'));
        return;
      }
      showStatus();
    };
    return pc;
  };

  Call.prototype.onHello = function (d) {
    if (this.role === 'caller') {
      if (d.role !== 'callee' || this.offered) { return; }
      this.offered = true;
      clearTimeout(this.ringTimer);
      this.phase = 'connecting'; showStatus();
      var self = this, pc = this.peerConnection();
      pc.createOffer().then(function (o) { return pc.setLocalDescription(o); }).then(function () {
        self.sendSdp('client-offer', pc.localDescription.sdp);
      }).catch(function () { self.fail(t('video.failed')); });
    } else if (d.role === 'caller') {
      // The caller joined after us: say hello again so it makes the offer.
      this.send('client-hello', { role: 'callee' });
    }
  };

  Call.prototype.sendSdp = function (event, sdp) {
    var n = Math.ceil(sdp.length / SDP_PART) || 1;
    for (var i = 0; i < n; i++) {
      this.send(event, { i: i, n: n, sdp: sdp.slice(i * SDP_PART, (i + 1) * SDP_PART) });
    }
  };

  Call.prototype.onPart = function (type, d) {
    if (!d || typeof d.sdp !== 'string' || !(d.n > 0) || d.n > 20 || !(d.i >= 0 && d.i < d.n)) { return; }
    var box = this.parts[type] = this.parts[type] && this.parts[type].n === d.n
      ? this.parts[type] : { n: d.n, got: {}, count: 0 };
    if (box.got[d.i] === undefined) { box.got[d.i] = d.sdp; box.count++; }
    if (box.count < box.n) { return; }
    var sdp = '';
    for (var i = 0; i < box.n; i++) { sdp += box.got[i]; }
    delete this.parts[type];
    var self = this, pc;
    if (type === 'offer' && this.role === 'callee') {
      pc = this.peerConnection();
      pc.setRemoteDescription({ type: 'offer', sdp: sdp }).then(function () {
        self.remoteDescribed();
        return pc.createAnswer();
      }).then(function (a) { return pc.setLocalDescription(a); }).then(function () {
        self.sendSdp('client-answer', pc.localDescription.sdp);
      }).catch(function () { self.fail(t('video.failed')); });
    } else if (type === 'answer' && this.role === 'caller' && this.pc) {
      this.pc.setRemoteDescription({ type: 'answer', sdp: sdp }).then(function () {
        self.remoteDescribed();
      }).catch(function () { self.fail(t('video.failed')); });
    }
  };

  Call.prototype.remoteDescribed = function () {
    this.remoteSet = true;
    var pc = this.pc;
    this.iceIn.splice(0).forEach(function (c) { pc.addIceCandidate(c).catch(function () {}); });
  };

  Call.prototype.onIce = function (d) {
    var list = d && Array.isArray(d.c) ? d.c : [];
    var self = this;
    list.forEach(function (c) {
      if (!c || typeof c !== 'object') { return; }
      if (self.pc && self.remoteSet) { self.pc.addIceCandidate(c).catch(function () {}); } else { self.iceIn.push(c); }
    });
  };

  /* Leave: tell the other side (client event and the refuse URL, which also ends the call
   * channel on the server) unless it told us. */
  Call.prototype.end = function (text, tellPeer) {
    if (this.ended) { return; }
    this.ended = true;
    clearTimeout(this.ringTimer);
    clearInterval(this.pumpTimer); clearInterval(this.iceTimer);
    var self = this;
    if (tellPeer) {
      if (this.ch && this.ch.subscribed) { this.ch.trigger('client-hangup', {}); }
      var params = { call: this.name };
      if (isAgent) { params.visiter_id = this.visiterId; }
      api('refuse', params);
    }
    state.last = { name: this.name, connectionState: this.pc ? this.pc.connectionState : 'new',
                   seconds: this.started ? Math.round((Date.now() - this.started) / 1000) : 0 };
    if (this.pc) { try { this.pc.close(); } catch (e) { /* already closed */ } }
    if (this.stream) { this.stream.getTracks().forEach(function (tr) { tr.stop(); }); }
    // Let the hang-up event leave before the socket closes.
    setTimeout(function () { if (self.sock) { self.sock.disconnect(); } }, tellPeer ? 300 : 0);
    if (state.call === this) { state.call = null; }
    remote.srcObject = null; local.srcObject = null;
    view.hidden = true; view.classList.remove('wv-live');
    hideIncoming();
    updateButton();
    if (text) { notify(text); }
  };
  Call.prototype.fail = function (text) { this.end(text, true); };


  /* ---- showing it --------------------------------------------------------------------- */

  var clock = null;
  function showStatus() {
    var c = state.call;
    if (!c) { clearInterval(clock); clock = null; return; }
    var text;
    if (c.phase === 'calling') { text = t('video.calling', { name: c.peer.name }); }
    else if (c.phase === 'connecting') { text = t('video.connecting'); }
    else if (c.phase === 'unstable') { text = t('video.unstable'); }
    else {
      var s = Math.max(0, Math.floor((Date.now() - c.started) / 1000));
      text = t('video.connected') + ' ' + Math.floor(s / 60) + ':' + ('0' + s % 60).slice(-2);
      if (!clock) { clock = setInterval(showStatus, 1000); }
    }
    status.textContent = text;
  }

  function showCall(c) {
    peerName.textContent = c.peer.name;
    peerAvatar.src = safeAvatar(c.peer.avatar);
    local.srcObject = c.stream;
    muteBtn.setAttribute('aria-pressed', 'false'); camBtn.setAttribute('aria-pressed', 'false');
    muteBtn.classList.remove('wv-on'); camBtn.classList.remove('wv-on');
    localOff.hidden = true; local.hidden = !c.stream.getVideoTracks().length;
    camBtn.disabled = !c.stream.getVideoTracks().length;
    relabel();
    view.hidden = false;
    showStatus();
    hangBtn.focus();
  }

  function hideIncoming() {
    incoming.hidden = true;
    clearTimeout(incoming.timer);
  }

  muteBtn.addEventListener('click', function () {
    var c = state.call; if (!c || !c.stream) { return; }
    var off = muteBtn.getAttribute('aria-pressed') !== 'true';
    c.stream.getAudioTracks().forEach(function (tr) { tr.enabled = !off; });
    muteBtn.setAttribute('aria-pressed', String(off)); muteBtn.classList.toggle('wv-on', off);
    relabel();
  });
  camBtn.addEventListener('click', function () {
    var c = state.call; if (!c || !c.stream) { return; }
    var off = camBtn.getAttribute('aria-pressed') !== 'true';
    c.stream.getVideoTracks().forEach(function (tr) { tr.enabled = !off; });
    camBtn.setAttribute('aria-pressed', String(off)); camBtn.classList.toggle('wv-on', off);
    local.hidden = off; localOff.hidden = !off;
    relabel();
  });
  hangBtn.addEventListener('click', function () {
    if (state.call) { state.call.end(t('video.ended'), true); }
  });

  /* ---- asking ------------------------------------------------------------------------- */

  var starting = false;
  function startCall(visiterId) {
    // One call at a time; a click seen by two handlers (ours and the page's hook) starts one.
    if (state.call || starting) { return; }
    var vid = isAgent ? (typeof visiterId === 'string' && visiterId ? visiterId : activeVisitor()) : null;
    if (isAgent && !vid) { notify(t('video.pick')); return; }
    var peer = isAgent ? visitorInfo(vid) : agentInfo();
    starting = true;
    toast.hidden = true;
    if (btn) { btn.disabled = true; }
    var stream = null;
    getMedia().then(function (s) {
      stream = s;
      return api('ask', isAgent ? { visiter_id: vid } : {});
    }).then(function (r) {
      if (r.code !== 0) {
        if (r.code === 2) { boot.video_state = 'close'; }
        throw new Error(r.msg || ('code ' + r.code));
      }
      var c = new Call({ call: r.data.call, role: 'caller', peer: peer, visiterId: vid,
                         ice_servers: r.data.ice_servers });
      c.stream = stream;
      state.call = c;
      showCall(c);
      c.join();
      c.ringTimer = setTimeout(function () { c.end(t('video.noAnswer'), true); }, RING_MS);
      starting = false;
      updateButton();
    }).catch(function (err) {
      starting = false;
      if (stream) { stream.getTracks().forEach(function (tr) { tr.stop(); }); }
      var why = (err && (err.message || err.name)) || String(err);
      notify(err && err.name && /NotAllowed|NotReadable|Security|Abort/.test(err.name)
        ? t('video.noDevice', { why: err.name }) : t('video.error', { why: why }));
      updateButton();
    });
  }

  /* ---- being asked -------------------------------------------------------------------- */

  var pending = null;   // the `video` event waiting for accept / refuse

  function onAsk(d) {
    if (!d || typeof d.call !== 'string' || d.call.indexOf('private-call-') !== 0) { return; }
    if (state.call) {
      if (state.call.name === d.call) { return; }
      // Busy: turn the second call down.
      var params = { call: d.call };
      if (isAgent) { params.visiter_id = d.visiter_id; }
      api('refuse', params);
      return;
    }
    pending = d;
    toast.hidden = true;
    var who = isAgent ? { name: d.visiter_name ? W.i18n.visitorName(d.visiter_name, d.visiter_id)
                                               : d.visiter_id, avatar: d.avatar }
                      : { name: d.nick_name || t('video.agent'), avatar: d.avatar };
    pending.peer = who;
    inName.textContent = who.name;
    inAvatar.src = safeAvatar(who.avatar);
    relabel();
    incoming.hidden = false;
    acceptBtn.focus();
    clearTimeout(incoming.timer);
    incoming.timer = setTimeout(function () {
      if (pending === d) { pending = null; hideIncoming(); notify(t('video.noAnswer')); }
    }, RING_MS);
  }

  function onRefused(d) {
    if (!d) { return; }
    if (pending && pending.call === d.call) {
      pending = null; hideIncoming(); notify(t('video.ended'));
      return;
    }
    var c = state.call;
    if (c && (!d.call || d.call === c.name)) {
      var who = c.peer.name;
      c.end(c.phase === 'calling' ? t('video.refused', { name: who }) : t('video.ended'), false);
    }
  }

  acceptBtn.addEventListener('click', function () {
    var d = pending; if (!d) { return; }
    pending = null; hideIncoming();
    getMedia().then(function (stream) {
      var c = new Call({ call: d.call, role: 'callee', peer: d.peer,
                         visiterId: d.visiter_id, ice_servers: d.ice_servers });
      c.stream = stream;
      state.call = c;
      showCall(c);
      c.join();
      updateButton();
    }).catch(function (err) {
      var params = { call: d.call };
      if (isAgent) { params.visiter_id = d.visiter_id; }
      api('refuse', params);
      notify(t('video.noDevice', { why: (err && (err.name || err.message)) || String(err) }));
    });
  });
  refuseBtn.addEventListener('click', function () {
    var d = pending; if (!d) { return; }
    pending = null; hideIncoming();
    var params = { call: d.call };
    if (isAgent) { params.visiter_id = d.visiter_id; }
    api('refuse', params);
  });
  document.addEventListener('keydown', function (e) {
    if (e.key === 'Escape' && !incoming.hidden) { refuseBtn.click(); }
  });

  /* The page's own Pusher connection carries `video` / `video-refuse`. */
  function listen() {
    var host = isAgent ? window.woliveConsole : window.woliveVisitor;
    var p = host && host.pusher;
    if (!p) { setTimeout(listen, 100); return; }
    // The page's own channel, as the server named it in the boot data.
    var name = isAgent ? boot.presence.channels.presence : boot.channels.visitor;
    var own = p.channel(name) || p.subscribe(name);
    own.bind('video', onAsk);
    own.bind('video-refuse', onRefused);
  }
  listen();

  /* Hooks for the page scripts (visitor.js calls Wolive.video.visitorCall on its button). */
  W.video = {
    visitorCall: function () { startCall(); },
    agentCall: function (visiterId) { startCall(visiterId); },
    hangUp: function () { if (state.call) { state.call.end(t('video.ended'), true); } },
    state: state
  };

  window.addEventListener('pagehide', function () {
    if (state.call) { state.call.end('', true); }
  });
})();
