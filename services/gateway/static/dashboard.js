// The live dashboard. The gateway pushes every change over Server-Sent Events
// (api/v1/events); where EventSource is missing or the stream fails, it polls the
// same REST paths instead. No framework, no build.
"use strict";
(function () {
  // The seed's alert rule: a cache hit rate below 0.7 pages someone (deploy/prometheus/rules.yml).
  const ALERT_HIT_RATE = 0.7;
  const params = new URLSearchParams(window.location.search);
  const everySeconds = Math.max(0.5, Number(params.get("every")) || 2);
  // ?transport=poll forces polling (what a browser without EventSource gets).
  const forcePoll = params.get("transport") === "poll";
  // Metrics are pushed every second: this long without any event means the stream is stuck.
  const SILENT_MS = 5000;
  const PATHS = {
    events: "api/v1/events",
    snapshot: "api/v1/sectors/snapshot",
    metrics: "api/v1/cache/metrics",
    ready: "readyz",
  };
  // What the heat map shows: the last snapshot, with each sector pushed since.
  const shown = { sectors: new Map(), benchmark: null, asOf: "", cache: null };
  const $ = (id) => document.getElementById(id);

  async function getJson(path) {
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), 10000);
    try {
      const reply = await fetch(new URL(path, document.baseURI), {
        cache: "no-store", headers: { Accept: "application/json" }, signal: controller.signal,
      });
      const body = await reply.json().catch(() => null);
      // /readyz answers 503 with the same JSON when a backend is down: still worth drawing.
      if (!reply.ok && !(path === PATHS.ready && body && body.backends)) {
        const why = body && body.message ? body.message : reply.statusText;
        throw new Error(`${path}: HTTP ${reply.status} ${why}`);
      }
      return body;
    } finally {
      clearTimeout(timer);
    }
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (key === "class") node.className = value;
      else if (key.startsWith("data-")) node.setAttribute(key, value);
      else node[key] = value;
    }
    for (const child of children) node.append(child);
    return node;
  }

  function pct(value) {
    const n = Number(value) || 0;
    return `${n > 0 ? "+" : ""}${n.toFixed(2)}%`;
  }

  function bytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let v = Number(n) || 0;
    let i = 0;
    while (v >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return `${v.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function count(n) {
    return (Number(n) || 0).toLocaleString("en-US");
  }

  function showError(id, error) {
    const node = $(id);
    node.hidden = !error;
    node.textContent = error ? String(error.message || error) : "";
  }

  // Green for gains, red for losses; full strength at 3% either way.
  function tileColor(change) {
    const strength = Math.min(Math.abs(change) / 3, 1);
    const light = 92 - strength * 52;
    const hue = change >= 0 ? 135 : 2;
    return { background: `hsl(${hue}, 58%, ${light}%)`, strong: light < 58 };
  }

  function takeSnapshot(snapshot) {
    shown.sectors = new Map((snapshot.sectors || []).map((s) => [s.symbol, s]));
    shown.benchmark = snapshot.benchmark || null;
    shown.asOf = snapshot.asOf || "";
    shown.cache = snapshot.cache || null;
    drawSectors();
  }

  function takeSector(update) {
    const sector = update.sector;
    if (!sector) return;
    if (shown.benchmark && shown.benchmark.symbol === update.symbol) {
      shown.benchmark = sector;
    } else {
      // Keeps the snapshot's rank: a stored sector has none of its own.
      const before = shown.sectors.get(update.symbol);
      shown.sectors.set(update.symbol, { ...sector, rank: sector.rank || (before && before.rank) });
    }
    if (sector.asOf && sector.asOf > shown.asOf) shown.asOf = sector.asOf;
    drawSectors();
  }

  function drawSectors() {
    const snapshot = { benchmark: shown.benchmark, asOf: shown.asOf, cache: shown.cache };
    const sectors = [...shown.sectors.values()].sort(
      (a, b) => (b.changePercent || 0) - (a.changePercent || 0));
    const list = $("heatmap");
    list.replaceChildren(...sectors.map((s, i) => {
      const color = tileColor(Number(s.changePercent) || 0);
      const tile = el("li", {
        class: `tile${color.strong ? " strong" : ""}`,
        "data-symbol": s.symbol,
        "data-change": String(s.changePercent),
        "data-position": String(i + 1),
        title: `${s.symbol} ${s.name}: ${pct(s.changePercent)} today, price ${s.price}, ` +
          `1-month rank ${s.rank}, ${s.trend}`,
      },
      el("span", { class: "sym" }, s.symbol),
      el("span", { class: "pos" }, `#${i + 1}`),
      el("span", { class: "name" }, s.name || ""),
      el("span", { class: "chg" }, pct(s.changePercent)));
      tile.style.background = color.background;
      return tile;
    }));
    const bench = snapshot.benchmark && snapshot.benchmark.symbol
      ? `${snapshot.benchmark.symbol} ${pct(snapshot.benchmark.changePercent)} · ` : "";
    // RFC 3339 with nanoseconds from protojson; minutes are what a reader needs.
    const asOf = snapshot.asOf ? `as of ${snapshot.asOf.slice(0, 16).replace("T", " ")} UTC` : "";
    const cache = snapshot.cache ? (snapshot.cache.cached ? " · from the cache" : " · fresh") : "";
    $("sectors-meta").textContent =
      `${sectors.length} sectors, best day first · ${bench}${asOf}${cache}`;
  }

  function drawHitRate(metrics) {
    const hits = Number(metrics.hits) || 0;
    const misses = Number(metrics.misses) || 0;
    const rate = Number(metrics.hitRate) || 0;
    const reads = hits + misses;
    $("hit-rate").textContent = reads ? `${(rate * 100).toFixed(1)}%` : "–";
    $("hit-fill").style.width = `${Math.round(rate * 1000) / 10}%`;
    const gauge = $("hit-gauge");
    gauge.setAttribute("aria-valuenow", String(rate));
    gauge.classList.toggle("below", reads > 0 && rate < ALERT_HIT_RATE);
    const status = $("hit-status");
    if (!reads) {
      status.className = "hit-status idle";
      status.textContent = "no reads yet";
    } else if (rate < ALERT_HIT_RATE) {
      status.className = "hit-status below";
      status.textContent = `below the ${ALERT_HIT_RATE} alert line`;
    } else {
      status.className = "hit-status above";
      status.textContent = `above the ${ALERT_HIT_RATE} alert line`;
    }
    $("hits").textContent = count(hits);
    $("misses").textContent = count(misses);
    $("keys").textContent = count(metrics.keys);
    $("memory").textContent = bytes(metrics.memoryBytes);
  }

  function drawPrefixes(metrics) {
    const detail = metrics.metrics || {};
    const prefixes = [...(detail.prefixes || [])].sort(
      (a, b) => (b.keys || 0) - (a.keys || 0) || String(a.prefix).localeCompare(String(b.prefix)));
    const most = Math.max(1, ...prefixes.map((p) => Number(p.keys) || 0));
    const body = $("prefixes").tBodies[0];
    body.replaceChildren(...prefixes.map((p) => {
      const memory = Number(p.memoryBytes) || 0;
      const bar = el("div", { class: "share" });
      bar.style.width = `${((Number(p.keys) || 0) / most) * 100}%`;
      const reads = (Number(p.hits) || 0) + (Number(p.misses) || 0);
      return el("tr", {
        "data-prefix": p.prefix, "data-keys": String(Number(p.keys) || 0), "data-memory": String(memory),
      },
        el("td", {}, el("code", {}, p.prefix)),
        el("td", { class: "num keys" }, count(p.keys)),
        el("td", { class: "share-cell" }, bar),
        el("td", { class: "num" }, count(p.hits)),
        el("td", { class: "num" }, count(p.misses)),
        el("td", { class: "num" }, reads ? `${((Number(p.hitRate) || 0) * 100).toFixed(1)}%` : "–"),
        el("td", { class: "num memory" }, bytes(memory)));
    }));
    if (!prefixes.length) {
      body.append(el("tr", {}, el("td", { colSpan: 7, class: "muted" }, "no keys yet")));
    }
    // Per prefix: committed entries in the cache's memory (one LRU over every prefix).
    // The total also counts writes not yet committed.
    const max = Number(detail.maxMemoryBytes) || 0;
    $("memory-note").textContent =
      `memory, all prefixes: ${bytes(metrics.memoryBytes)}` +
      (max ? ` of ${bytes(max)} (${((Number(metrics.memoryBytes) / max) * 100).toFixed(1)}%)` : "") +
      ` · evictions ${count(detail.evictions)} · expired ${count(detail.expired)}`;
  }

  function drawBackends(ready) {
    const entries = Object.entries(ready.backends || {}).sort(([a], [b]) => a.localeCompare(b));
    $("backends").replaceChildren(...entries.map(([service, info]) => {
      const up = info.status === "SERVING";
      return el("li", { "data-service": service, "data-status": up ? "up" : "down" },
        el("span", { class: "svc" }, service.replace(/^marketcache\.v1\./, "")),
        el("span", { class: "addr" }, info.address),
        el("span", { class: `badge ${up ? "up" : "down"}` }, info.status));
    }));
  }

  function drawn() {
    document.body.dataset.updates = String(Number(document.body.dataset.updates) + 1);
  }

  async function refresh() {
    const [snapshot, metrics, ready] = await Promise.allSettled(
      [getJson(PATHS.snapshot), getJson(PATHS.metrics), getJson(PATHS.ready)]);
    if (snapshot.status === "fulfilled") takeSnapshot(snapshot.value);
    if (metrics.status === "fulfilled") { drawHitRate(metrics.value); drawPrefixes(metrics.value); }
    if (ready.status === "fulfilled") drawBackends(ready.value);
    showError("sectors-error", snapshot.reason);
    showError("cache-error", metrics.reason);
    showError("backends-error", ready.reason);
    const failed = [snapshot, metrics, ready].some((r) => r.status === "rejected");
    const live = $("live");
    live.className = `badge ${failed ? "stale" : "up"}`;
    live.textContent = failed ? "partly stale" : "live";
    $("updated").textContent =
      `updated ${new Date().toLocaleTimeString()} · polling every ${everySeconds}s`;
    drawn();
  }

  async function poll() {
    try {
      await refresh();
    } catch (error) {
      $("live").className = "badge error";
      $("live").textContent = "error";
    }
    // The next round starts after this one ends, so a slow gateway never gets a pile-up.
    setTimeout(poll, everySeconds * 1000);
  }

  function startPolling(why) {
    if (document.body.dataset.transport === "polling") return;
    document.body.dataset.transport = "polling";
    document.body.dataset.fallback = why;
    poll();
  }

  // Pushed updates: each event redraws its part. EventSource reconnects by itself
  // (the gateway sends the whole state again); a stream that closes for good or
  // stays silent hands over to polling.
  function listen() {
    const source = new EventSource(new URL(PATHS.events, document.baseURI));
    document.body.dataset.transport = "events";
    let watchdog = null;
    const live = $("live");
    const giveUp = (why) => {
      source.close();
      clearTimeout(watchdog);
      live.className = "badge stale";
      live.textContent = "polling";
      startPolling(why);
    };
    const alive = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => giveUp("silent"), SILENT_MS);
    };
    const on = (kind, draw) => source.addEventListener(kind, (message) => {
      alive();
      draw(JSON.parse(message.data));
      $("updated").textContent = `updated ${new Date().toLocaleTimeString()} · pushed`;
      drawn();
    });
    on("snapshot", (snapshot) => { takeSnapshot(snapshot); showError("sectors-error", null); });
    on("sector", takeSector);
    on("metrics", (metrics) => {
      drawHitRate(metrics);
      drawPrefixes(metrics);
      showError("cache-error", null);
    });
    on("backends", (ready) => { drawBackends(ready); showError("backends-error", null); });
    on("unavailable", (problem) => {
      const where = { metrics: "cache-error", snapshot: "sectors-error", sector: "sectors-error" }[problem.part];
      showError(where || "backends-error", new Error(problem.message));
    });
    source.addEventListener("open", () => {
      alive();
      live.className = "badge up";
      live.textContent = "live";
    });
    source.addEventListener("error", () => {
      if (source.readyState === EventSource.CLOSED) {
        giveUp("closed");
      } else {
        live.className = "badge stale";
        live.textContent = "reconnecting…";
      }
    });
  }

  if (forcePoll || typeof window.EventSource !== "function") {
    startPolling(forcePoll ? "asked" : "no EventSource");
  } else {
    listen();
  }
})();
