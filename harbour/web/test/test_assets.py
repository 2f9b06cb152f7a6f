"""
Tests of L{harbour.web.assets}: the page's script, run by Node.js in a
document of its own making (the page in a real browser is
C{tests/test_browser.py}'s).

Skipped, saying why, where C{node} is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from harbour.web.assets import SCRIPT

#: Runs the script (given on standard input) in a context with the few
#: parts of a document it uses, answers each of its polls as
#: C{process.argv[1]} (a JSON list) says, and prints what C{#updated}
#: said after each.
HARNESS = r"""
"use strict";
var vm = require("vm");
function Element(tag) {
  this.tagName = tag;
  this.attributes = Object.create(null);
  this.childNodes = [];
  this.text = "";
  this.className = "";
  this.innerHTML = "";
  this.href = "";
}
Object.defineProperty(Element.prototype, "textContent", {
  get: function () {
    return this.text + this.childNodes.map(function (child) { return child.textContent; }).join("");
  },
  set: function (value) { this.text = String(value); this.childNodes = []; }
});
Element.prototype.getAttribute = function (name) {
  return name in this.attributes ? this.attributes[name] : null;
};
Element.prototype.setAttribute = function (name, value) { this.attributes[name] = String(value); };
Element.prototype.removeAttribute = function (name) { delete this.attributes[name]; };
Element.prototype.appendChild = function (child) { this.childNodes.push(child); return child; };
Element.prototype.addEventListener = function () {};

var elements = Object.create(null);
var body = new Element("BODY");
body.setAttribute("data-version", "e.1");
var map = elements.map = new Element("DIV");
map.setAttribute("data-rows", "[]");
elements.hover = new Element("DIV");
elements.updated = new Element("SPAN");
var timers = [], requests = [];
function XMLHttpRequest() { requests.push(this); }
XMLHttpRequest.prototype.open = function (method, url) { this.url = url; };
XMLHttpRequest.prototype.send = function () {};
var context = {
  document: {
    body: body,
    getElementById: function (id) { return elements[id] || (elements[id] = new Element("DIV")); },
    createElement: function (tag) { return new Element(tag.toUpperCase()); }
  },
  window: {setTimeout: function (callback) { timers.push(callback); }},
  performance: performance,
  XMLHttpRequest: XMLHttpRequest
};
vm.runInNewContext(require("fs").readFileSync(0, "utf8"), context);
var said = [];
JSON.parse(process.argv[1]).forEach(function (answer) {
  timers.shift()();
  var request = requests[requests.length - 1];
  if (answer.status === 0) {
    request.onerror();
  } else {
    request.status = answer.status;
    request.statusText = answer.statusText;
    request.responseText = answer.body;
    request.onload();
  }
  request.onloadend();
  var updated = elements.updated;
  said.push({
    className: updated.className,
    text: updated.textContent,
    links: updated.childNodes.filter(function (child) { return child.tagName === "A"; })
      .map(function (child) { return child.href; })
  });
});
process.stdout.write(JSON.stringify(said));
"""

#: A C{/live} answer with nothing new.
NOTHING_NEW = json.dumps({"version": "e.1", "reset": False, "rows": [], "parts": {}})


class ScriptTests(SynchronousTestCase):
    """
    What the page says of a poll of C{/live} that did not bring an update.
    """

    def setUp(self) -> None:
        node = shutil.which("node") or shutil.which("nodejs")
        if node is None:
            raise SkipTest("no Node.js: install Debian's nodejs to run the page's script")
        self.node = node

    def polled(self, *answers: tuple[int, str, str]) -> list[dict[str, Any]]:
        """
        @param answers: The status, its phrase and the body of the answer
            to each poll in turn (status 0: the request failed).
        @return: The class, text and links' addresses of C{#updated} after
            each.
        """
        given = [{"status": status, "statusText": phrase, "body": body} for status, phrase, body in answers]
        done = subprocess.run(
            [self.node, "-e", HARNESS, json.dumps(given)],
            input=SCRIPT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        said: list[dict[str, Any]] = json.loads(done.stdout)
        return said

    def test_sessionExpired(self) -> None:
        """
        A 401 (on a listener needing the token, after the token changed)
        says the session expired, with a link to the page, which now
        shows the login form; polling goes on, and an update after a login
        shows as live again.  (It said "harbour does not answer".)
        """
        expired, live = self.polled((401, "Unauthorized", "<html>log in</html>"), (200, "OK", NOTHING_NEW))
        self.assertEqual(
            expired,
            {
                "className": "stale",
                "text": "not updating: session expired: reload to log in",
                "links": ["./"],
            },
        )
        self.assertEqual(live["className"], "")
        self.assertTrue(live["text"].startswith("live \u00b7 updated "), live)

    def test_otherStatus(self) -> None:
        """
        Another answer than 200 says what harbour answered; a request that
        got no answer says harbour does not answer.
        """
        said = self.polled(
            (500, "Internal Server Error", "cannot render the page\n"),
            (421, "Misdirected Request", "this page answers to localhost"),
            (502, "", ""),
            (0, "", ""),
        )
        self.assertEqual(
            [(each["className"], each["text"]) for each in said],
            [
                ("stale", "not updating: harbour answered 500 Internal Server Error"),
                ("stale", "not updating: harbour answered 421 Misdirected Request"),
                ("stale", "not updating: harbour answered 502"),
                ("stale", "not updating: harbour does not answer"),
            ],
        )
