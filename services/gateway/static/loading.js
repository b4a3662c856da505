// Loading page: stream the launch's events into a terminal-like log, show the
// phase on a progress bar, go to the server when it is ready, keep the log on failure.
(function () {
  "use strict";
  const root = document.getElementById("loading");
  const log = document.getElementById("log");
  const bar = document.getElementById("progress-bar");
  const progress = bar.parentElement;
  const phaseEl = document.getElementById("phase");
  const statusEl = document.getElementById("status");
  const errorEl = document.getElementById("error");
  const PROGRESS = { waiting: 5, fetching: 10, building: 20, pushing: 75, built: 80, launching: 88, ready: 100, failed: 100 };
  let building = 0;
  let finished = false;

  function append(text, cls) {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    const span = document.createElement("span");
    if (cls) span.className = cls;
    span.textContent = text.endsWith("\n") ? text : text + "\n";
    log.appendChild(span);
    if (atBottom) log.scrollTop = log.scrollHeight;
  }

  function setPhase(phase, message) {
    phaseEl.textContent = phase;
    phaseEl.className = "phase " + phase;
    let pct = PROGRESS[phase] || 50;
    if (phase === "building") pct = Math.min(74, 20 + Math.log2(1 + ++building) * 6);
    bar.style.width = pct + "%";
    progress.setAttribute("aria-valuenow", String(Math.round(pct)));
    progress.classList.toggle("failed", phase === "failed");
    progress.classList.toggle("ready", phase === "ready");
    if (message && phase !== "building") statusEl.textContent = message.trim();
  }

  // BinderHub's rules: urlpath wins; labpath opens a file in JupyterLab; filepath is the legacy name.
  function redirectUrl(serverUrl, token) {
    const url = new URL(serverUrl);
    const urlPath = root.dataset.urlPath;
    if (urlPath) url.pathname = url.pathname.replace(/\/$/, "") + "/" + urlPath.replace(/^\//, "");
    url.searchParams.append("token", token);
    return url.toString();
  }

  const source = new EventSource(root.dataset.buildUrl);
  source.onmessage = (event) => {
    const data = JSON.parse(event.data);
    const phase = data.phase;
    setPhase(phase, data.message || "");
    if (phase === "failed") {
      finished = true;
      source.close();
      append(data.message || "Launch failed", "line-failed");
      errorEl.textContent = (data.message || "Launch failed").trim();
      errorEl.hidden = false;
      document.title = "Failed: " + document.title;
      return;
    }
    if (phase === "ready") {
      finished = true;
      source.close();
      append(data.message || "Ready", "line-phase");
      statusEl.textContent = "Ready! Taking you to your server...";
      window.location.href = redirectUrl(data.url, data.token);
      return;
    }
    append(data.message || "", phase === "building" ? "" : "line-phase");
  };
  // A dropped connection is not a failed launch: the browser reconnects by itself
  // (to this or any other gateway) with the id of the last event it saw, and the
  // gateway sends exactly the events missed. Give up only after a minute.
  let lostSince = null;
  source.onopen = () => {
    if (lostSince !== null) statusEl.textContent = "Reconnected.";
    lostSince = null;
  };
  source.onerror = () => {
    if (finished) return;
    if (lostSince === null) lostSince = Date.now();
    if (source.readyState === EventSource.CONNECTING && Date.now() - lostSince < 60000) {
      statusEl.textContent = "Lost the connection; reconnecting...";
      return;
    }
    source.close();
    setPhase("failed", "");
    errorEl.textContent = "Lost the connection to the server before the launch finished. Reload the page to try again.";
    errorEl.hidden = false;
  };
})();
