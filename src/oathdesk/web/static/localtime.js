// oathdesk: times in the operator's own time zone. The server writes every moment as
//   <time datetime="2026-12-04T21:57:49Z" title="2026-12-04 21:57:49 UTC" data-local="seconds">
// in UTC (it cannot know where the operator sits); this rewrites the text into the browser's
// zone with that zone's name ("2026-12-04 22:57:49 CET") and keeps UTC in the title, for a
// hover. Without JavaScript the page still says UTC, which is right, only less handy.
"use strict";

(function () {
  var zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "";

  function formatter(seconds) {
    var options = {
      year: "numeric",
      month: "2-digit",
      day: "2-digit",
      hour: "2-digit",
      minute: "2-digit",
      hourCycle: "h23",
      timeZoneName: "short",
    };
    if (seconds) {
      options.second = "2-digit";
    }
    return new Intl.DateTimeFormat(undefined, options);
  }

  var formats = { seconds: formatter(true), minutes: formatter(false) };

  function localText(moment, precision) {
    var parts = {};
    formats[precision === "minutes" ? "minutes" : "seconds"]
      .formatToParts(moment)
      .forEach(function (part) {
        parts[part.type] = part.value;
      });
    var text = parts.year + "-" + parts.month + "-" + parts.day + " " + parts.hour + ":" + parts.minute;
    if (precision !== "minutes") {
      text += ":" + parts.second;
    }
    return text + " " + (parts.timeZoneName || zone);
  }

  function localise(root) {
    root.querySelectorAll("time[data-local][datetime]").forEach(function (element) {
      var moment = new Date(element.getAttribute("datetime"));
      if (isNaN(moment.getTime())) {
        return;
      }
      var utc = element.getAttribute("title") || element.textContent;
      element.textContent = localText(moment, element.getAttribute("data-local"));
      element.setAttribute("title", utc + (zone ? " (shown in " + zone + ")" : ""));
      element.classList.add("local");
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () {
      localise(document);
    });
  } else {
    localise(document);
  }
  window.oathdeskLocalTime = localise;
})();
