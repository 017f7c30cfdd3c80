/* /admin/page/agents: the team (manager and up: list, add, edit, delete via /admin/manager/*),
 * and for everyone their own profile, avatar and password. */
(function () {
  'use strict';
  var P = Wolive.page, t = P.t, el = P.el, boot = P.boot;
  var DEFAULT_AVATAR = '/assets/images/admin/avatar-admin2.png';
  Wolive.i18n.add({
    zh: { 'ag.title': '客服管理', 'ag.business': '商户', 'ag.add': '添加客服', 'ag.addTitle': '添加客服',
          'ag.editTitle': '编辑客服资料', 'ag.user': '用户名（登录用）', 'ag.userShort': '用户名',
          'ag.nick': '昵称（访客看到的名字）', 'ag.pass': '密码（至少 8 位）', 'ag.pass2': '确认密码',
          'ag.phone': '电话', 'ag.email': '邮箱', 'ag.level': '级别', 'ag.agent': '客服', 'ag.contact': '联系方式',
          'ag.state': '状态', 'ag.online': '在线', 'ag.offline': '离线', 'ag.you': '（我）',
          'ag.added': '已添加客服 {name}', 'ag.mine': '我的资料', 'ag.upload': '更换头像',
          'ag.uploaded': '头像已上传，点“保存”生效', 'ag.pwTitle': '修改密码', 'ag.old': '当前密码',
          'ag.new': '新密码（至少 8 位）', 'ag.new2': '确认新密码', 'ag.pwSave': '修改密码',
          'ag.pwNote': '修改后，您在其他设备上的登录会失效。', 'ag.pwDone': '密码已修改',
          'ag.confirmDel': '删除客服“{name}”？他正在接待的访客会回到排队中。',
          'lv.service': '客服', 'lv.manager': '管理员', 'lv.super_manager': '超级管理员' },
    en: { 'ag.title': 'Agents', 'ag.business': 'Business', 'ag.add': 'Add an agent', 'ag.addTitle': 'Add an agent',
          'ag.editTitle': 'Edit agent', 'ag.user': 'User name (to log in)', 'ag.userShort': 'User name',
          'ag.nick': 'Nick name (visitors see it)', 'ag.pass': 'Password (8 or more)', 'ag.pass2': 'Password again',
          'ag.phone': 'Phone', 'ag.email': 'Email', 'ag.level': 'Level', 'ag.agent': 'Agent', 'ag.contact': 'Contact',
          'ag.state': 'State', 'ag.online': 'Online', 'ag.offline': 'Offline', 'ag.you': ' (me)',
          'ag.added': 'Agent {name} added', 'ag.mine': 'My profile', 'ag.upload': 'Change picture',
          'ag.uploaded': 'Picture uploaded: press Save to use it', 'ag.pwTitle': 'Change password', 'ag.old': 'Current password',
          'ag.new': 'New password (8 or more)', 'ag.new2': 'New password again', 'ag.pwSave': 'Change password',
          'ag.pwNote': 'Your sessions on other devices end when you change it.', 'ag.pwDone': 'Password changed',
          'ag.confirmDel': 'Delete agent “{name}”? The visitors they are serving go back to the queue.',
          'lv.service': 'Agent', 'lv.manager': 'Manager', 'lv.super_manager': 'Super manager' }
  });
  Wolive.i18n.apply(document);

  function values(form, names) {
    var out = {};
    names.forEach(function (k) { if (form.elements[k]) { out[k] = form.elements[k].value.trim(); } });
    return out;
  }

  // ---- my profile ----
  var me = boot.me || {};
  var meForm = document.getElementById('me-form');
  var meAvatar = document.getElementById('me-avatar');
  ['user_name', 'nick_name', 'phone', 'email'].forEach(function (k) { meForm.elements[k].value = me[k] || ''; });
  var avatar = me.avatar || '';
  meAvatar.src = avatar || DEFAULT_AVATAR;
  document.getElementById('avatar-file').addEventListener('change', function (e) {
    var file = e.target.files[0];
    if (!file) { return; }
    var fd = new FormData();
    fd.append('img_head', file);
    fetch('/admin/manager/uploadpic', { method: 'POST', body: fd, credentials: 'same-origin',
      headers: { 'X-XSRFToken': Wolive.cookie('_xsrf') } })
      .then(function (r) { return r.json(); })
      .then(function (r) {
        if (r.code !== 0 || !/^\/upload\//.test(String(r.data))) { throw new Error(r.msg); }
        avatar = r.data; meAvatar.src = avatar; P.toast(t('ag.uploaded'));
      })
      .catch(function (err) { P.toast(t('c.error', { msg: err.message || '' }), true); });
    e.target.value = '';
  });
  meForm.addEventListener('submit', function (e) {
    e.preventDefault();
    var params = values(meForm, ['user_name', 'nick_name', 'phone', 'email']);
    params.avatar = avatar;
    P.call('POST', '/admin/manager/update', params, document.getElementById('me-error')).then(function (row) {
      P.toast(t('c.saved'));
      var name = document.getElementById('me-name');
      if (name && row) { name.textContent = row.nick_name; }
      var img = document.querySelector('.topbar .me img');
      if (img && row) { img.src = row.avatar || DEFAULT_AVATAR; }
      load();
    }).catch(function () {});
  });

  var pwForm = document.getElementById('pw-form');
  pwForm.addEventListener('submit', function (e) {
    e.preventDefault();
    P.call('POST', '/admin/manager/modify', values(pwForm, ['oldpass', 'newpass', 'newpass2']),
      document.getElementById('pw-error')).then(function () {
      P.toast(t('ag.pwDone')); pwForm.reset();
    }).catch(function () {});
  });

  // ---- the team (manager and up) ----
  if (!P.atLeast('manager')) { return; }
  var rows = document.getElementById('rows');
  var form = document.getElementById('agent-form');
  var formErr = document.getElementById('form-error');
  var title = document.getElementById('form-title');
  var business = boot.business_id;
  var editing = 0;
  var data = [];

  function openForm(agent) {
    form.reset();
    formErr.hidden = true;
    editing = agent ? agent.service_id : 0;
    title.setAttribute('data-i18n', agent ? 'ag.editTitle' : 'ag.addTitle');
    title.textContent = t(agent ? 'ag.editTitle' : 'ag.addTitle');
    form.querySelectorAll('.pw, .lv').forEach(function (l) {
      l.hidden = !!agent;
      var i = l.querySelector('input'); if (i) { i.required = !agent; }
    });
    if (agent) {
      ['user_name', 'nick_name', 'phone', 'email'].forEach(function (k) { form.elements[k].value = agent[k] || ''; });
    }
    form.hidden = false;
    form.elements.user_name.focus();
  }
  document.getElementById('add-open').addEventListener('click', function () { openForm(null); });
  document.getElementById('form-cancel').addEventListener('click', function () { form.hidden = true; });
  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var params, url;
    if (editing) {
      url = '/admin/manager/update';
      params = values(form, ['user_name', 'nick_name', 'phone', 'email']);
      params.service_id = editing;
    } else {
      url = '/admin/manager/registForService';
      params = values(form, ['user_name', 'nick_name', 'password', 'password2', 'phone', 'email', 'level']);
      params.password = form.elements.password.value;
      params.password2 = form.elements.password2.value;
      if (boot.level === 'super_manager') { params.business_id = business; }
    }
    P.call('POST', url, params, formErr).then(function (row) {
      P.toast(editing ? t('c.saved') : t('ag.added', { name: row.nick_name || row.user_name }));
      form.hidden = true; form.reset(); load();
    }).catch(function () {});
  });

  function render() {
    rows.textContent = '';
    data.forEach(function (a) {
      var tr = el('tr');
      tr.dataset.service = a.service_id;
      tr.dataset.user = a.user_name;
      var td = el('td');
      var who = el('div', 'who');
      td.appendChild(who);
      var img = el('img', 'avatar'); img.alt = ''; img.src = a.avatar || DEFAULT_AVATAR;
      who.appendChild(img);
      who.appendChild(el('span', 'strong', a.nick_name));
      if (a.service_id === boot.service_id) { who.appendChild(el('span', 'muted', t('ag.you'))); }
      tr.appendChild(td);
      tr.appendChild(el('td', 'mono', a.user_name));
      tr.appendChild(el('td', '', t('lv.' + a.level)));
      var contact = el('td', 'small');
      contact.appendChild(el('div', '', a.phone || ''));
      contact.appendChild(el('div', 'muted', a.email || ''));
      tr.appendChild(contact);
      var online = a.state === 'online';
      var st = el('td');
      st.appendChild(el('span', 'pill ' + (online ? 'ok' : ''), t(online ? 'ag.online' : 'ag.offline')));
      tr.appendChild(st);
      var act = el('td', 'right nowrap');
      var below = P.LEVELS[a.level] < P.LEVELS[boot.level];
      if (below) {
        act.appendChild(P.button('c.edit', '', function () { openForm(a); }));
        act.appendChild(P.button('c.delete', 'danger', function () {
          if (!confirm(t('ag.confirmDel', { name: a.nick_name }))) { return; }
          P.call('POST', '/admin/manager/delete', { service_id: a.service_id }).then(function () {
            P.toast(t('c.deleted')); load();
          }).catch(function () {});
        }));
      }
      tr.appendChild(act);
      rows.appendChild(tr);
    });
  }
  function load() {
    var params = boot.level === 'super_manager' ? { business_id: business } : {};
    return P.call('GET', '/admin/manager/list', params).then(function (d) { data = d || []; render(); })
      .catch(function () {});
  }
  if (boot.level === 'super_manager') {
    P.call('GET', '/admin/business/list', {}).then(function (list) {
      var sel = document.getElementById('biz');
      (list || []).forEach(function (b) {
        var o = el('option', '', b.business_id); o.value = b.business_id;
        if (b.business_id === business) { o.selected = true; }
        sel.appendChild(o);
      });
      document.getElementById('biz-row').hidden = (list || []).length < 2;
      sel.addEventListener('change', function () { business = sel.value; load(); });
    }).catch(function () {});
  }
  Wolive.i18n.onChange(render);
  load();
})();
