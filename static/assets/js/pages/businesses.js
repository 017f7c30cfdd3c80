/* /admin/page/businesses (super_manager): list, add with the first manager, open / close. */
(function () {
  'use strict';
  var P = Wolive.page, t = P.t, el = P.el;
  Wolive.i18n.add({
    zh: { 'bz.title': '商户', 'bz.add': '添加商户', 'bz.addTitle': '新商户及其第一位管理员', 'bz.id': '商户 ID',
          'bz.rule': '分配方式', 'bz.user': '管理员用户名', 'bz.nick': '管理员昵称', 'bz.pass': '密码',
          'bz.pass2': '确认密码', 'bz.agents': '客服', 'bz.online': '在线', 'bz.state': '状态',
          'bz.open': '营业中', 'bz.closed': '已停用', 'bz.close': '停用', 'bz.reopen': '启用',
          'bz.added': '商户已添加', 'bz.confirmClose': '停用“{name}”后，它的访客将无法发起对话。确定吗？',
          'rule.auto': '自动分配', 'rule.claim': '客服认领' },
    en: { 'bz.title': 'Businesses', 'bz.add': 'Add a business', 'bz.addTitle': 'A new business and its first manager', 'bz.id': 'Business ID',
          'bz.rule': 'Assignment', 'bz.user': 'Manager user name', 'bz.nick': 'Manager nick name', 'bz.pass': 'Password',
          'bz.pass2': 'Password again', 'bz.agents': 'Agents', 'bz.online': 'Online', 'bz.state': 'State',
          'bz.open': 'Open', 'bz.closed': 'Closed', 'bz.close': 'Close', 'bz.reopen': 'Open',
          'bz.added': 'Business added', 'bz.confirmClose': 'Once “{name}” is closed its visitors cannot start a chat. Close it?',
          'rule.auto': 'Automatic', 'rule.claim': 'Agents claim' }
  });
  Wolive.i18n.apply(document);
  var rows = document.getElementById('rows');
  var form = document.getElementById('add-form');
  var err = document.getElementById('add-error');
  var data = [];

  function render() {
    rows.textContent = '';
    data.forEach(function (b) {
      var tr = el('tr');
      tr.dataset.business = b.business_id;
      tr.appendChild(el('td', 'strong', b.business_id));
      tr.appendChild(el('td', '', t('rule.' + (b.distribution_rule === 'claim' ? 'claim' : 'auto'))));
      tr.appendChild(el('td', 'num', b.agents));
      tr.appendChild(el('td', 'num', b.online));
      var open = b.state !== 'close';
      var st = el('td'); st.appendChild(el('span', 'pill ' + (open ? 'ok' : 'hot'), t(open ? 'bz.open' : 'bz.closed')));
      tr.appendChild(st);
      var act = el('td', 'right');
      act.appendChild(P.button(open ? 'bz.close' : 'bz.reopen', open ? 'danger' : 'btn-main', function () {
        if (open && !confirm(t('bz.confirmClose', { name: b.business_id }))) { return; }
        P.call('POST', '/admin/business/state', { business_id: b.business_id, state: open ? 'close' : 'open' })
          .then(function () { P.toast(t('c.saved')); load(); }).catch(function () {});
      }));
      tr.appendChild(act);
      rows.appendChild(tr);
    });
  }
  function load() {
    return P.call('GET', '/admin/business/list', {}).then(function (d) { data = d || []; render(); })
      .catch(function () {});
  }
  document.getElementById('add-open').addEventListener('click', function () {
    form.hidden = false; form.elements.business_id.focus();
  });
  document.getElementById('add-cancel').addEventListener('click', function () { form.hidden = true; form.reset(); });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var f = form.elements, params = {};
    ['business_id', 'distribution_rule', 'user_name', 'nick_name', 'password', 'password2']
      .forEach(function (k) { params[k] = f[k].value; });
    P.call('POST', '/admin/business/add', params, err).then(function () {
      P.toast(t('bz.added')); form.reset(); form.hidden = true; load();
    }).catch(function () {});
  });
  Wolive.i18n.onChange(render);
  load();
})();
