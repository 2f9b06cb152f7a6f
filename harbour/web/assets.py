"""
The status page's style sheet and script, served by harbour itself so
that the page needs nothing from elsewhere and works offline.
"""

from __future__ import annotations

#: The page's style: light or dark as the reader's system prefers,
#: one column on a phone.
STYLE = """
:root {
  --bg: #f6f8fa; --fg: #1f2328; --muted: #656d76; --card: #ffffff; --line: #d0d7de;
  --D: #2da44e; --R: #8250df; --E: #a0a8b3; --W: #dfe3e8; --F: #cf222e;
  --ok: #2da44e; --idle: #8c959f; --retrying: #bf8700; --behind: #d1560f; --failing: #cf222e;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --fg: #e6edf3; --muted: #8d96a0; --card: #161b22; --line: #30363d;
    --D: #3fb950; --R: #a371f7; --E: #6e7681; --W: #2d333b; --F: #f85149;
  }
}
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  background: var(--bg); color: var(--fg); }
header { display: flex; flex-wrap: wrap; align-items: center; gap: .4rem 1rem; padding: .7rem 1rem;
  background: var(--card); border-bottom: 1px solid var(--line); position: sticky; top: 0; z-index: 2; }
header h1 { font-size: 1.15rem; margin: 0; }
.facts { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; color: var(--muted); }
.facts b { color: var(--fg); font-weight: 600; }
#part-details > div { display: grid; gap: 1rem; min-width: 0; }
#updated { margin-left: auto; color: var(--muted); font-size: .85rem; }
#updated.stale { color: var(--failing); font-weight: 600; }
#updated.stale a { color: inherit; }
main { padding: 1rem; display: grid; gap: 1rem; max-width: 110rem; margin: 0 auto; }
main > * { min-width: 0; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: .8rem 1rem;
  min-width: 0; }
h2 { font-size: 1rem; margin: 0 0 .6rem; }
.problems { margin: 0; padding-left: 1.2rem; color: var(--failing); }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { color: var(--muted); font-weight: 600; font-size: .8rem; text-transform: uppercase;
  letter-spacing: .03em; }
td.n, th.n { text-align: right; }
td.zero { color: var(--muted); }
td.error { white-space: normal; max-width: 32rem; color: var(--muted); font-size: .85rem; }
.badge { display: inline-block; padding: .05rem .55rem; border-radius: 1rem; color: #fff; font-weight: 600;
  font-size: .8rem; background: var(--idle); }
.badge.ok { background: var(--ok); } .badge.retrying { background: var(--retrying); }
.badge.behind { background: var(--behind); } .badge.failing { background: var(--failing); }
.badge.warning { background: var(--retrying); } .badge.critical { background: var(--failing); }
.why { color: var(--muted); font-size: .8rem; display: block; white-space: normal; }
.legend { display: flex; flex-wrap: wrap; gap: .3rem 1rem; margin: 0 0 .6rem; padding: 0; list-style: none;
  color: var(--muted); font-size: .85rem; }
.legend i, #map i { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  vertical-align: -2px; }
.legend i { margin-right: .3rem; }
#map { display: grid; grid-template-columns: minmax(5rem, max-content) 1fr; gap: 3px .7rem;
  align-items: center; }
#map .name { font-size: .85rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
#map .cells { display: flex; gap: 1px; min-width: 0; }
#map .cells.dense { gap: 0; }
#map { overflow-x: auto; }
#map .cells i { flex: 1 1 0; min-width: 1px; max-width: 22px; height: 16px; border-radius: 2px; }
#map .cells i:hover { outline: 2px solid var(--fg); outline-offset: 0; }
.cD { background: var(--D); } .cR { background: var(--R); } .cE { background: var(--E); }
.cW { background: var(--W); } .cF { background: var(--F); }
.cP { background: linear-gradient(to top, var(--D) 50%, var(--W) 50%); }
.c- { background: transparent; }
#hover { margin: .6rem 0 0; color: var(--muted); font-size: .85rem; min-height: 1.3em; }
@media (max-width: 40rem) {
  main { padding: .5rem; }
  #map { grid-template-columns: 1fr; gap: 1px; }
  #map .name { margin-top: .3rem; }
  .hide-narrow { display: none; }
}
"""

