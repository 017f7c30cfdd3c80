/* /admin/page/embed: the snippet a site owner pastes, a copy button, a live preview. */
(function () {
  'use strict';
  var P = Wolive.page, t = P.t, boot = P.boot;
  Wolive.i18n.add({
    zh: { 'em.title': '嵌入代码', 'em.business': '商户', 'em.copy': '复制代码', 'em.copied': '已复制到剪贴板',
          'em.copyFailed': '无法自动复制，请手动选择代码复制', 'em.preview': '预览',
          'em.help': '把下面两行贴到您网站每个页面的 </body> 之前，访客就会在右下角看到“客服”按钮，点开即可与您对话。',
          'em.attrs': '可选：在 visiter_id、visiter_name、avatar 里填入您网站已登录用户的 ID、昵称和头像，客服就能认出老访客。',
          'em.previewHelp': '下面是一个贴了这段代码的示例页面；点右下角的按钮会打开访客聊天窗口。',
          'em.sample': '您的网站' },
    en: { 'em.title': 'Embed code', 'em.business': 'Business', 'em.copy': 'Copy code', 'em.copied': 'Copied to the clipboard',
          'em.copyFailed': 'Could not copy automatically: select the code and copy it', 'em.preview': 'Preview',
          'em.help': 'Paste these two lines before </body> on every page of your site: visitors see a chat button at the bottom right and can talk to you.',
          'em.attrs': 'Optional: put your signed-in user\'s id, name and avatar into visiter_id, visiter_name and avatar so agents recognise returning visitors.',
          'em.previewHelp': 'A sample page with this code on it; the button at the bottom right opens the visitor chat window.',
          'em.sample': 'Your website' }
  });
  Wolive.i18n.apply(document);

  var business = boot.business_id;
  var box = document.getElementById('snippet');
  var frame = document.getElementById('preview');

  function snippet() {
    return "<a href='" + boot.base + "' visiter_id='' visiter_name='' avatar='' business_id='" +
      business + "' id='workerman-kefu'></a>\n<script src='" + boot.base +
      "/assets/index/kefu_online.js'></" + "script>";
  }
  function render() {
    var code = snippet();
    box.textContent = code;
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
  Wolive.i18n.onChange(render);
  render();
})();
