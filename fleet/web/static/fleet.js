// Live updates for the fleet's pages: one EventSource per page on /live, which follows the store's
// change log. The server sends the re-rendered markup of what changed (same template as the page),
// so this script only swaps elements by their data-live-target and flashes them. No library.

// Date fields: a browser draws <input type="date"> in its own locale's order (an English Chrome shows
// 12/04/2026 for 4 December), so the page says the day beside it as it writes every other date
// (04/12/2026; a month 11/2026), here kept in step while the field is edited (fleet.web.format.page_day).
(function () {
  "use strict";
  function said(value) {
    var parts = value.split("-");
    return parts.length === 2 || parts.length === 3 ? parts.reverse().join("/") : value;
  }
  document.querySelectorAll("input[data-day-said]").forEach(function (field) {
    var output = document.getElementById(field.getAttribute("data-day-said"));
    if (!output) { return; }
    field.addEventListener("input", function () { output.textContent = said(field.value); });
  });
})();

(function () {
  "use strict";
  var root = document.querySelector("[data-live]");
  if (!root || !window.EventSource) { return; }
  var status = document.querySelector(".live-status");

  function say(state) {
    if (!status) { return; }
    status.className = "live-status " + state;
    status.textContent = root.getAttribute("data-live-" + state) || "";
  }

  function swap(target, html) {
    var selector = '[data-live-target="' + CSS.escape(target) + '"]';
    document.querySelectorAll(selector).forEach(function (element) {
      var holder = document.createElement(element.tagName === "TR" ? "tbody" : "div");
      holder.innerHTML = html; // markup rendered and escaped by the server's templates
      var fresh = holder.firstElementChild;
      if (!fresh) { return; }
      element.replaceWith(fresh);
      fresh.classList.add("changed");
      window.setTimeout(function () { fresh.classList.remove("changed"); }, 2100);
    });
  }

  say("connecting");
  var source = new EventSource(root.getAttribute("data-live"));
  source.onopen = function () { say("on"); };
  source.onerror = function () { say("lost"); };
  source.addEventListener("update", function (event) {
    var data = JSON.parse(event.data);
    swap(data.target, data.html);
    root.setAttribute("data-live-last", event.lastEventId);
  });
  source.addEventListener("notice", function (event) {
    var data = JSON.parse(event.data);
    document.querySelectorAll('[data-notice="' + CSS.escape(data.notice) + '"]').forEach(function (element) {
      element.hidden = false;
    });
    root.setAttribute("data-live-last", event.lastEventId);
  });
})();
