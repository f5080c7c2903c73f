/* MLLM Safety Atlas: sortable + filterable paper tables and the BibTeX copy button.
   Plain JavaScript, no dependency, nothing loaded from the network. Works with and without Material's
   instant navigation (document$ is Material's page-load observable). */
(function () {
  "use strict";

  function cellValue(row, index) {
    var cell = row.cells[index];
    if (!cell) return "";
    return (cell.getAttribute("data-sort") || cell.textContent || "").trim().toLowerCase();
  }

  function initTable(wrap) {
    if (wrap.getAttribute("data-atlas-ready")) return;
    wrap.setAttribute("data-atlas-ready", "1");
    var table = wrap.querySelector("table");
    var body = table && table.tBodies[0];
    if (!body) return;
    var input = wrap.querySelector(".atlas-filter-input");
    var count = wrap.querySelector(".atlas-count");
    var rows = Array.prototype.slice.call(body.rows);
    var texts = rows.map(function (r) { return r.textContent.toLowerCase(); });

    function update() {
      var terms = (input && input.value || "").toLowerCase().split(/\s+/).filter(Boolean);
      var shown = 0;
      rows.forEach(function (row, i) {
        var ok = terms.every(function (t) { return texts[i].indexOf(t) !== -1; });
        row.hidden = !ok;
        if (ok) shown += 1;
      });
      if (count) count.textContent = shown + " of " + rows.length + " papers";
    }

    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, index) {
      th.setAttribute("tabindex", "0");
      th.setAttribute("role", "columnheader");
      function sort() {
        var asc = th.getAttribute("aria-sort") !== "ascending";
        Array.prototype.forEach.call(th.parentNode.cells, function (c) { c.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", asc ? "ascending" : "descending");
        var order = rows.map(function (r, i) { return [cellValue(r, index), i]; });
        order.sort(function (a, b) {
          var cmp = a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] - b[1];
          return asc ? cmp : -cmp;
        });
        var frag = document.createDocumentFragment();
        order.forEach(function (pair) { frag.appendChild(rows[pair[1]]); });
        body.appendChild(frag);
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sort(); } });
    });
    if (input) {
      input.addEventListener("input", update);
      update();
    }
  }

  function copyText(text, button) {
    function done(ok) {
      var old = button.getAttribute("data-label") || button.textContent;
      button.setAttribute("data-label", old);
      button.textContent = ok ? "Copied" : "Select and copy";
      setTimeout(function () { button.textContent = old; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(function () { done(true); }, function () { done(fallback(text)); });
    } else {
      done(fallback(text));
    }
  }

  function fallback(text) {
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
    document.body.removeChild(area);
    return ok;
  }

  window.atlasCopyText = copyText;

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-atlas-table]"), initTable);
    Array.prototype.forEach.call(document.querySelectorAll("button.atlas-copy"), function (button) {
      if (button.getAttribute("data-atlas-ready")) return;
      button.setAttribute("data-atlas-ready", "1");
      button.addEventListener("click", function () {
        var target = document.getElementById(button.getAttribute("data-copy"));
        if (target) copyText(target.textContent, button);
      });
    });
  }

  if (typeof window.document$ !== "undefined" && window.document$.subscribe) {
    window.document$.subscribe(init);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