#: The page's script: draws the map's cells from each row's compact
#: states, shows a day's counts on hover (or tap), and polls C{live} for
#: what changed.
SCRIPT = """
"use strict";
(function () {
  var NAMES = {D: "downloaded", R: "revised", P: "partly", E: "empty", W: "pending", F: "failed",
    "-": "not asked"};
  var map = document.getElementById("map");
  var hover = document.getElementById("hover");
  var updated = document.getElementById("updated");
  var version = document.body.getAttribute("data-version") || "";
  var interval = Number(document.body.getAttribute("data-poll")) || 2000;
  // By report name: without a prototype, so that a report named
  // constructor or __proto__ is one like any other.
  var rows = Object.create(null);

  function draw(data) {
    var row = rows[data.report];
    if (!row) {
      var name = document.createElement("span");
      name.className = "name";
      name.textContent = data.report;
      name.title = data.report;
      var cells = document.createElement("span");
      cells.setAttribute("data-report", data.report);
      map.appendChild(name);
      map.appendChild(cells);
      row = rows[data.report] = {cells: cells};
    }
    row.data = data;
    // A row is redrawn whole, its range too: it may have grown dense.
    row.cells.className = data.states.length > 400 ? "cells dense" : "cells";
    var states = data.states, html = new Array(states.length);
    for (var i = 0; i !== states.length; i++) {
      html[i] = '<i class="c' + states.charAt(i) + '"></i>';
    }
    row.cells.innerHTML = html.join("");
  }

  function day(first, index) {
    var parts = first.split("-");
    var date = new Date(Date.UTC(+parts[0], +parts[1] - 1, +parts[2] + index));
    return date.toISOString().slice(0, 10);
  }

  function describe(cell) {
    var cells = cell.parentNode, row = rows[cells.getAttribute("data-report")];
    if (!row) { return ""; }
    var index = Array.prototype.indexOf.call(cells.children, cell);
    var state = row.data.states.charAt(index);
    var counts = row.data.counts[String(index)];
    var text = row.data.report + " \\u00b7 " + day(row.data.first, index) + " \\u00b7 " + NAMES[state];
    if (counts) {
      text += " \\u2014 " + counts[0] + " downloaded, " + counts[1] + " empty, " +
        counts[2] + " pending, " + counts[3] + " failed";
    } else if (state !== "-") {
      text += " \\u2014 1 file";
    }
    return text;
  }

  function show(event) {
    var cell = event.target;
    if (cell.tagName !== "I" || !cell.parentNode.getAttribute("data-report")) { return; }
    var text = describe(cell);
    cell.title = text;
    hover.textContent = text;
  }

  function reset(all) {
    map.textContent = "";
    rows = Object.create(null);
    all.forEach(draw);
  }

  function poll() {
    var request = new XMLHttpRequest();
    request.open("GET", "live?since=" + encodeURIComponent(version));
    request.timeout = 10000;
    request.onload = function () {
      // 401: the token changed (and the daemon restarted with it); the
      // page itself now answers with the login form.
      if (request.status === 401) { return expired(); }
      if (request.status !== 200) {
        return stale("harbour answered " + request.status +
          (request.statusText ? " " + request.statusText : ""));
      }
      var answer = JSON.parse(request.responseText);
      Object.keys(answer.parts).forEach(function (name) {
        document.getElementById("part-" + name).innerHTML = answer.parts[name];
      });
      if (answer.reset) { reset(answer.rows); } else { answer.rows.forEach(draw); }
      version = answer.version;
      updated.className = "";
      updated.textContent = "live \\u00b7 updated " + new Date().toLocaleTimeString();
    };
    request.onerror = request.ontimeout = function () { stale("harbour does not answer"); };
    // Polling goes on, after a 401 too: a login in another tab (the
    // cookie is the browser's) brings the page back by itself.
    request.onloadend = function () { window.setTimeout(poll, interval); };
    request.send();
  }

  function stale(why) {
    updated.className = "stale";
    updated.textContent = "not updating: " + why;
  }

  function expired() {
    var login = document.createElement("a");
    login.href = "./";
    login.textContent = "reload to log in";
    updated.className = "stale";
    updated.textContent = "not updating: session expired: ";
    updated.appendChild(login);
  }

  var started = performance.now();
  reset(JSON.parse(map.getAttribute("data-rows")));
  map.removeAttribute("data-rows");
  window.harbourMapMilliseconds = performance.now() - started;
  map.addEventListener("mouseover", show);
  map.addEventListener("click", show);
  window.setTimeout(poll, interval);
})();
"""
