/* wolive: let the original WoLive's client snippet (written for pusher-js 4) run on
 * pusher-js 8. pusher-js 8 throws without `cluster` and reads `forceTLS`, not `encrypted`;
 * the snippet gives `encrypted` and no cluster. Nothing else changes. */
(function (root) {
  var Original = root.Pusher;
  if (!Original || Original.__woliveCompat) { return; }
  function fix(options) {
    var o = {};
    for (var k in (options || {})) { o[k] = options[k]; }
    if (o.cluster == null) { o.cluster = 'mt1'; }
    if (o.forceTLS == null && 'encrypted' in o) { o.forceTLS = !!o.encrypted; }
    if (o.forceTLS == null && o.wsHost && root.location && root.location.protocol !== 'https:') {
      o.forceTLS = false;
    }
    return o;
  }
  var Compat = function (key, options) { return new Original(key, fix(options)); };
  Compat.prototype = Original.prototype;
  ['logToConsole', 'log'].forEach(function (name) {
    Object.defineProperty(Compat, name, {
      get: function () { return Original[name]; },
      set: function (v) { Original[name] = v; }
    });
  });
  for (var s in Original) {
    if (!(s in Compat)) { Compat[s] = Original[s]; }
  }
  Compat.__woliveCompat = true;
  Compat.Original = Original;
  root.Pusher = Compat;
})(typeof window !== 'undefined' ? window : self);
