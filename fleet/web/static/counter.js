// The counter app: the buttons' forms sent with fetch (the answer's markup swapped in), a USB keypad's
// keys mapped to the buttons (data-key), and /counter/live followed for what other counters change.
// Without this script every button is a plain form POST that works the same.
(function () {
  "use strict";
  var root = document.querySelector("[data-counter-live]");
  if (!root) { return; }
  var message = document.getElementById("counter-message");

  // The queue step id each target's markup on screen is at least as new as: a live update that is not
  // newer (the echo of this counter's own action, arriving after the action's answer) is dropped, or it
  // would put an older panel back (seen: the transfer's choice reset to the first service, so the
  // ticket went to the wrong service).
  var shownAt = {};

  // A live update keeps what the officer was choosing in the panel's lists (a transfer's target) when
  // the new markup still offers it; an action's answer draws the panel as the server says.
  function keepChoices(from, to) {
    from.querySelectorAll("select[id]").forEach(function (chosen) {
      var fresh = to.querySelector("#" + CSS.escape(chosen.id));
      if (!fresh || fresh.value === chosen.value) { return; }
      for (var i = 0; i < fresh.options.length; i++) {
        if (fresh.options[i].value === chosen.value) { fresh.value = chosen.value; return; }
      }
    });
  }

  function swap(html, id, live) {
    Object.keys(html).forEach(function (target) {
      if (id >= 0 && shownAt[target] !== undefined && id <= shownAt[target]) { return; }
      var old = document.querySelector('[data-live-target="' + target + '"]');
      if (!old) { return; }
      var holder = document.createElement("div");
      holder.innerHTML = html[target]; // rendered and escaped by the server's templates
      var fresh = holder.firstElementChild;
      if (!fresh) { return; }
      if (live) { keepChoices(old, fresh); }
      old.replaceWith(fresh);
      if (id >= 0) { shownAt[target] = id; }
    });
  }

  function say(text, ok) {
    if (!message) { return; }
    message.hidden = !text;
    message.textContent = text || "";
    message.className = "flash " + (ok ? "ok" : "bad");
  }

  // While an action is in flight its answer will redraw the panel; live updates arriving meanwhile are
  // kept (the newest per target) and applied after the answer when they are newer than it, so a ticket
  // issued during the click is not lost.
  var busy = false;
  var pending = {};
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.closest || !form.closest("[data-live-target]") || !form.hasAttribute("data-action")) { return; }
    event.preventDefault();
    if (busy) { return; }
    busy = true;
    fetch(form.action, {
      method: "POST", body: new FormData(form), credentials: "same-origin",
      headers: { "Accept": "application/json" }
    }).then(function (response) { return response.json(); }).then(function (data) {
      var answered = typeof data.change_id === "number" ? data.change_id : -1;
      if (data.html) { swap(data.html, answered, false); }
      say(data.message, data.ok);
      return answered;
    }).catch(function () { say(root.getAttribute("data-offline") || "…", false); return -1; })
      .then(function (answered) {
        busy = false;
        Object.keys(pending).forEach(function (target) {
          if (pending[target].id > answered) {
            var one = {}; one[target] = pending[target].html;
            swap(one, pending[target].id, true);
          }
        });
        pending = {};
      });
  });

  // A USB keypad sends keys: each button names its keys in data-key ("Enter +", "r *", ...).
  document.addEventListener("keydown", function (event) {
    var tag = (event.target && event.target.tagName) || "";
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || event.ctrlKey || event.altKey || event.metaKey) { return; }
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
    var buttons = document.querySelectorAll("button[data-key]");
    for (var i = 0; i < buttons.length; i++) {
      if (buttons[i].getAttribute("data-key").split(" ").indexOf(key) >= 0) {
        event.preventDefault();
        if (!buttons[i].disabled) { buttons[i].form.requestSubmit(buttons[i]); }
        return;
      }
    }
  });

  if (window.EventSource) {
    var source = new EventSource(root.getAttribute("data-counter-live"));
    source.addEventListener("update", function (event) {
      var data = JSON.parse(event.data);
      var id = parseInt(event.lastEventId, 10);
      id = isNaN(id) ? -1 : id;
      var html = {}; html[data.target] = data.html;
      if (busy) { pending[data.target] = { id: id, html: data.html }; }
      else { swap(html, id, true); }
    });
  }
})();
