/* sqltrack report: sort and filter tables, toggle runs in charts. No library, no network. */
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

  Array.prototype.forEach.call(document.querySelectorAll("svg.chart .legend-item"), function (item) {
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

  /* Markers for the browser test: charts drawn, and how many have no data mark. */
  var charts = document.querySelectorAll("svg.chart");
  var empty = 0;
  Array.prototype.forEach.call(charts, function (c) {
    var box = c.getBBox ? c.getBBox() : {width: 1, height: 1};
    if (c.querySelectorAll(".mark").length === 0 || box.width === 0 || box.height === 0) { empty += 1; }
  });
  root.setAttribute("data-chart-count", String(charts.length));
  root.setAttribute("data-empty-charts", String(empty));
  root.setAttribute("data-report-ready", "ok");
}());
