/* /admin/page/reports: reports for managers (/admin/report/data, docs/api.md "Reports").
 * A date range (last 7 / 30 days or custom), one agent or all (manager and up), totals,
 * two per-day charts (Chart.js, static/assets/libs/chart), a per-agent table and the CSV
 * export (/admin/report/csv with the same range). Every name goes in through textContent. */
(function () {
  'use strict';
  var P = Wolive.page, t = P.t, el = P.el, boot = P.boot;
  Wolive.i18n.add({
    zh: { 'title.reports': '报表 · wolive', 'rp.title': '报表', 'rp.presets': '日期范围',
          'rp.last7': '最近 7 天', 'rp.last30': '最近 30 天', 'rp.from': '从', 'rp.to': '到',
          'rp.agent': '客服', 'rp.allAgents': '全部客服', 'rp.show': '查看', 'rp.csv': '导出 CSV',
          'rp.chartConv': '每日对话', 'rp.chartFirst': '首次响应时间（秒）', 'rp.byAgent': '按客服',
          'rp.conversations': '对话', 'rp.answered': '已接待', 'rp.missed': '留言（未接待）',
          'rp.abandoned': '排队中离开', 'rp.messages': '消息', 'rp.firstResponse': '首次响应',
          'rp.resolution': '解决时长', 'rp.queueWait': '排队等待', 'rp.ratings': '评价',
          'rp.median': '中位数', 'rp.p90': 'P90', 'rp.medianP90': '中位数 / P90',
          'rp.ratingCount': '平均分，共 {n} 条评价', 'rp.noRatings': '暂无评价', 'rp.nobody': '（未接待）',
          'rp.deleted': '（已删除）', 'rp.scopeMine': '只含您自己的对话', 'rp.scopeBiz': '商户 {b}',
          'rp.tz': '按对话开始的日期（服务器时区）计', 'rp.badRange': '请选择开始和结束日期，开始不能晚于结束。', 's': '{n} 秒', 'm': '{m} 分 {s} 秒', 'h': '{h} 小时 {m} 分' },
    en: { 'title.reports': 'Reports · wolive', 'rp.title': 'Reports', 'rp.presets': 'Date range',
          'rp.last7': 'Last 7 days', 'rp.last30': 'Last 30 days', 'rp.from': 'From', 'rp.to': 'To',
          'rp.agent': 'Agent', 'rp.allAgents': 'All agents', 'rp.show': 'Show', 'rp.csv': 'Export CSV',
          'rp.chartConv': 'Conversations per day', 'rp.chartFirst': 'First response time (seconds)',
          'rp.byAgent': 'By agent', 'rp.conversations': 'Conversations', 'rp.answered': 'Answered',
          'rp.missed': 'Missed (left a message)', 'rp.abandoned': 'Left while waiting', 'rp.messages': 'Messages',
          'rp.firstResponse': 'First response', 'rp.resolution': 'Resolution', 'rp.queueWait': 'Queue wait',
          'rp.ratings': 'Ratings', 'rp.median': 'Median', 'rp.p90': 'P90', 'rp.medianP90': 'median / p90',
          'rp.ratingCount': 'average of {n} ratings', 'rp.noRatings': 'No ratings', 'rp.nobody': '(nobody)',
          'rp.deleted': '(deleted)', 'rp.scopeMine': 'Your own conversations only', 'rp.scopeBiz': 'Business {b}',
          'rp.tz': 'By the day a conversation started (server time zone)', 'rp.badRange': 'Pick a start and an end date; the start cannot be after the end.', 's': '{n} s', 'm': '{m} min {s} s',
          'h': '{h} h {m} min' }
  });
  Wolive.i18n.apply(document);

  var form = document.getElementById('range');
  var err = document.getElementById('error');
  var csv = document.getElementById('csv');
  var totalsBox = document.getElementById('totals');
  var table = document.getElementById('agents');
  var scope = document.getElementById('rp-scope');
  var pick = form.elements.service_id || null;
  var charts = {}, data = null, loads = 0;
  var COLORS = { answered: '#0f766e', missed: '#f59e0b', abandoned: '#94a3b8', median: '#0f766e', p90: '#7c3aed' };

  function preset(days) {
    var today = new Date();
    form.elements.to.value = P.ymd(today);
    form.elements.from.value = P.ymd(new Date(today.getFullYear(), today.getMonth(), today.getDate() - (days - 1)));
  }

  function dur(v) {
    if (v === null || v === undefined) { return '—'; }
    var n = Math.round(v);
    if (n < 60) { return t('s', { n: n }); }
    if (n < 3600) { return t('m', { m: Math.floor(n / 60), s: n % 60 }); }
    return t('h', { h: Math.floor(n / 3600), m: Math.floor(n % 3600 / 60) });
  }

  function pair(m) { return dur(m.median) + ' / ' + dur(m.p90); }

  function params() {
    var p = { from: form.elements.from.value, to: form.elements.to.value };
    if (pick && pick.value) { p.service_id = pick.value; }
    return p;
  }

  function stat(label, value, sub) {
    var box = el('div', 'rp-stat');
    box.appendChild(el('div', 'muted small', label));
    box.appendChild(el('div', 'rp-value', String(value)));
    if (sub) { box.appendChild(el('div', 'muted small', sub)); }
    return box;
  }

  function renderTotals() {
    var x = data.totals;
    totalsBox.textContent = '';
    totalsBox.appendChild(stat(t('rp.conversations'), x.conversations));
    totalsBox.appendChild(stat(t('rp.answered'), x.answered));
    totalsBox.appendChild(stat(t('rp.missed'), x.missed, t('rp.abandoned') + ' ' + x.abandoned));
    totalsBox.appendChild(stat(t('rp.messages'), x.messages));
    totalsBox.appendChild(stat(t('rp.firstResponse'), dur(x.first_response.median), t('rp.p90') + ' ' + dur(x.first_response.p90)));
    totalsBox.appendChild(stat(t('rp.resolution'), dur(x.resolution.median), t('rp.p90') + ' ' + dur(x.resolution.p90)));
    totalsBox.appendChild(stat(t('rp.queueWait'), dur(x.queue_wait.median), t('rp.p90') + ' ' + dur(x.queue_wait.p90)));
    totalsBox.appendChild(stat(t('rp.ratings'), x.rating_avg === null ? '—' : x.rating_avg,
                               x.ratings ? t('rp.ratingCount', { n: x.ratings }) : t('rp.noRatings')));
  }

  function chart(id, config) {
    if (charts[id]) { charts[id].destroy(); }
    charts[id] = new window.Chart(document.getElementById(id), config);
  }

  function renderCharts() {
    var labels = data.days.map(function (d) { return d.day.slice(5); });
    var base = { responsive: true, maintainAspectRatio: false, animation: false,
                 plugins: { legend: { position: 'bottom' } } };
    chart('chart-conv', { type: 'bar', data: { labels: labels, datasets: [
      { label: t('rp.answered'), data: data.days.map(function (d) { return d.answered; }), backgroundColor: COLORS.answered },
      { label: t('rp.missed'), data: data.days.map(function (d) { return d.missed; }), backgroundColor: COLORS.missed },
      { label: t('rp.abandoned'), data: data.days.map(function (d) { return d.abandoned; }), backgroundColor: COLORS.abandoned }
    ] }, options: Object.assign({}, base, { scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } }) });
    chart('chart-first', { type: 'line', data: { labels: labels, datasets: [
      { label: t('rp.median'), data: data.days.map(function (d) { return d.first_response.median; }), borderColor: COLORS.median, backgroundColor: COLORS.median, spanGaps: true, tension: 0.2 },
      { label: t('rp.p90'), data: data.days.map(function (d) { return d.first_response.p90; }), borderColor: COLORS.p90, backgroundColor: COLORS.p90, spanGaps: true, tension: 0.2 }
    ] }, options: Object.assign({}, base, { scales: { y: { beginAtZero: true } } }) });
  }

  function renderAgents() {
    table.textContent = '';
    var head = el('tr');
    ['rp.agent', 'rp.conversations', 'rp.answered', 'rp.missed', 'rp.messages', 'rp.firstResponse',
     'rp.resolution', 'rp.queueWait', 'rp.ratings'].forEach(function (k) { head.appendChild(el('th', '', t(k))); });
    var thead = el('thead'); thead.appendChild(head); table.appendChild(thead);
    var sub = el('tr', 'muted small');
    ['', '', '', '', '', t('rp.medianP90'), t('rp.medianP90'), t('rp.medianP90'), ''].forEach(function (s) { sub.appendChild(el('th', '', s)); });
    thead.appendChild(sub);
    var body = el('tbody');
    data.agents.forEach(function (a) {
      if (!a.service_id && !a.conversations) { return; }
      var tr = el('tr');
      tr.dataset.service = a.service_id;
      var name = a.service_id ? (a.nick_name || '#' + a.service_id) + (a.deleted ? ' ' + t('rp.deleted') : '') : t('rp.nobody');
      [name, a.conversations, a.answered, a.missed, a.messages, pair(a.first_response), pair(a.resolution),
       pair(a.queue_wait), a.ratings ? a.rating_avg + ' (' + a.ratings + ')' : '—'].forEach(function (v, i) {
        tr.appendChild(el('td', i ? 'num' : '', String(v)));
      });
      body.appendChild(tr);
    });
    table.appendChild(body);
  }

  function fillAgents() {
    if (!pick || pick.options.length > 1) { return; }
    data.agents.forEach(function (a) {
      if (!a.service_id) { return; }
      var o = el('option', '', a.nick_name || '#' + a.service_id);
      o.value = a.service_id;
      pick.appendChild(o);
    });
  }

  function render() {
    if (!data) { return; }
    scope.textContent = (boot.level === 'service' ? t('rp.scopeMine') : t('rp.scopeBiz', { b: data.business_id })) + ' · ' + t('rp.tz');
    renderTotals(); renderCharts(); renderAgents();
  }

  function load() {
    var p = params();
    if (!p.from || !p.to || p.from > p.to) {
      err.textContent = t('rp.badRange'); err.hidden = false;
      return Promise.resolve();
    }
    csv.href = '/admin/report/csv?' + new URLSearchParams(p).toString();
    return P.call('GET', '/admin/report/data', p, err).then(function (d) {
      data = d; loads += 1;
      fillAgents(); render();
      document.body.dataset.reportLoads = String(loads);
      document.body.dataset.reportRange = d.from + '..' + d.to;
    }).catch(function () {});
  }

  form.querySelectorAll('[data-days]').forEach(function (b) {
    b.addEventListener('click', function () { preset(Number(b.dataset.days)); load(); });
  });
  form.addEventListener('submit', function (ev) { ev.preventDefault(); load(); });
  if (pick) { pick.addEventListener('change', load); }
  Wolive.i18n.onChange(function () { Wolive.i18n.apply(document); render(); });
  preset(7);
  load();
}());
