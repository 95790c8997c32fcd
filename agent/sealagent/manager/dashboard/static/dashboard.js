// sealagent dashboard: refresh the page's live part without reloading, confirm aborts.
// No build step, no library: the server renders HTML, this swaps <main id="live">.
(function () {
  "use strict";
  var live = document.getElementById("live");
  document.addEventListener("submit", function (event) {
    var button = event.submitter;
    var question = button && button.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { event.preventDefault(); }
  });
  if (!live || !document.querySelector("header nav")) { return; }
  var every = Number(live.getAttribute("data-refresh")) || 2000;
  function next(response) {
    var asked = Number(response && response.headers.get("X-Dashboard-Refresh"));
    window.setTimeout(tick, asked > 0 ? asked : every);
  }
  function tick() {
    if (document.hidden) { next(null); return; }
    fetch(window.location.href, {
      headers: { "X-Dashboard-Fragment": "1" }, credentials: "same-origin", cache: "no-store"
    }).then(function (response) {
      if (response.status === 401) {
        window.location.assign(live.getAttribute("data-login"));
        return;
      }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text().then(function (html) {
        live.innerHTML = html;
        live.removeAttribute("data-stale");
        next(response);
      });
    }).catch(function () {
      live.setAttribute("data-stale", "true");
      next(null);
    });
  }
  window.setTimeout(tick, every);
})();
