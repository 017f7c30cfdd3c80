/* The chat window's identify step (templates/identify.html).
 * The server shows it when another browser owns the asked visiter_id. The site's widget
 * (static/assets/index/kefu_online.js) may have put this browser's token for the visitor in
 * the URL fragment (#vid=…&vt=…): fragments are never sent to a server nor in a Referer.
 * It is posted back to the same URL (a POST body: not in logs, not in the address bar), and
 * the fragment is dropped. Without a token the server gives this browser its own visitor. */
(function () {
  'use strict';
  var form = document.getElementById('identify');
  var vid = '', vt = '';
  try {
    var p = new URLSearchParams((location.hash || '').replace(/^#/, ''));
    vid = p.get('vid') || ''; vt = p.get('vt') || '';
  } catch (e) { /* no token */ }
  var here = location.pathname + location.search;
  try { history.replaceState(null, '', here); } catch (e) { /* keep going */ }
  if (/^[0-9a-f]{64}$/.test(vt) && vid.length <= 200) {
    form.elements.vt_id.value = vid;
    form.elements.vt.value = vt;
  }
  form.action = here;
  form.submit();
})();
