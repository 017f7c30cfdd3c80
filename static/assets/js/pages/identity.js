/* /admin/page/embed, "Visitor identity" (manager and up): the business's identity
 * secret with signing examples for the site's server (PHP, Python, Node), a button that makes
 * a new secret, and the "require signed ids" switch (`/admin/manager/identity`). */
(function () {
  'use strict';
  var P = Wolive.page, t = P.t, boot = P.boot;
  if (boot.level !== 'manager' && boot.level !== 'super_manager') { return; }
  Wolive.i18n.add({
    zh: { 'id.title': '访客身份验证',
          'id.help': '如果您在 visiter_id 里填入自己网站的用户 ID，请在您的服务器上用下面的密钥为它签名，并把签名填入代码里的 visiter_sign=\'…\'。签过名的 ID 在任何浏览器里都是同一位访客、看到同一段对话；没有签名的 ID 只属于第一个使用它的浏览器，别的浏览器用同一个 ID 会开始一段新的对话。密钥只能放在服务器上，不要写进网页。',
          'id.secret': '身份密钥', 'id.regen': '重新生成密钥',
          'id.regenConfirm': '重新生成后，用旧密钥做的签名都会失效。确定吗？',
          'id.regenerated': '已生成新密钥', 'id.saved': '已保存',
          'id.require': '只接受签名的访客 ID（require signed ids）',
          'id.requireHelp': '打开后，没有签名（或签名不对）的 visiter_id 会被拒绝（403）；不填 visiter_id 的匿名访客照常可以咨询。默认关闭，以兼容现有的 WoLive 代码。',
          'id.examples': '在服务器上计算 visiter_sign（HMAC-SHA256，十六进制）：' },
    en: { 'id.title': 'Visitor identity',
          'id.help': 'If you put your own site\'s user ids into visiter_id, sign each on your server with the secret below and put the signature into the snippet as visiter_sign=\'…\'. A signed id is the same visitor, with the same conversation, in every browser; an unsigned id belongs to the first browser that used it, and another browser using it starts a conversation of its own. Keep the secret on your server, never in a page.',
          'id.secret': 'Identity secret', 'id.regen': 'Regenerate secret',
          'id.regenConfirm': 'Signatures made with the old secret will stop working. Go on?',
          'id.regenerated': 'New secret made', 'id.saved': 'Saved',
          'id.require': 'Require signed ids',
          'id.requireHelp': 'When on, a visiter_id without a (right) signature is refused (403); anonymous visitors (no visiter_id) still chat. Off by default, so existing WoLive snippets keep working.',
          'id.examples': 'Compute visiter_sign on your server (HMAC-SHA256, hex):' }
  });
  var section = document.getElementById('identity');
  var secretBox = document.getElementById('id-secret');
  var examples = document.getElementById('id-examples');
  var require = document.getElementById('id-require');
  var status = document.getElementById('id-status');
  var business = boot.business_id;

  function show(data) {
    secretBox.textContent = data.secret;
    require.checked = !!data.require_signed;
    examples.textContent =
      "// PHP\n$visiter_sign = hash_hmac('sha256', $visiter_id, '" + data.secret + "');\n\n" +
      "# Python\nimport hashlib, hmac\nvisiter_sign = hmac.new(b'" + data.secret +
      "', visiter_id.encode(), hashlib.sha256).hexdigest()\n\n" +
      "// Node\nconst visiterSign = require('crypto').createHmac('sha256', '" + data.secret +
      "').update(visiterId).digest('hex');";
    section.hidden = false;
  }
  function load() {
    P.call('GET', '/admin/manager/identity', { business_id: business }).then(show).catch(function () {});
  }
  document.getElementById('id-regen').addEventListener('click', function () {
    if (!window.confirm(t('id.regenConfirm'))) { return; }
    P.call('POST', '/admin/manager/identity', { business_id: business, regenerate: 1 }).then(function (d) {
      show(d); status.textContent = t('id.regenerated');
    }).catch(function () {});
  });
  require.addEventListener('change', function () {
    P.call('POST', '/admin/manager/identity', { business_id: business, require_signed: require.checked ? 1 : 0 })
      .then(function (d) { show(d); status.textContent = t('id.saved'); })
      .catch(function () { require.checked = !require.checked; });
  });
  var biz = document.getElementById('biz');
  if (biz) { biz.addEventListener('change', function () { business = biz.value; status.textContent = ''; load(); }); }
  Wolive.i18n.apply(section);
  Wolive.i18n.onChange(function () { Wolive.i18n.apply(section); status.textContent = ''; });
  load();
})();
