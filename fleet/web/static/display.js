// The hall display: follows /display/{token}/live; a new call is highlighted and its announcement
// (chime + words, a WAV made on the server) is queued: announcements never overlap, a recall is
// spoken again. window.__calls records when each call arrived and when its audio started (tests, bench).
(function () {
  "use strict";
  var body = document.body;
  var url = body.getAttribute("data-display-live");
  if (!url) { return; }
  var queue = [], playing = false, blocked = false;
  window.__calls = [];
  var clock = document.getElementById("clock");
  function tick() {
    var now = new Date();
    clock.textContent = ("0" + now.getHours()).slice(-2) + ":" + ("0" + now.getMinutes()).slice(-2);
  }
  window.setInterval(tick, 1000);

  function swap(target, html) {
    var old = document.querySelector('[data-live-target="' + target + '"]');
    if (!old) { return; }
    var holder = document.createElement("div");
    holder.innerHTML = html; // rendered and escaped by the server's templates
    if (holder.firstElementChild) { old.replaceWith(holder.firstElementChild); }
  }

  function highlight(call) {
    var tile = document.querySelector('.d-counter[data-counter="' + CSS.escape(call.counter) + '"]');
    if (!tile) { return; }
    tile.classList.remove("new-call");
    void tile.offsetWidth; // restart the animation for a recall
    tile.classList.add("new-call");
    window.setTimeout(function () { tile.classList.remove("new-call"); }, 8000);
  }

  function next() {
    if (playing || blocked || !queue.length) { return; }
    var item = queue.shift();
    playing = true;
    var audio = new Audio(item.audio);
    audio.addEventListener("playing", function () { item.record.audio_started = Date.now(); }, { once: true });
    audio.addEventListener("ended", function () { item.record.audio_ended = Date.now(); playing = false; next(); });
    audio.addEventListener("error", function () { item.record.audio_error = true; playing = false; next(); });
    var started = audio.play();
    if (started && started.catch) {
      started.catch(function () { // the TV's browser wants a first touch before it plays sound
        playing = false; blocked = true; queue.unshift(item);
        document.getElementById("sound-needed").hidden = false;
      });
    }
  }

  document.getElementById("sound-on").addEventListener("click", function () {
    blocked = false;
    document.getElementById("sound-needed").hidden = true;
    next();
  });

  var source = new EventSource(url);
  source.addEventListener("call", function (event) {
    var call = JSON.parse(event.data);
    var record = { id: call.id, number: call.number, counter: call.counter, recall: call.recall, arrived: Date.now() };
    window.__calls.push(record);
    queue.push({ audio: call.audio, record: record });
    window.setTimeout(function () { highlight(call); }, 0);
    next();
  });
  source.addEventListener("update", function (event) {
    var data = JSON.parse(event.data);
    swap(data.target, data.html);
    document.querySelectorAll(".d-counter").forEach(function (tile) {
      var last = window.__calls[window.__calls.length - 1];
      if (last && tile.getAttribute("data-counter") === last.counter && Date.now() - last.arrived < 8000) {
        tile.classList.add("new-call");
      }
    });
  });
})();
