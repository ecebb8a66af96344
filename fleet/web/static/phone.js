// The citizen's phone page: follows /q/{token}/live and swaps the ticket's card (position, call,
// rating). Without it the page still works: reload to see the position.
(function () {
  "use strict";
  var url = document.body.getAttribute("data-phone-live");
  if (!url || !window.EventSource) { return; }
  var source = new EventSource(url);
  source.addEventListener("update", function (event) {
    var data = JSON.parse(event.data);
    var old = document.querySelector('[data-live-target="' + data.target + '"]');
    if (!old) { return; }
    var holder = document.createElement("div");
    holder.innerHTML = data.html; // rendered and escaped by the server's templates
    if (holder.firstElementChild) {
      old.replaceWith(holder.firstElementChild);
      if (navigator.vibrate && holder.querySelector && document.getElementById("called-to")) { navigator.vibrate(400); }
    }
  });
})();
