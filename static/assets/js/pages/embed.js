/* /admin/page/embed: the snippet a site owner pastes, a copy button, a live preview. */
(function () {
  'use strict';
  var P = Wolive.page, t = P.t, boot = P.boot;
  Wolive.i18n.add({
    zh: { 'em.title': '嵌入代码', 'em.business': '商户', 'em.copy': '复制代码', 'em.copied': '已复制到剪贴板',
          'em.copyFailed': '无法自动复制，请手动选择代码复制', 'em.preview': '预览',
          'em.help': '把下面两行贴到您网站每个页面的 </body> 之前，访客就会在页面右侧看到圆形的聊天按钮（电脑上在窗口 60% 高处，手机上在右下角），点开即可与您对话。',
          'em.panelHelp': '点按钮会在页面上打开对话面板（电脑上在按钮左侧，手机上全屏），再点按钮、面板的 × 或 Esc 键即可关闭。面板关闭时客服回复了，按钮上会显示未读条数，并有提示音（访客可在面板里关掉）和网页标题闪烁“(1) 新消息”。访客第一次把鼠标移到按钮上时才加载对话；打开过对话的访客，之后每打开一个页面都会提前加载，以便收到回复。',
          'em.popupHelp': '弹出窗口模式保留 WoLive 原来的做法：电脑上在新窗口打开对话，手机上整页打开（浏览器拦截弹窗时改为页面上的面板）。窗口关闭后，回复不会在您的网站上提示。',
          'em.popupMode': "弹出窗口模式（mode='popup'）",
          'em.csp': '如果您的网站设置了 Content-Security-Policy，请在 script-src、frame-src 和 img-src 中允许 {base}。',
          'em.attrs': '可选：在 visiter_id、visiter_name、avatar 里填入您网站已登录用户的 ID、昵称和头像，客服就能认出老访客。',
          'em.previewHelp': '下面是一个贴了这段代码的示例页面。预览在沙箱里运行，所以按钮在这里总是用新窗口打开对话。',
          'em.sample': '您的网站' },
    en: { 'em.title': 'Embed code', 'em.business': 'Business', 'em.copy': 'Copy code', 'em.copied': 'Copied to the clipboard',
          'em.copyFailed': 'Could not copy automatically: select the code and copy it', 'em.preview': 'Preview',
          'em.help': 'Paste these two lines before </body> on every page of your site: visitors see a round chat button at the right of the page (60% down the window on a PC, in the bottom-right corner on a phone) and can talk to you.',
          'em.panelHelp': 'The button opens a chat panel on the page (beside the button on a PC, full screen on a phone); the button again, the panel\'s × or Esc closes it. When an agent replies while the panel is closed, the button shows the unread count, a sound plays (visitors can turn it off in the panel) and the page title blinks "(1) New message". The chat is loaded when a visitor first moves to the button; for a visitor who has opened it before, with every page, so replies reach them.',
          'em.popupHelp': 'Popup mode keeps WoLive\'s behaviour: the chat opens in a window of its own on a PC and as the page on a phone (the panel when the browser blocks the window). Once the window is closed, replies leave no notice on your site.',
          'em.popupMode': "Popup window (mode='popup')",
          'em.csp': 'If your site sends a Content-Security-Policy, allow {base} in script-src, frame-src and img-src.',
          'em.attrs': 'Optional: put your signed-in user\'s id, name and avatar into visiter_id, visiter_name and avatar so agents recognise returning visitors.',
          'em.previewHelp': 'A sample page with this code on it. The preview runs in a sandbox, so here the button always opens the chat in a window.',
          'em.sample': 'Your website' }
  });
  Wolive.i18n.apply(document);

  var business = boot.business_id;
  var box = document.getElementById('snippet');
  var frame = document.getElementById('preview');

  var popupBox = document.getElementById('popup-mode');
  function snippet() {
    return "<a href='" + boot.base + "' visiter_id='' visiter_name='' avatar='' business_id='" +
      business + "'" + (popupBox.checked ? " mode='popup'" : '') +
      " id='workerman-kefu'></a>\n<script src='" + boot.base +
      "/assets/index/kefu_online.js'></" + "script>";
  }
  function render() {
    var code = snippet();
    box.textContent = code;
    var help = document.getElementById('mode-help');
    help.dataset.i18n = popupBox.checked ? 'em.popupHelp' : 'em.panelHelp';
    help.textContent = t(help.dataset.i18n);
    document.getElementById('csp-help').textContent = t('em.csp', { base: boot.base });
    frame.srcdoc = '<!doctype html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">' +
      '<style>body{font:15px/1.6 system-ui,sans-serif;margin:0;padding:24px;color:#334155;background:#f8fafc;min-height:100vh;box-sizing:border-box}' +
      'h1{font-size:20px;margin:0 0 8px}.bar{height:12px;border-radius:6px;background:#e2e8f0;margin:10px 0;max-width:520px}</style></head><body>' +
      '<h1>' + t('em.sample').replace(/[<&]/g, '') + '</h1><div class="bar"></div><div class="bar" style="width:70%"></div><div class="bar" style="width:85%"></div>' +
      code + '</body></html>';
  }

  function fallbackCopy(text) {
    var ta = document.createElement('textarea');
    ta.value = text;
    ta.setAttribute('readonly', '');
    ta.style.position = 'fixed'; ta.style.opacity = '0';
    document.body.appendChild(ta);
    ta.select();
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    document.body.removeChild(ta);
    return ok;
  }
  function selectSnippet() {
    var r = document.createRange();
    r.selectNodeContents(box);
    var sel = getSelection(); sel.removeAllRanges(); sel.addRange(r);
  }
  var copied = document.getElementById('copied');
  document.getElementById('copy').addEventListener('click', function () {
    var text = snippet();
    function done(ok) {
      copied.className = ok ? 'ok-text' : 'error-text';
      copied.textContent = t(ok ? 'em.copied' : 'em.copyFailed');
      if (!ok) { selectSnippet(); }
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); },
        function () { done(fallbackCopy(text)); });
    } else {
      done(fallbackCopy(text));
    }
  });

  if (boot.level === 'super_manager') {
    P.call('GET', '/admin/business/list', {}).then(function (rows) {
      var sel = document.getElementById('biz');
      (rows || []).forEach(function (b) {
        var o = P.el('option', '', b.business_id);
        o.value = b.business_id;
        if (b.business_id === business) { o.selected = true; }
        sel.appendChild(o);
      });
      document.getElementById('biz-row').hidden = (rows || []).length < 2;
      sel.addEventListener('change', function () { business = sel.value; copied.textContent = ''; render(); });
    }).catch(function () {});
  }
  popupBox.addEventListener('change', function () { copied.textContent = ''; render(); });
  Wolive.i18n.onChange(render);
  render();
})();
