// The emergency-code page: live countdowns, and the code removed from the page after a short
// time (app.js does the copy buttons). Loaded from /static (the CSP allows no inline script).
(function () {
  "use strict";
  var section = document.getElementById("reveal");
  if (!section) {
    return;
  }

  function two(number) {
    return (number < 10 ? "0" : "") + number;
  }

  // The same words as oathdesk/timetext.py's duration_text, which renders the page.
  function plural(seconds) {
    var minutes = Math.floor((seconds % 3600) / 60);
    if (seconds < 3600) {
      return "in " + minutes + " min " + two(seconds % 60) + " s";
    }
    var hours = Math.floor((seconds % 86400) / 3600);
    if (seconds < 86400) {
      return "in " + Math.floor(seconds / 3600) + " h " + two(minutes) + " min";
    }
    return "in " + Math.floor(seconds / 86400) + " d " + hours + " h " + two(minutes) + " min";
  }

  function tick() {
    var now = Date.now() / 1000;
    section.querySelectorAll("[data-until]").forEach(function (element) {
      var left = Math.max(0, Math.floor(Number(element.getAttribute("data-until")) - now));
      element.textContent = left > 0 ? plural(left) : "no longer accepted";
    });
    var next = document.getElementById("next-step");
    if (next) {
      var step = Number(next.getAttribute("data-next-step"));
      var left = Math.max(0, Math.ceil(step - now));
      var span = next.querySelector("span");
      if (left > 0 && span) {
        span.textContent = String(left);
      } else if (left <= 0) {
        next.textContent =
          "The token shows a newer code now; the codes above are accepted until the times shown.";
      }
    }
  }

  function hideCodes() {
    // Remove, not just hide: nothing of the code stays in the page.
    section.querySelectorAll(".hd-code-block").forEach(function (element) {
      element.remove();
    });
    var next = document.getElementById("next-step");
    if (next) {
      next.remove();
    }
    var note = document.getElementById("hidden-note");
    if (note) {
      note.hidden = false;
    }
    clearInterval(timer);
  }

  var timer = setInterval(tick, 1000);
  tick();
  var hideAfter = Number(section.getAttribute("data-reveal-hide-after")) || 60;
  setTimeout(hideCodes, hideAfter * 1000);
})();
