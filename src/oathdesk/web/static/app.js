// oathdesk: the console's shared behaviour. No inline script anywhere (the CSP forbids it);
// pages opt in with data attributes:
//   <form data-confirm="Erase the secret of 123?">   asks before submitting (also on a button)
//   <button data-copy="code-id">Copy</button>       copies the text (or data-value) of #code-id,
//                                                  without spaces ("123 456" -> "123456")
//   <span data-countdown="27">27</span>            counts whole seconds down to 0, then gets the
//                                                  class "expired" and fires "countdown:done"
//   <div data-hide-after="60" data-hide-show="id">  hidden after 60 s; #id (if given) shown then
"use strict";

(function () {
  function onReady(fn) {
    if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  function confirmations() {
    document.addEventListener("submit", function (event) {
      var form = event.target;
      var submitter = event.submitter;
      var message =
        (submitter && submitter.getAttribute("data-confirm")) ||
        (form && form.getAttribute && form.getAttribute("data-confirm"));
      if (message && !window.confirm(message)) {
        event.preventDefault();
      }
    });
  }

  function copyButtons() {
    document.querySelectorAll("[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var source = document.getElementById(button.getAttribute("data-copy"));
        if (!source) {
          return;
        }
        var text = (source.getAttribute("data-value") || source.textContent || "").replace(/\s+/g, "");
        var done = function () {
          var label = button.textContent;
          button.textContent = "Copied";
          button.classList.add("copied");
          window.setTimeout(function () {
            button.textContent = label;
            button.classList.remove("copied");
          }, 1500);
        };
        if (navigator.clipboard && window.isSecureContext) {
          navigator.clipboard.writeText(text).then(done, function () {});
        } else {
          var area = document.createElement("textarea");
          area.value = text;
          area.setAttribute("readonly", "");
          area.className = "offscreen";
          document.body.appendChild(area);
          area.select();
          try {
            document.execCommand("copy");
            done();
          } finally {
            document.body.removeChild(area);
          }
        }
      });
    });
  }

  function countdowns() {
    document.querySelectorAll("[data-countdown]").forEach(function (element) {
      var total = parseInt(element.getAttribute("data-countdown"), 10);
      if (isNaN(total)) {
        return;
      }
      var end = Date.now() + total * 1000;
      var tick = function () {
        var left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
        element.textContent = String(left);
        if (left <= 0) {
          element.classList.add("expired");
          element.dispatchEvent(new CustomEvent("countdown:done", { bubbles: true }));
          return;
        }
        window.setTimeout(tick, 250);
      };
      tick();
    });
  }

  function hideAfter() {
    document.querySelectorAll("[data-hide-after]").forEach(function (element) {
      var seconds = parseFloat(element.getAttribute("data-hide-after"));
      if (isNaN(seconds)) {
        return;
      }
      window.setTimeout(function () {
        element.hidden = true;
        var showId = element.getAttribute("data-hide-show");
        var other = showId && document.getElementById(showId);
        if (other) {
          other.hidden = false;
        }
      }, seconds * 1000);
    });
  }

  onReady(function () {
    confirmations();
    copyButtons();
    countdowns();
    hideAfter();
  });
})();
