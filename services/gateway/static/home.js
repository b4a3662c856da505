// Home page: build the shareable Binder link and badges as the user types.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("providers-config").textContent);
  const base = cfg.base;
  const $ = (id) => document.getElementById(id);
  const form = $("launch-form");

  function providerSpec() {
    const p = cfg.providers[$("provider").value];
    let repo = $("repository").value.trim();
    if (!repo) return null;
    if (p.strip_prefix && repo.startsWith(p.strip_prefix)) repo = repo.slice(p.strip_prefix.length);
    repo = repo.replace(/\.git$/, p.keep_git_suffix ? ".git" : "").replace(/\/+$/, "");
    const ref = $("ref").value.trim() || p.default_ref;
    const repoPart = p.url_encode ? encodeURIComponent(repo) : repo;
    if (!p.ref) return `${$("provider").value}/${repoPart}`;
    return `${$("provider").value}/${repoPart}/${encodeURIComponent(ref)}`;
  }

  function pathQuery() {
    const path = $("path").value.trim();
    if (!path) return "";
    if ($("path-type").value === "file") return "?labpath=" + encodeURIComponent(path.replace(/^\/+/, ""));
    return "?urlpath=" + encodeURIComponent(path.replace(/^\/+/, ""));
  }

  function update() {
    const p = cfg.providers[$("provider").value];
    $("repository-label").textContent = p.label;
    $("repository").placeholder = p.placeholder;
    $("ref-row").hidden = !p.ref;
    $("ref-label").textContent = p.ref_label;
    const spec = providerSpec();
    const url = spec ? `${base}v2/${spec}${pathQuery()}` : "";
    $("share-url").value = url;
    const badge = `${cfg.badge_base}badge_logo.svg`;
    $("badge-markdown").value = url ? `[![Binder](${badge})](${url})` : "";
    $("badge-rst").value = url ? `.. image:: ${badge}\n :target: ${url}` : "";
    return url;
  }

  for (const id of ["provider", "repository", "ref", "path", "path-type"]) {
    $(id).addEventListener("input", update);
    $(id).addEventListener("change", update);
  }
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const url = update();
    if (url) window.location.href = url;
  });
  update();
})();
