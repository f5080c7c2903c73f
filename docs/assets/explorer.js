/* MLLM Safety Atlas: the papers explorer (papers/index.md). Plain JavaScript, no dependency.
   Facet checkboxes filter the table's rows (any value within a facet, every facet at once); the count beside
   a value is the number of rows shown if it were ticked, given the other facets. The filter state is kept in
   the query string (?category=attack&model=llava-1.5-7b&q=text) with history.replaceState, so a link can be
   shared and reloads to the same view. Catalog strings reach the page only as text (textContent). */
(function () {
  "use strict";

  function initExplorer(root) {
    if (root.getAttribute("data-atlas-ready")) return;
    root.setAttribute("data-atlas-ready", "1");
    var form = root.querySelector("form.atlas-facets");
    var body = root.querySelector("table tbody");
    if (!form || !body) return;
    var rows = Array.prototype.slice.call(body.rows);
    var data = rows.map(function (r) {
      var f = {};
      try { f = JSON.parse(r.getAttribute("data-f") || "{}"); } catch (e) { f = {}; }
      return { facets: f, text: r.textContent.toLowerCase() };
    });
    var boxes = Array.prototype.slice.call(form.querySelectorAll("input[type=checkbox]"));
    var keys = [];
    boxes.forEach(function (b) { if (keys.indexOf(b.name) === -1) keys.push(b.name); });
    var q = form.querySelector("input[name=q]");
    var count = root.querySelector(".atlas-count");

    function selected() {
      var sel = {};
      boxes.forEach(function (b) {
        if (b.checked) (sel[b.name] = sel[b.name] || []).push(b.value);
      });
      return sel;
    }

    function matchesFacet(d, key, values) {
      if (!values || !values.length) return true;
      var have = d.facets[key] || [];
      for (var i = 0; i < values.length; i++) if (have.indexOf(values[i]) !== -1) return true;
      return false;
    }

    function matchesText(d, terms) {
      for (var i = 0; i < terms.length; i++) if (d.text.indexOf(terms[i]) === -1) return false;
      return true;
    }

    function writeUrl(sel, text) {
      var params = new URLSearchParams();
      keys.forEach(function (k) { (sel[k] || []).forEach(function (v) { params.append(k, v); }); });
      if (text) params.set("q", text);
      var qs = params.toString();
      var url = window.location.pathname + (qs ? "?" + qs : "") + window.location.hash;
      if (url !== window.location.pathname + window.location.search + window.location.hash) {
        window.history.replaceState(null, "", url);
      }
    }

    function update(fromUrl) {
      var sel = selected();
      var text = (q && q.value || "").trim();
      var terms = text.toLowerCase().split(/\s+/).filter(Boolean);
      // rows passing the text filter and each facet, computed once per facet
      var passText = data.map(function (d) { return matchesText(d, terms); });
      var pass = {};
      keys.forEach(function (k) { pass[k] = data.map(function (d) { return matchesFacet(d, k, sel[k]); }); });
      var shown = 0;
      rows.forEach(function (row, i) {
        var ok = passText[i] && keys.every(function (k) { return pass[k][i]; });
        row.hidden = !ok;
        if (ok) shown += 1;
      });
      // the count of a value: rows passing text and every other facet, having that value
      var counts = {};
      keys.forEach(function (k) {
        var c = counts[k] = {};
        data.forEach(function (d, i) {
          if (!passText[i]) return;
          for (var j = 0; j < keys.length; j++) if (keys[j] !== k && !pass[keys[j]][i]) return;
          (d.facets[k] || []).forEach(function (v) { c[v] = (c[v] || 0) + 1; });
        });
      });
      boxes.forEach(function (b) {
        var n = counts[b.name][b.value] || 0;
        var label = b.parentNode;
        label.querySelector("[data-n]").textContent = String(n);
        label.classList.toggle("atlas-facet--empty", n === 0 && !b.checked);
      });
      Array.prototype.forEach.call(form.querySelectorAll("details.atlas-facet"), function (det) {
        var k = det.getAttribute("data-facet");
        var m = (sel[k] || []).length;
        det.querySelector(".atlas-facet__sel").textContent = m ? "(" + m + ")" : "";
        if (m) det.open = true;
      });
      if (count) count.textContent = shown + " of " + rows.length + " papers";
      if (!fromUrl) writeUrl(sel, text);
    }

    function readUrl() {
      var params = new URLSearchParams(window.location.search);
      boxes.forEach(function (b) { b.checked = params.getAll(b.name).indexOf(b.value) !== -1; });
      if (q) q.value = params.get("q") || "";
    }

    form.hidden = false;
    root.classList.add("atlas-explorer--live");
    form.addEventListener("change", function () { update(false); });
    if (q) q.addEventListener("input", function () { update(false); });
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    form.querySelector(".atlas-clear").addEventListener("click", function () {
      boxes.forEach(function (b) { b.checked = false; });
      if (q) q.value = "";
      update(false);
      if (q) q.focus();
    });
    var share = form.querySelector(".atlas-share");
    share.addEventListener("click", function () {
      if (window.atlasCopyText) window.atlasCopyText(window.location.href, share);
    });
    readUrl();
    update(true);
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-atlas-explorer]"), initExplorer);
  }

  if (typeof window.document$ !== "undefined" && window.document$.subscribe) {
    window.document$.subscribe(init);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
