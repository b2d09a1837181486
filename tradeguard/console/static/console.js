// TradeGuard console: swap in fresh server-rendered fragments every few seconds.
// The server aggregates and samples; this script only asks for what one screen shows.
(function () {
  "use strict";
  var body = document.body;
  var url = body.dataset.fragments;
  var every = Number(body.dataset.refreshMs) || 1000;
  var live = document.getElementById("live");
  var busy = false;
  // Render and fetch timings, read by benchmarks/console.py.
  var stats = (window.tradeguardStats = { fetchMs: [], renderMs: [], updates: 0 });

  function paused() {
    var box = document.getElementById("pause");
    return box && box.checked;
  }

  function status(text, ok) {
    if (!live) return;
    live.textContent = text;
    live.className = ok ? "live ok" : "live down";
  }

  function keep(list, value) {
    list.push(value);
    if (list.length > 500) list.shift();
  }

  async function refresh() {
    if (busy || document.hidden || paused()) return;
    busy = true;
    var t0 = performance.now();
    try {
      var response = await fetch(url, { credentials: "same-origin",
                                        headers: { Accept: "application/json" } });
      if (response.status === 401) { window.location.assign("/login"); return; }
      if (!response.ok) throw new Error("HTTP " + response.status);
      var data = await response.json();
      var t1 = performance.now();
      Object.keys(data.fragments).forEach(function (name) {
        var el = document.querySelector('[data-fragment="' + name + '"]');
        // Leave a fragment alone while the operator is typing in it.
        if (!el || el.contains(document.activeElement)) return;
        el.innerHTML = data.fragments[name];
      });
      keep(stats.fetchMs, t1 - t0);
      keep(stats.renderMs, performance.now() - t1);
      stats.updates += 1;
      status("live " + new Date(data.at).toISOString().slice(11, 19) + "Z", true);
    } catch (err) {
      status("disconnected: " + err.message, false);
    } finally {
      busy = false;
    }
  }

  if (url) {
    window.setInterval(refresh, every);
    status("live", true);
  }
})();
