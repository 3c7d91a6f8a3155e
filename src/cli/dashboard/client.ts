// The dashboard's browser script, kept as a string so the page stays one self-contained
// document through bundling. It polls the local dashboard server's /api/* (which adds the
// admin token), builds every element with DOM calls and textContent (no markup from data),
// and keeps a short history per service for the latency sparklines.

export const CLIENT_SCRIPT = String.raw`
"use strict";
(function () {
  var SVGNS = "http://www.w3.org/2000/svg";
  var params = new URLSearchParams(location.search);
  var windowText = params.get("window") || "30s";
  var REFRESH_MS = Math.max(500, Number(params.get("refresh")) || 2000);
  var HISTORY = 60;
  var COLORS = { good: "#2e7d32", warn: "#b26a00", bad: "#c62828", idle: "#9e9e9e" };
  var history = {};

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    return fill(e, attrs, children);
  }
  function svg(tag, attrs, children) {
    var e = document.createElementNS(SVGNS, tag);
    return fill(e, attrs, children);
  }
  function fill(e, attrs, children) {
    Object.keys(attrs || {}).forEach(function (k) {
      if (attrs[k] !== undefined && attrs[k] !== null) e.setAttribute(k, String(attrs[k]));
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" || typeof c === "number" ? document.createTextNode(String(c)) : c);
    });
    return e;
  }
  function $(id) { return document.getElementById(id); }

  function health(success) {
    if (success === null || success === undefined) return "idle";
    return success >= 0.99 ? "good" : success >= 0.95 ? "warn" : "bad";
  }
  function pct(v) { return v === null || v === undefined ? "-" : (v * 100).toFixed(2) + "%"; }
  function rate(v) { return v === null || v === undefined ? "-" : v.toFixed(1); }
  function ms(v) {
    if (v === null || v === undefined) return "-";
    if (v >= 1000) return (v / 1000).toFixed(2) + "s";
    return v >= 10 ? Math.round(v) + "ms" : v.toFixed(1) + "ms";
  }
  function share(m) { return !m || m.share === null ? "-" : Math.round(m.share * 100) + "%"; }
  function until(iso) {
    if (!iso) return "-";
    var d = Date.parse(iso) - Date.now();
    var a = Math.abs(d), h = Math.floor(a / 3600000), m = Math.floor((a % 3600000) / 60000), s = Math.floor((a % 60000) / 1000);
    var text = h > 0 ? h + "h " + m + "m" : m > 0 ? m + "m " + s + "s" : s + "s";
    return d >= 0 ? "in " + text : "expired " + text + " ago";
  }
  function clock(iso) { return iso ? new Date(iso).toLocaleTimeString() : "-"; }
  function slug(s) { return String(s).replace(/[^A-Za-z0-9_.-]/g, "_"); }

  function getJson(path) {
    return fetch(path, { cache: "no-store", headers: { accept: "application/json" } }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.error || "HTTP " + r.status + " from " + path);
        return body;
      });
    });
  }

  function record(stats) {
    var t = Date.parse(stats.time);
    stats.services.forEach(function (s) {
      var h = history[s.name] || (history[s.name] = []);
      h.push({ t: t, p50: s.latencyMs.p50, p99: s.latencyMs.p99, rps: s.rps, success: s.success });
      if (h.length > HISTORY) h.shift();
    });
  }

  // --- topology ----------------------------------------------------------------------

  function topology(stats) {
    var names = stats.services.map(function (s) { return s.name; });
    stats.edges.forEach(function (e) {
      if (names.indexOf(e.from) < 0) names.push(e.from);
      if (names.indexOf(e.to) < 0) names.push(e.to);
    });
    var byName = {};
    stats.services.forEach(function (s) { byName[s.name] = s; });
    // Callers to the left of what they call: longest-path layers, bounded so cycles end.
    var depth = {};
    names.forEach(function (n) { depth[n] = 0; });
    for (var i = 0; i < names.length; i++) {
      stats.edges.forEach(function (e) {
        if (e.from !== e.to && depth[e.to] < depth[e.from] + 1 && depth[e.from] + 1 < names.length) depth[e.to] = depth[e.from] + 1;
      });
    }
    var columns = [];
    names.forEach(function (n) { (columns[depth[n]] = columns[depth[n]] || []).push(n); });
    var pos = {}, COLW = 380, ROWH = 96, W = 160, H = 54;
    var rows = 0;
    columns.forEach(function (col, d) {
      (col || []).forEach(function (n, r) { pos[n] = { x: 110 + d * COLW, y: 60 + r * ROWH }; });
      rows = Math.max(rows, (col || []).length);
    });
    var width = Math.max(640, 220 + (columns.length - 1) * COLW);
    var height = Math.max(120, 24 + rows * ROWH);
    // Drawn at its natural size (never scaled up), shrunk to fit narrow windows.
    var root = svg("svg", { class: "topology", width: width, height: height, viewBox: "0 0 " + width + " " + height, role: "img", "aria-labelledby": "topology-title", "data-testid": "topology" });
    root.appendChild(svg("title", { id: "topology-title" }, ["Service topology: " + names.length + " services, " + stats.edges.length + " edges coloured by success rate"]));
    var defs = svg("defs");
    Object.keys(COLORS).forEach(function (k) {
      defs.appendChild(svg("marker", { id: "arrow-" + k, viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: "auto-start-reverse" }, [
        svg("path", { d: "M 0 0 L 10 5 L 0 10 z", fill: COLORS[k] }),
      ]));
    });
    root.appendChild(defs);
    stats.edges.forEach(function (e) {
      var a = pos[e.from], b = pos[e.to], h = health(e.success);
      if (!a || !b || e.from === e.to) return;
      var x1 = a.x + W / 2, y1 = a.y, x2 = b.x - W / 2 - 2, y2 = b.y;
      if (b.x <= a.x) { x1 = a.x; y1 = a.y + H / 2; x2 = b.x; y2 = b.y - H / 2 - 2; }
      var label = pct(e.success) + " · " + rate(e.rps) + " rps";
      var g = svg("g", {
        "data-testid": "edge-" + slug(e.from) + "-" + slug(e.to), "data-success": e.success === null ? "" : e.success, "data-health": h,
        "data-requests": e.requests, role: "img", "aria-label": e.from + " to " + e.to + ": " + label,
      }, [
        svg("title", {}, [e.from + " → " + e.to + ": success " + pct(e.success) + ", " + rate(e.rps) + " rps, p99 " + ms(e.latencyMs.p99)]),
        svg("line", { x1: x1, y1: y1, x2: x2, y2: y2, stroke: COLORS[h], "stroke-width": 3, "marker-end": "url(#arrow-" + h + ")" }),
        svg("text", { x: (x1 + x2) / 2, y: (y1 + y2) / 2 - 8, "text-anchor": "middle", class: "edge-label", fill: COLORS[h] }, [label]),
      ]);
      root.appendChild(g);
    });
    names.forEach(function (n) {
      var p = pos[n], s = byName[n], h = s ? health(s.success) : "idle";
      var sub = s ? s.meshed + "/" + s.proxies + " meshed · " + pct(s.success) : "not meshed";
      root.appendChild(svg("g", { "data-testid": "node-" + slug(n), "data-health": h }, [
        svg("rect", { x: p.x - W / 2, y: p.y - H / 2, width: W, height: H, rx: 10, fill: "#fff", stroke: COLORS[h], "stroke-width": 2, "stroke-dasharray": s ? null : "5 4" }),
        svg("text", { x: p.x, y: p.y - 4, "text-anchor": "middle", "font-weight": 600 }, [n]),
        svg("text", { x: p.x, y: p.y + 14, "text-anchor": "middle", class: "node-sub" }, [sub]),
      ]));
    });
    return root;
  }

  function sparkline(name) {
    var pts = (history[name] || []).filter(function (p) { return p.p99 !== null || p.p50 !== null; });
    var W = 140, H = 30;
    var root = svg("svg", { class: "spark", width: W, height: H, viewBox: "0 0 " + W + " " + H, role: "img", "data-testid": "spark-" + slug(name), "data-points": pts.length,
      "aria-label": "latency of " + name + " over the last " + pts.length + " refreshes" });
    if (pts.length < 2) return root;
    var max = Math.max.apply(null, pts.map(function (p) { return Math.max(p.p99 || 0, p.p50 || 0); })) || 1;
    function line(key, color) {
      var d = pts.map(function (p, i) {
        var v = p[key] === null ? 0 : p[key];
        return (i * (W - 4) / (pts.length - 1) + 2).toFixed(1) + "," + (H - 3 - (v / max) * (H - 6)).toFixed(1);
      }).join(" ");
      return svg("polyline", { points: d, fill: "none", stroke: color, "stroke-width": 1.5 });
    }
    root.appendChild(line("p99", "#c2185b"));
    root.appendChild(line("p50", "#1565c0"));
    return root;
  }

  // --- tables ------------------------------------------------------------------------

  function table(testid, caption, headers, rows, numeric) {
    if (rows.length === 0) return el("p", { class: "empty", "data-testid": testid }, ["Nothing yet."]);
    return el("table", { "data-testid": testid }, [
      el("caption", { class: "visually-hidden" }, [caption]),
      el("thead", {}, [el("tr", {}, headers.map(function (h, i) { return el("th", { scope: "col", class: numeric.indexOf(i) >= 0 ? "num" : null }, [h]); }))]),
      el("tbody", {}, rows),
    ]);
  }
  function cells(values, numeric) {
    return values.map(function (v, i) {
      return el("td", { class: numeric.indexOf(i) >= 0 ? "num" : null }, [v]);
    });
  }
  function badge(text, kind) { return el("span", { class: "badge " + kind }, [text]); }
  var GOLDEN_NUM = [2, 3, 4, 5, 6, 7, 8, 9];

  function services(stats) {
    var rows = stats.services.map(function (s) {
      var h = health(s.success);
      return el("tr", { "data-testid": "service-" + slug(s.name), "data-success": s.success === null ? "" : s.success }, cells([
        s.name, s.meshed + "/" + s.proxies, el("span", { class: h }, [pct(s.success)]), rate(s.rps), ms(s.latencyMs.p50), ms(s.latencyMs.p95),
        ms(s.latencyMs.p99), String(Math.round(s.retries)), String(s.ejected), share(s.mtls), sparkline(s.name),
      ], GOLDEN_NUM));
    });
    return table("services", "Golden metrics per service", ["Service", "Meshed", "Success", "RPS", "P50", "P95", "P99", "Retries", "Ejected", "mTLS", "Latency (p50 blue, p99 red)"], rows, GOLDEN_NUM);
  }

  function edges(stats) {
    var rows = stats.edges.map(function (e) {
      var h = health(e.success);
      return el("tr", { "data-testid": "edge-row-" + slug(e.from) + "-" + slug(e.to) }, cells([
        e.from + " → " + e.to, el("span", { class: h }, [pct(e.success)]), rate(e.rps), ms(e.latencyMs.p50), ms(e.latencyMs.p95), ms(e.latencyMs.p99),
        String(Math.round(e.retries)), String(e.ejected),
      ], [2, 3, 4, 5, 6, 7]));
    });
    return table("edges", "Golden metrics per edge", ["Edge", "Success", "RPS", "P50", "P95", "P99", "Retries", "Ejected"], rows, [2, 3, 4, 5, 6, 7]);
  }

  function endpointsTable(stats, registry) {
    var rows = [];
    Object.keys(registry).sort().forEach(function (service) {
      registry[service].forEach(function (ep) {
        var ejectedBy = [], total = 0;
        stats.proxies.forEach(function (p) {
          (p.endpoints || []).forEach(function (v) {
            if (v.address === ep.address && v.state === "ejected") ejectedBy.push(p.proxy + (v.ejectedUntil ? " until " + clock(v.ejectedUntil) : ""));
          });
          (p.ejections || []).forEach(function (x) { if (x.endpoint === ep.address) total += x.total; });
        });
        var state = ejectedBy.length > 0 ? badge("ejected", "bad") : badge("healthy", "good");
        rows.push(el("tr", { "data-testid": "endpoint-" + slug(ep.address), "data-state": ejectedBy.length > 0 ? "ejected" : "healthy" }, cells([
          service, ep.address, state, ejectedBy.join(", ") || "-", String(total), ep.proxy, clock(ep.last_seen),
        ], [4])));
      });
    });
    return table("endpoints", "Endpoint health and ejections", ["Service", "Address", "Health", "Ejected by", "Ejections", "Proxy", "Last heartbeat"], rows, [4]);
  }

  function proxiesTable(stats, proxies) {
    var byId = {};
    stats.proxies.forEach(function (p) { byId[p.proxy] = p; });
    var rows = proxies.map(function (p) {
      var s = byId[p.proxy] || {};
      var kind = p.status === "ACK" ? "good" : p.status === "NACK" ? "bad" : "warn";
      var expires = p.cert_not_after || s.certExpiry || null;
      var left = expires ? Date.parse(expires) - Date.now() : null;
      return el("tr", { "data-testid": "proxy-" + slug(p.proxy), "data-status": p.status }, cells([
        p.proxy, p.service, p.runtime || "-", p.config_version || "-", badge(p.status, kind), p.error || "",
        el("span", { class: left === null ? "idle" : left < 3600000 ? "bad" : left < 6 * 3600000 ? "warn" : "good", title: expires || "" }, [until(expires)]),
        s.error ? el("span", { class: "bad", title: s.error }, ["scrape failed"]) : s.scraped ? "ok" : "-",
      ], []));
    });
    return table("proxies", "Proxies: config version, ACK/NACK and certificate expiry", ["Proxy", "Service", "Runtime", "Config", "Status", "Error", "Cert expires", "Metrics"], rows, []);
  }

  function render(stats, proxies, registry) {
    $("topology").replaceChildren(topology(stats), el("div", { class: "legend" }, [
      el("span", { class: "good" }, ["≥ 99% success"]), el("span", { class: "warn" }, ["≥ 95%"]), el("span", { class: "bad" }, ["< 95%"]), el("span", { class: "idle" }, ["no traffic"]),
    ]));
    $("services").replaceChildren(services(stats));
    $("edges").replaceChildren(edges(stats));
    $("endpoints").replaceChildren(endpointsTable(stats, registry));
    $("proxies").replaceChildren(proxiesTable(stats, proxies));
    var u = $("updated");
    u.textContent = "updated " + clock(stats.time) + " · window " + windowText;
    u.setAttribute("data-time", stats.time);
  }

  function tick() {
    Promise.all([getJson("api/stats?window=" + encodeURIComponent(windowText)), getJson("api/proxies"), getJson("api/endpoints")])
      .then(function (r) {
        record(r[0]);
        render(r[0], r[1], r[2]);
        $("error").textContent = "";
      })
      .catch(function (e) { $("error").textContent = "Cannot refresh: " + (e && e.message ? e.message : e); })
      .then(function () { setTimeout(tick, REFRESH_MS); });
  }

  var select = $("window");
  if (![].some.call(select.options, function (o) { return o.value === windowText; })) select.appendChild(el("option", { value: windowText }, [windowText]));
  select.value = windowText;
  select.addEventListener("change", function () {
    windowText = select.value;
    history = {};
    var q = new URLSearchParams(location.search);
    q.set("window", windowText);
    window.history.replaceState(null, "", "?" + q.toString());
  });
  tick();
})();
`;
