/* sqltrack report: sort and filter tables, toggle runs in charts, redraw the side-by-side
   chart for the runs and metrics the reader picks. No library, no network. */
(function () {
  "use strict";
  var root = document.documentElement;
  window.addEventListener("error", function (e) { root.setAttribute("data-js-error", String(e.message)); });

  function value(cell) {
    var v = cell.getAttribute("data-v");
    return v === null ? cell.textContent.trim() : v;
  }
  function compare(a, b) {
    var x = parseFloat(a), y = parseFloat(b);
    var xn = a !== "" && isFinite(a) && !isNaN(x), yn = b !== "" && isFinite(b) && !isNaN(y);
    if (xn && yn) { return x - y; }
    if (a === "" && b !== "") { return 1; }
    if (b === "" && a !== "") { return -1; }
    return a.localeCompare(b, undefined, {numeric: true});
  }
  function sortBy(table, index, th) {
    var body = table.tBodies[0];
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) { c.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (r1, r2) {
      var a = value(r1.cells[index]), b = value(r2.cells[index]);
      if (a === "" || b === "") { return compare(a, b); }  /* blanks last either way */
      return ascending ? compare(a, b) : compare(b, a);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, i) {
      th.setAttribute("title", "click to sort");
      th.addEventListener("click", function () { sortBy(table, i, th); });
    });
  });

  function applyFilter(table) {
    var text = document.querySelector("[data-filter-text='" + table.id + "']");
    var status = document.querySelector("[data-filter-status='" + table.id + "']");
    var needle = text ? text.value.trim().toLowerCase() : "";
    var wanted = status ? status.value : "";
    var shown = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row) {
      var ok = (!needle || row.textContent.toLowerCase().indexOf(needle) >= 0) &&
               (!wanted || row.getAttribute("data-status") === wanted);
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    var count = document.querySelector("[data-filter-count='" + table.id + "']");
    if (count) { count.textContent = shown + " of " + table.tBodies[0].rows.length + " runs shown"; }
  }
  Array.prototype.forEach.call(document.querySelectorAll("[data-filter-text], [data-filter-status]"), function (el) {
    var id = el.getAttribute("data-filter-text") || el.getAttribute("data-filter-status");
    var table = document.getElementById(id);
    if (table) {
      el.addEventListener("input", function () { applyFilter(table); });
      el.addEventListener("change", function () { applyFilter(table); });
      applyFilter(table);
    }
  });

  function bindLegend(scope) {
    Array.prototype.forEach.call(scope.querySelectorAll("svg.chart .legend-item"), function (item) {
      function toggle() {
        var svg = item.ownerSVGElement;
        var i = item.getAttribute("data-series");
        var off = item.classList.toggle("off");
        Array.prototype.forEach.call(svg.querySelectorAll(".series[data-series='" + i + "']"), function (g) {
          g.classList.toggle("off", off);
        });
      }
      item.addEventListener("click", toggle);
      item.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { toggle(); } });
    });
  }
  bindLegend(document);

  /* The side-by-side chart redraws for the runs ticked in the table and the metrics ticked
     above it; the same geometry as sqltrack/report/svg.py (parallel_coordinates), whose
     constants come in the page's JSON. The pick is kept in the address (#runs=...&metrics=...). */
  var dataEl = document.getElementById("compare-data");
  var compare = dataEl ? JSON.parse(dataEl.textContent) : null;
  var redraws = 0;
  function esc(t) {
    return String(t).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  }
  function fmt(v) {
    if (v === Math.round(v) && Math.abs(v) < 1e15) { return Math.round(v).toLocaleString("en-US"); }
    var a = Math.abs(v);
    var t = (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : v.toPrecision(4);
    return t.indexOf("e") >= 0 ? t.replace(/\.?0+e/, "e") : String(Number(t));
  }
  function cut(t, n) {  /* svg.short_label: a run label keeps what tells it apart */
    if (t.length <= n) { return t; }
    var at = t.indexOf(" \u00b7 "), rest = at >= 0 ? t.slice(at + 3) : "";
    if (at >= 0 && rest.length + 4 < n) { return t.slice(0, n - rest.length - 4) + "\u2026 \u00b7 " + rest; }
    return t.slice(0, n - 1) + "\u2026";
  }
  function drawCompare(runs, axes) {
    var g = compare.geometry, lower = {};
    compare.lower.forEach(function (k) { lower[k] = true; });
    var plot = Math.max(g.width - g.left - g.right - 20, g.gap * Math.max(axes.length - 1, 1));
    var right = g.left + 20 + plot, width = right + g.right + g.legend;
    var bottom = g.height - g.bottom, top = g.top + 18;
    var span = plot / Math.max(axes.length - 1, 1);
    var title = "All metrics of the " + runs.length + " runs picked";
    var out = ['<svg class="chart chart-parallel" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + width + " " + g.height +
      '" width="' + width + '" height="' + g.height + '" role="img" aria-label="' + esc(title) + '" data-kind="parallel" data-redrawn="' + (redraws + 1) + '">',
      "<title>" + esc(title) + "</title>", '<text class="chart-title" x="' + g.left + '" y="18">' + esc(title) + "</text>"];
    var ranges = {};
    axes.forEach(function (a) {
      var vals = runs.map(function (r) { return r.metrics[a]; }).filter(function (v) { return typeof v === "number"; });
      ranges[a] = vals.length ? [Math.min.apply(null, vals), Math.max.apply(null, vals)] : [0, 1];
    });
    function x(i) { return g.left + 10 + i * span; }
    function frac(a, v) {
      var lo = ranges[a][0], hi = ranges[a][1];
      var f = hi === lo ? 0.5 : g.pad + (1 - 2 * g.pad) * (v - lo) / (hi - lo);
      return lower[a] ? 1 - f : f;
    }
    var longest = Math.max.apply(null, axes.map(function (a) { return a.length + (lower[a] ? 2 : 0); }));
    var stagger = longest * g.namePx > span * 0.9;
    var room = Math.max(Math.floor(span * (stagger ? 2 : 1) * 0.9 / g.namePx) - (stagger ? 2 : 0), 5);
    axes.forEach(function (a, i) {
      var lo = ranges[a][0], hi = ranges[a][1], flip = !!lower[a];
      var mark = flip ? " \u2193" : "";
      var name = (a + mark).length <= room ? a + mark : a.slice(0, room - 1 - mark.length) + "\u2026" + mark;
      var labelY = bottom + (stagger && i % 2 ? 46 : 30);
      out.push('<line class="axis" x1="' + x(i).toFixed(1) + '" x2="' + x(i).toFixed(1) + '" y1="' + top + '" y2="' + bottom + '"/>' +
        '<text class="axis-label" x="' + x(i).toFixed(1) + '" y="' + labelY + '" text-anchor="middle" data-key="' + esc(a) + '">' +
        esc(name) + "<title>" + esc(a + " (" + (flip ? "lower" : "higher") + " is better, at the top)") + "</title></text>" +
        '<text class="tick" x="' + x(i).toFixed(1) + '" y="' + (bottom + 15) + '" text-anchor="middle">' + esc(fmt(flip ? hi : lo)) + "</text>" +
        '<text class="tick" x="' + x(i).toFixed(1) + '" y="' + (top - 5) + '" text-anchor="middle">' + esc(fmt(flip ? lo : hi)) + "</text>");
    });
    var seen = {};
    runs.forEach(function (r, i) {
      var color = compare.palette[i % compare.palette.length], coords = [];
      axes.forEach(function (a, j) {
        var v = r.metrics[a];
        if (typeof v === "number") { coords.push(x(j).toFixed(1) + "," + (bottom - frac(a, v) * (bottom - top)).toFixed(1)); }
      });
      if (!coords.length) { return; }
      var key = coords.join(" "), twin = seen[key];
      if (twin === undefined) { seen[key] = r.label; }
      var tip = esc(r.label + ": " + axes.filter(function (a) { return typeof r.metrics[a] === "number"; })
        .map(function (a) { return a + " = " + fmt(r.metrics[a]); }).join(", ") + (twin ? " (the same values as " + twin + ")" : ""));
      out.push('<g class="series' + (twin ? " twin" : "") + '" data-series="' + i + '" data-run-id="' + esc(r.id) + '">');
      if (coords.length === 1) {
        var c = coords[0].split(",");
        out.push('<circle class="mark" cx="' + c[0] + '" cy="' + c[1] + '" r="3" fill="' + color + '"><title>' + tip + "</title></circle>");
      } else {
        out.push('<polyline class="mark" points="' + key + '" fill="none" stroke="' + color + '" stroke-width="2"' +
          (twin ? ' stroke-dasharray="7 5"' : "") + "><title>" + tip + "</title></polyline>");
      }
      out.push("</g>");
    });
    runs.slice(0, 16).forEach(function (r, i) {
      var y = g.top + 6 + i * 17, lx = right + g.right + 4;
      out.push('<g class="legend-item" data-series="' + i + '" tabindex="0"><rect x="' + lx + '" y="' + (y - 9) +
        '" width="12" height="12" fill="' + compare.palette[i % compare.palette.length] + '"/><text x="' + (lx + 17) + '" y="' + (y + 1) + '">' +
        esc(cut(r.label, g.legendChars)) + "</text><title>" + esc(r.label) + " (click to show or hide)</title></g>");
    });
    if (runs.length > 16) { out.push('<text class="tick" x="' + (right + g.right + 4) + '" y="' + (g.top + 6 + 16 * 17) + '">+' + (runs.length - 16) + " more</text>"); }
    out.push("</svg>");
    return out.join("");
  }
  function picked(selector) {
    return Array.prototype.filter.call(document.querySelectorAll(selector), function (b) { return b.checked; })
      .map(function (b) { return b.value; });
  }
  function redrawCompare() {
    var figure = document.querySelector("figure.compare-figure");
    var wantedRuns = {}, wantedAxes = {};
    picked("input.compare-run").forEach(function (id) { wantedRuns[id] = true; });
    picked("input.compare-metric").forEach(function (k) { wantedAxes[k] = true; });
    var runs = compare.runs.filter(function (r) { return wantedRuns[r.id]; });
    var axes = compare.metrics.filter(function (k) {
      return wantedAxes[k] && runs.some(function (r) { return typeof r.metrics[k] === "number"; });
    });
    var ok = runs.length > 0 && axes.length >= 2;
    document.querySelector(".compare-empty").hidden = ok;
    figure.hidden = !ok;
    if (ok) {
      figure.querySelector("svg").outerHTML = drawCompare(runs, axes);
      bindLegend(figure);
    }
    redraws += 1;
    root.setAttribute("data-compare-redraws", String(redraws));
    root.setAttribute("data-compare-runs", String(ok ? runs.length : 0));
    root.setAttribute("data-compare-axes", ok ? axes.join("|") : "");
    var hash = "runs=" + picked("input.compare-run").map(encodeURIComponent).join(",") +
      "&metrics=" + picked("input.compare-metric").map(encodeURIComponent).join(",");
    try { history.replaceState(null, "", "#" + hash); } catch (e) { /* file: URLs in some browsers */ }
  }
  if (compare) {
    Array.prototype.forEach.call(document.querySelectorAll("input.compare-run, input.compare-metric"), function (box) {
      box.addEventListener("change", redrawCompare);
    });
    /* A link with #runs=...&metrics=... opens with that pick: applied by clicking the boxes,
       as a reader would. */
    var want = {};
    location.hash.replace(/^#/, "").split("&").forEach(function (part) {
      var kv = part.split("=");
      if (kv.length === 2 && (kv[0] === "runs" || kv[0] === "metrics")) {
        want[kv[0]] = {};
        kv[1].split(",").filter(Boolean).forEach(function (v) { want[kv[0]][decodeURIComponent(v)] = true; });
      }
    });
    [["runs", "input.compare-run"], ["metrics", "input.compare-metric"]].forEach(function (pair) {
      if (!want[pair[0]]) { return; }
      Array.prototype.forEach.call(document.querySelectorAll(pair[1]), function (box) {
        if (box.checked !== !!want[pair[0]][box.value]) { box.click(); }
      });
    });
  }

  /* Markers for the browser test: charts drawn, how many have no data mark, and how many
     pairs of axis labels overlap on screen. */
  function overlaps(a, b) {
    return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
  }
  var charts = document.querySelectorAll("svg.chart");
  var empty = 0, overlapping = 0, clashes = [];
  Array.prototype.forEach.call(charts, function (c) {
    if (c.closest("[hidden]")) { return; }
    var box = c.getBBox ? c.getBBox() : {width: 1, height: 1};
    if (c.querySelectorAll(".mark").length === 0 || box.width === 0 || box.height === 0) { empty += 1; }
    var texts = c.querySelectorAll("text.category:not([transform]), text.axis-label:not([transform])");
    var labels = Array.prototype.map.call(texts, function (t) { return t.getBBox(); });
    var view = c.viewBox.baseVal;
    labels.forEach(function (b, i) {  /* a label cut by the chart's edge counts too */
      if (b.x < 0 || b.y < 0 || b.x + b.width > view.width || b.y + b.height > view.height) {
        overlapping += 1;
        clashes.push(texts[i].firstChild.nodeValue + " / the chart's edge");
      }
    });
    for (var i = 0; i < labels.length; i += 1) {
      for (var j = i + 1; j < labels.length; j += 1) {
        if (overlaps(labels[i], labels[j])) {
          overlapping += 1;
          clashes.push(texts[i].firstChild.nodeValue + " / " + texts[j].firstChild.nodeValue);
        }
      }
    }
  });
  root.setAttribute("data-chart-count", String(charts.length));
  root.setAttribute("data-empty-charts", String(empty));
  root.setAttribute("data-overlapping-labels", String(overlapping));
  if (clashes.length) { root.setAttribute("data-overlaps", clashes.join(" | ")); }
  var primary = document.querySelector("th.primary");
  if (primary) { root.setAttribute("data-primary-right", String(Math.round(primary.getBoundingClientRect().right))); }
  root.setAttribute("data-report-ready", "ok");
}());
