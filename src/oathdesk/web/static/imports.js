// A background import: poll its progress (JSON) and show the result page when it is done.
(function () {
  "use strict";
  var bar = document.getElementById("import-progress");
  if (!bar) {
    return;
  }
  var text = document.getElementById("import-progress-text");
  function poll() {
    fetch(bar.getAttribute("data-poll"), { credentials: "same-origin", cache: "no-store" })
      .then(function (response) {
        return response.json();
      })
      .then(function (state) {
        if (state.total) {
          bar.max = state.total;
          bar.value = state.done;
        }
        if (text) {
          text.textContent = state.phase + (state.total ? " " + state.done + " / " + state.total : "");
        }
        if (state.finished) {
          window.location.assign(bar.getAttribute("data-done-url"));
        } else {
          window.setTimeout(poll, 500);
        }
      })
      .catch(function () {
        window.setTimeout(poll, 2000);
      });
  }
  poll();
})();
