// PageForge Explorer: the lineage of a form as a graph, diffs, renders and similar layouts, over the public
// API only. The API key lives in sessionStorage (this tab), is sent only as a header to this origin, and
// never appears in a URL. Every text from the API is set as text, never parsed as HTML.

const KEY = "pageforge.explorer.key";
const PKCE = "pageforge.explorer.pkce";
const API = "/api/v1";
const NODE_GAP_X = 150;
const NODE_GAP_Y = 70;
const DEFAULT_DEPTH = 3;

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

const key = () => sessionStorage.getItem(KEY);

async function api(path, options = {}) {
  const response = await fetch(API + path, {
    ...options,
    headers: { Authorization: `Bearer ${key()}`, ...(options.headers || {}) },
  });
  if (response.status === 401) {
    signOut("The key was refused: sign in again.");
    throw new ApiError(401, "signed out");
  }
  if (!response.ok && response.status !== 202) {
    const body = await response.json().catch(() => ({}));
    throw new ApiError(response.status, body.detail || response.statusText);
  }
  return response;
}

const json = async (path, options) => (await api(path, options)).json();

function h(tag, attributes = {}, ...children) {
  const element = document.createElementNS(
    ["svg", "g", "circle", "path", "text", "title"].includes(tag) ? "http://www.w3.org/2000/svg" : "http://www.w3.org/1999/xhtml",
    tag,
  );
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const view = () => document.getElementById("view");
const day = (iso) => iso.slice(0, 10);
const count = (n, noun) => `${n} ${noun}${n === 1 ? "" : "s"}`;
const link = (href, text) => h("a", { href }, text);
const formLink = (formKey, versionId, text) =>
  link(`#/form/${encodeURIComponent(formKey)}?v=${encodeURIComponent(versionId)}`, text);

// Replaces the element's children, leaving out the absent ones (replaceChildren would write "null").
function fill(element, ...children) {
  element.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
}

function show(...children) {
  fill(view(), ...children);
}

function failure(error) {
  return h("p", { class: "error", role: "alert" }, `Could not load: ${error.message}`);
}

// --- signing in -------------------------------------------------------------------------------------

function signOut(message = "") {
  sessionStorage.removeItem(KEY);
  document.getElementById("who").textContent = "";
  document.getElementById("sign-out").hidden = true;
  document.getElementById("sign-in").hidden = false;
  document.getElementById("sign-in-error").textContent = message;
  show();
  document.getElementById("key").focus();
}

async function signIn(candidate) {
  const response = await fetch(`${API}/tenant`, { headers: { Authorization: `Bearer ${candidate}` } });
  if (!response.ok) {
    const body = await response.json().catch(() => ({}));
    throw new Error(body.detail || response.statusText);
  }
  sessionStorage.setItem(KEY, candidate);
  return response.json();
}

// Sign-in through the identity provider (authorization code with PKCE), when config.json names one: the
// page goes to its login, comes back with a code, and trades it (with the verifier only this tab holds) for
// an access token, which is then used as a key is.
const base64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
const redirectUri = () => location.origin + location.pathname;

async function discovery(issuer) {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`);
  if (!response.ok) throw new Error(`the identity provider answered ${response.status}`);
  return response.json();
}

async function beginSignIn(oidc) {
  const provider = await discovery(oidc.issuer);
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const challenge = base64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem(PKCE, JSON.stringify({ verifier, state, tokenEndpoint: provider.token_endpoint, hash: location.hash }));
  location.assign(`${provider.authorization_endpoint}?${new URLSearchParams({
    response_type: "code", client_id: oidc.client_id, redirect_uri: redirectUri(), scope: oidc.scope,
    state, code_challenge: challenge, code_challenge_method: "S256",
  })}`);
}

async function finishSignIn(oidc) {
  const answer = new URLSearchParams(location.search);
  if (!answer.has("code") && !answer.has("error")) return null;
  const pending = JSON.parse(sessionStorage.getItem(PKCE) || "null");
  sessionStorage.removeItem(PKCE);
  history.replaceState(null, "", location.pathname + (pending?.hash || ""));  // the code leaves the URL
  if (answer.has("error")) throw new Error(answer.get("error_description") || answer.get("error"));
  if (!oidc || !pending || pending.state !== answer.get("state")) throw new Error("the sign-in answer is not the one this tab asked for");
  const response = await fetch(pending.tokenEndpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code", code: answer.get("code"), redirect_uri: redirectUri(),
      client_id: oidc.client_id, code_verifier: pending.verifier,
    }),
  });
  const tokens = await response.json().catch(() => ({}));
  if (!response.ok || !tokens.access_token) throw new Error(tokens.error_description || tokens.error || `token endpoint ${response.status}`);
  return tokens.access_token;
}

async function start() {
  document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const input = document.getElementById("key");
    try {
      const tenant = await signIn(input.value.trim());
      input.value = "";
      signedIn(tenant);
    } catch (error) {
      document.getElementById("sign-in-error").textContent = `Not signed in: ${error.message}`;
    }
  });
  document.getElementById("sign-out").addEventListener("click", () => signOut());
  window.addEventListener("hashchange", route);
  const oidc = (await (await fetch("config.json")).json()).oidc;
  if (oidc) {
    document.getElementById("oidc").hidden = false;
    document.getElementById("oidc-sign-in").addEventListener("click", () =>
      beginSignIn(oidc).catch((error) => { document.getElementById("sign-in-error").textContent = `Not signed in: ${error.message}`; }));
  }
  try {
    const token = await finishSignIn(oidc);
    if (token) sessionStorage.setItem(KEY, token);
  } catch (error) {
    return signOut(`Not signed in: ${error.message}`);
  }
  if (!key()) return signOut();
  try {
    signedIn(await signIn(key()));
  } catch (error) {
    signOut(`Not signed in: ${error.message}`);
  }
}

function signedIn(tenant) {
  document.getElementById("sign-in").hidden = true;
  document.getElementById("who").textContent = `Tenant ${tenant.name}`;
  document.getElementById("sign-out").hidden = false;
  route();
}

// --- routing ----------------------------------------------------------------------------------------

function route() {
  if (!key()) return;
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const params = new URLSearchParams(query);
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const views = {
    forms: () => formsView(params),
    systems: () => systemsView(params),
    system: () => systemView(parts[1]),
    form: () => formView(parts[1], params),
    search: () => searchView(params),
    compare: () => compareView(params),
  };
  (views[parts[0]] || views.forms)().catch((error) => show(failure(error)));
}

function navigate(path, params = {}) {
  const query = new URLSearchParams(Object.entries(params).filter(([, v]) => v !== undefined && v !== ""));
  location.hash = `${path}${query.toString() ? `?${query}` : ""}`;
}

// --- forms and systems ------------------------------------------------------------------------------

async function formsView(params) {
  const q = params.get("q") || "";
  const cursor = params.get("cursor") || "";
  const page = await json(`/forms?${new URLSearchParams({ limit: 50, ...(q && { q }), ...(cursor && { cursor }) })}`);
  const filter = h("input", { id: "form-filter", type: "search", value: q });
  show(
    h("h1", {}, "Forms"),
    h("p", {}, link("#/systems", "Systems and their releases")),
    h(
      "form",
      { class: "toolbar", role: "search", onsubmit: (e) => (e.preventDefault(), navigate("#/forms", { q: filter.value })) },
      h("label", { for: "form-filter" }, "Key or title contains"),
      filter,
      h("button", { type: "submit" }, "Filter"),
    ),
    page.items.length
      ? h(
          "table",
          { id: "forms" },
          h("caption", { class: "muted" }, `${page.items.length} forms on this page`),
          h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Form"), h("th", { scope: "col" }, "Title"), h("th", { scope: "col" }, "Versions"), h("th", { scope: "col" }, "Created"))),
          h(
            "tbody",
            {},
            page.items.map((form) =>
              h("tr", {}, h("td", {}, link(`#/form/${encodeURIComponent(form.key)}`, form.key)), h("td", {}, form.title), h("td", {}, form.version_count), h("td", {}, day(form.created_at))),
            ),
          ),
        )
      : h("p", {}, "No forms."),
    page.next_cursor ? h("button", { type: "button", onclick: () => navigate("#/forms", { q, cursor: page.next_cursor }) }, "Next page") : null,
  );
}

async function systemsView() {
  const page = await json("/systems?limit=200");
  show(
    h("h1", {}, "Systems"),
    page.items.length
      ? h("ul", {}, page.items.map((s) => h("li", {}, link(`#/system/${encodeURIComponent(s.key)}`, s.key), ` — ${s.release_count} releases`)))
      : h("p", {}, "No systems."),
  );
}

async function systemView(systemKey) {
  const page = await json(`/systems/${encodeURIComponent(systemKey)}/releases?limit=200`);
  const releases = await Promise.all(page.items.map((r) => json(`/releases/${r.id}`)));
  show(
    h("h1", {}, `System ${systemKey}`),
    releases.map((release) =>
      h("section", {}, h("h2", {}, `Release ${release.version}`, h("span", { class: "muted" }, ` ${day(release.created_at)}`)),
        h("ul", {}, release.pins.map((pin) => h("li", {}, formLink(pin.form_key, pin.version_id, `${pin.form_key} v${pin.number}`))))),
    ),
  );
}

// --- a form's lineage ---------------------------------------------------------------------------------

// Left to right: a version's column is one more than its furthest parent's (in the drawn part); in a
// column, versions by number. Linear in nodes and edges.
function layout(lineage) {
  const nodes = new Map(lineage.nodes.map((n) => [n.id, { ...n, parents: [], children: [] }]));
  for (const edge of lineage.edges) {
    nodes.get(edge.child_id).parents.push(edge.parent_id);
    nodes.get(edge.parent_id).children.push(edge.child_id);
  }
  const waiting = new Map([...nodes.values()].map((n) => [n.id, n.parents.length]));
  const ready = [...nodes.values()].filter((n) => n.parents.length === 0);
  for (const node of ready) node.column = 0;
  while (ready.length) {
    const node = ready.shift();
    for (const childId of node.children) {
      const child = nodes.get(childId);
      child.column = Math.max(child.column ?? 0, node.column + 1);
      waiting.set(childId, waiting.get(childId) - 1);
      if (waiting.get(childId) === 0) ready.push(child);
    }
  }
  const columns = new Map();
  for (const node of nodes.values()) {
    node.column ??= 0;
    if (!columns.has(node.column)) columns.set(node.column, []);
    columns.get(node.column).push(node);
  }
  for (const column of columns.values()) {
    column.sort((a, b) => a.number - b.number || a.form_key.localeCompare(b.form_key));
    column.forEach((node, row) => {
      node.row = row;
      node.x = 60 + node.column * NODE_GAP_X;
      node.y = 50 + row * NODE_GAP_Y;
    });
  }
  return { nodes, columns };
}

async function formView(formKey, params) {
  const form = await json(`/forms/${encodeURIComponent(formKey)}`);
  const selectedId = params.get("v") || form.latest_version_id;
  const depth = Math.max(1, Math.min(1000, Number(params.get("depth")) || DEFAULT_DEPTH));
  const asTable = params.get("view") === "table";
  const lineage = await json(`/form-versions/${encodeURIComponent(selectedId)}/lineage?direction=both&depth=${depth}`);
  const drawn = layout(lineage);
  const details = h("div", { class: "details", id: "details" });
  const go = (changes) => navigate(`#/form/${encodeURIComponent(formKey)}`, { v: selectedId, depth, view: asTable ? "table" : "", ...changes });
  const depthInput = h("input", { id: "depth", type: "number", min: 1, max: 1000, value: depth });
  const folded = [...drawn.nodes.values()].reduce((sum, n) => sum + Math.max(0, n.child_count - n.children.length) + Math.max(0, n.parent_count - n.parents.length), 0);
  show(
    h("h1", {}, `${form.title} `, h("span", { class: "muted" }, `(${form.key}, ${form.version_count} versions)`)),
    h(
      "form",
      { class: "toolbar", onsubmit: (e) => (e.preventDefault(), go({ depth: depthInput.value })) },
      h("label", { for: "depth" }, "Steps around the selected version"),
      depthInput,
      h("button", { type: "submit" }, "Show"),
      h("span", { id: "counts", class: "muted" }, `${lineage.nodes.length} versions and ${lineage.edges.length} edges drawn; ${folded} folded`),
      h("button", { type: "button", onclick: () => go({ view: asTable ? "" : "table" }) }, asTable ? "Show the graph" : "Show as a table"),
    ),
    h("div", { class: "layout" }, asTable ? lineageTable(drawn, formKey, depth, form) : graph(drawn, selectedId, form, formKey, depth, details), details),
  );
  await showVersion(details, drawn.nodes.get(selectedId) || { id: selectedId }, formKey);
}

function nodeLabel(node, form) {
  const parts = [`Version ${node.number} of ${node.form_key}`, day(node.created_at)];
  if (node.id === form.latest_version_id) parts.push("latest");
  if (node.release_count) parts.push(`in ${node.release_count} release${node.release_count === 1 ? "" : "s"}`);
  const hiddenParents = node.parent_count - node.parents.length;
  const hiddenChildren = node.child_count - node.children.length;
  if (hiddenParents > 0) parts.push(`${hiddenParents} parent${hiddenParents === 1 ? "" : "s"} folded`);
  if (hiddenChildren > 0) parts.push(`${hiddenChildren} child${hiddenChildren === 1 ? "" : "ren"} folded`);
  return parts.join(", ");
}

function graph(drawn, selectedId, form, formKey, depth, details) {
  const nodes = [...drawn.nodes.values()];
  const width = Math.max(...nodes.map((n) => n.x)) + 120;
  const height = Math.max(...nodes.map((n) => n.y)) + 80;
  const box = { x: 0, y: 0, w: Math.max(width, 600), h: Math.max(height, 400) };
  const svg = h("svg", { role: "group", "aria-label": `Lineage of ${formKey}: arrow keys move along it, Enter opens` });
  const setBox = () => svg.setAttribute("viewBox", `${box.x} ${box.y} ${box.w} ${box.h}`);
  const zoom = (factor) => {
    const cx = box.x + box.w / 2, cy = box.y + box.h / 2;
    box.w *= factor; box.h *= factor; box.x = cx - box.w / 2; box.y = cy - box.h / 2;
    setBox();
  };
  // Open on the selected version's neighbourhood when the drawing is large.
  const selected = drawn.nodes.get(selectedId);
  if (selected && (width > 1400 || height > 900)) {
    Object.assign(box, { w: 1200, h: 800, x: selected.x - 600, y: selected.y - 400 });
  }
  setBox();
  const select = (node) => showVersion(details, node, formKey, svg);
  for (const node of nodes) {
    for (const parentId of node.parents) {
      const parent = drawn.nodes.get(parentId);
      const mid = (parent.x + node.x) / 2;
      const d = `M${parent.x + 18},${parent.y} C${mid},${parent.y} ${mid},${node.y} ${node.x - 18},${node.y}`;
      const label = `Diff from version ${parent.number} to version ${node.number}`;
      const edge = h(
        "g",
        { class: "edge", tabindex: 0, role: "button", "aria-label": label, "data-child": node.id, "data-parent": parent.id },
        h("title", {}, label),
        h("path", { class: "hit", d }),
        h("path", { class: "line", d }),
      );
      const open = () => {
        svg.querySelectorAll(".selected").forEach((e) => e.classList.remove("selected"));
        edge.classList.add("selected");
        showDiff(details, parent, node);
      };
      edge.addEventListener("click", open);
      edge.addEventListener("keydown", (e) => (e.key === "Enter" || e.key === " ") && (e.preventDefault(), open()));
      svg.append(edge);
    }
  }
  for (const node of nodes) {
    const latest = node.id === form.latest_version_id;
    const hiddenParents = node.parent_count - node.parents.length;
    const hiddenChildren = node.child_count - node.children.length;
    const pins = node.release_count ? `${node.release_count} release${node.release_count === 1 ? "" : "s"}` : null;
    // The button is the circle; its texts are drawn beside it, hidden from assistive technology (the
    // accessible name says all they say) and from the pointer (a click on them reaches the circle).
    const place = `translate(${node.x},${node.y})`;
    const group = h(
      "g",
      { class: `node${latest ? " latest" : ""}${node.id === selectedId ? " selected" : ""}`, tabindex: 0, role: "button", "aria-label": nodeLabel(node, form), "data-id": node.id, transform: place },
      h("circle", { r: 18 }),
    );
    const texts = h(
      "g",
      { class: "node-texts", "aria-hidden": "true", transform: place },
      h("text", { "text-anchor": "middle", dy: 4 }, `v${node.number}`),
      h("text", { "text-anchor": "middle", dy: 34 }, day(node.created_at)),
      latest ? h("text", { "text-anchor": "middle", dy: -24 }, "latest") : null,
      pins ? h("text", { class: "pins", "text-anchor": "middle", dy: 48 }, pins) : null,
      hiddenParents > 0 ? h("text", { class: "folded", "text-anchor": "end", dx: -22, dy: -12 }, `+${hiddenParents}`) : null,
      hiddenChildren > 0 ? h("text", { class: "folded", dx: 22, dy: -12 }, `+${hiddenChildren}`) : null,
    );
    const open = () => {
      svg.querySelectorAll(".selected").forEach((e) => e.classList.remove("selected"));
      group.classList.add("selected");
      if (hiddenParents > 0 || hiddenChildren > 0) {
        navigate(`#/form/${encodeURIComponent(formKey)}`, { v: node.id, depth }); // expand around it
      } else {
        select(node);
      }
    };
    group.addEventListener("click", open);
    group.addEventListener("keydown", (e) => {
      const moves = {
        ArrowLeft: () => node.parents[0],
        ArrowRight: () => node.children[0],
        ArrowUp: () => drawn.columns.get(node.column)[node.row - 1]?.id,
        ArrowDown: () => drawn.columns.get(node.column)[node.row + 1]?.id,
      };
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        open();
      } else if (moves[e.key]) {
        e.preventDefault();
        const target = moves[e.key]();
        if (target) svg.querySelector(`.node[data-id="${CSS.escape(target)}"]`).focus();
      }
    });
    svg.append(group, texts);
  }
  let drag = null;
  svg.addEventListener("pointerdown", (e) => { drag = { x: e.clientX, y: e.clientY }; });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const scale = box.w / svg.clientWidth;
    box.x -= (e.clientX - drag.x) * scale; box.y -= (e.clientY - drag.y) * scale;
    drag = { x: e.clientX, y: e.clientY };
    setBox();
  });
  svg.addEventListener("pointerup", () => { drag = null; });
  svg.addEventListener("pointerleave", () => { drag = null; });
  svg.addEventListener("wheel", (e) => { e.preventDefault(); zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15); }, { passive: false });
  return h(
    "div",
    {},
    h("div", { class: "toolbar" },
      h("button", { type: "button", onclick: () => zoom(1 / 1.25) }, "Zoom in"),
      h("button", { type: "button", onclick: () => zoom(1.25) }, "Zoom out"),
      h("button", { type: "button", onclick: () => { Object.assign(box, { x: 0, y: 0, w: Math.max(width, 600), h: Math.max(height, 400) }); setBox(); } }, "Fit"),
      h("span", { class: "muted" }, "Drag to pan, wheel to zoom; a +N is what is folded: open that version to expand."),
    ),
    h("div", { class: "graph" }, svg),
  );
}

function lineageTable(drawn, formKey, depth, form) {
  const rows = [...drawn.nodes.values()].sort((a, b) => a.column - b.column || a.row - b.row);
  const number = (id) => drawn.nodes.get(id)?.number;
  return h(
    "table",
    { id: "lineage-table" },
    h("caption", {}, `Lineage of ${formKey}`),
    h("thead", {}, h("tr", {}, ["Version", "Created", "Parents", "Children", "Releases", ""].map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", {}, rows.map((node) =>
      h("tr", {},
        h("th", { scope: "row" }, link(`#/form/${encodeURIComponent(formKey)}?v=${node.id}&depth=${depth}&view=table`, `v${node.number}`)),
        h("td", {}, day(node.created_at)),
        h("td", {}, node.parents.map((p) => `v${number(p)}`).join(", ") + (node.parent_count > node.parents.length ? ` (+${node.parent_count - node.parents.length} folded)` : "")),
        h("td", {}, String(node.child_count) + (node.child_count > node.children.length ? ` (${node.child_count - node.children.length} folded)` : "")),
        h("td", {}, node.release_count),
        h("td", {}, node.id === form.latest_version_id ? h("span", { class: "tag latest" }, "latest") : ""),
      ))),
  );
}

// --- details: a version, a step, a comparison ----------------------------------------------------------

function fieldsOf(definition) {
  const found = [];
  const walk = (value) => {
    if (Array.isArray(value)) return value.forEach(walk);
    if (value && typeof value === "object") {
      if (value.node === "field" && value.key) found.push(value);
      Object.values(value).forEach(walk);
    }
  };
  walk(definition.layout || definition);
  return found;
}

async function renderFrame(path, title) {
  const frame = h("iframe", { title, sandbox: "allow-scripts", referrerpolicy: "no-referrer" });
  try {
    const response = await api(path);
    frame.srcdoc = await response.text();
  } catch (error) {
    return failure(error);
  }
  return frame;
}

async function pdfLink(versionId) {
  const status = h("span", { role: "status" });
  const button = h("button", { type: "button" }, "Download the PDF");
  button.addEventListener("click", async () => {
    status.textContent = "Rendering…";
    try {
      const response = await api(`/form-versions/${versionId}/render?format=pdf`);
      if (response.status === 202) {
        const job = await response.json();
        status.textContent = `Large form: a job renders it (${job.links.self}); try again when it is done.`;
        return;
      }
      const url = URL.createObjectURL(await response.blob());
      const anchor = h("a", { href: url, download: `${versionId}.pdf` }, "Save the PDF");
      status.replaceChildren(anchor);
      anchor.click();
    } catch (error) {
      status.textContent = `No PDF: ${error.message}`;
    }
  });
  return h("p", {}, button, " ", status);
}

function similarSection(versionId) {
  const list = h("ol", { id: "similar" });
  const scope = h("select", { id: "similar-scope" }, ["all", "lineage", "exclude-lineage"].map((s) => h("option", { value: s }, s)));
  const load = async () => {
    try {
      const result = await json(`/form-versions/${versionId}/similar?k=8&scope=${scope.value}`);
      list.replaceChildren(...(result.items.length ? result.items.map((hit) => h("li", {}, formLink(hit.form_key, hit.version_id, `${hit.form_key} v${hit.number}`), ` ${hit.score.toFixed(3)}`)) : [h("li", {}, "None.")]));
    } catch (error) {
      list.replaceChildren(h("li", {}, failure(error)));
    }
  };
  scope.addEventListener("change", load);
  load();
  return h("section", {}, h("h2", {}, "Similar layouts"), h("label", { for: "similar-scope" }, "Scope "), scope, list);
}

async function showVersion(details, node, formKey, svg) {
  const version = await json(`/form-versions/${node.id}`);
  const fields = fieldsOf(version.definition || {});
  const history = h("div", { id: "field-history" });
  const fieldList = h("ul", { id: "fields" }, fields.slice(0, 300).map((f) =>
    h("li", {}, h("button", { type: "button", onclick: () => fieldHistory(history, version.form_key, f.key, version.id) }, f.key), f.label ? ` ${f.label}` : "")));
  const [usedBy, impact] = await Promise.all([
    json(`/form-versions/${version.id}/used-by?limit=50`).catch(() => ({ items: [] })),
    json(`/form-versions/${version.id}/impact?limit=50`).catch(() => ({ items: [] })),
  ]);
  const suggestions = version.parents.length
    ? null
    : await json(`/form-versions/${version.id}/suggested-parents`).catch(() => null);
  fill(details, 
    h("h2", { id: "version-title" }, `${version.form_key} v${version.number}`),
    h("p", {}, `${version.title} — created ${day(version.created_at)}`, version.label ? ` — ${version.label}` : "", " ",
      compareButtons(version)),
    await renderFrame(`/form-versions/${version.id}/render`, `Render of ${version.form_key} v${version.number}`),
    await pdfLink(version.id),
    h("h2", {}, `Fields (${fields.length})`),
    fieldList,
    history,
    h("h2", {}, "Used by"),
    usedBy.items.length ? h("ul", {}, usedBy.items.map((r) => h("li", {}, `${r.system_key} ${r.version}`, r.pinned_version_id === version.id ? "" : ` (pins v${r.pinned_number})`))) : h("p", {}, "No release includes it."),
    h("h2", {}, "Impact"),
    h("p", {}, `${count(Math.max(0, impact.items.length - 1), "later version")} derive${impact.items.length === 2 ? "s" : ""} from it; ${count(new Set(impact.items.flatMap((i) => i.releases.map((r) => r.id))).size, "release")} include it or one of them.`),
    suggestions ? h("section", {}, h("h2", {}, "Suggested parents"), h("ul", {}, suggestions.items.map((s) => h("li", {}, formLink(s.form_key, s.version_id, `${s.form_key} v${s.number}`), ` ${s.score.toFixed(3)}`)))) : null,
    similarSection(version.id),
  );
}

// Comparing any two versions: mark one, open the other (of any form), compare.
const COMPARE = "pageforge.explorer.compare";

function compareButtons(version) {
  const marked = JSON.parse(sessionStorage.getItem(COMPARE) || "null");
  const label = `${version.form_key} v${version.number}`;
  const status = h("span", { role: "status", class: "muted" });
  const mark = h("button", { type: "button", onclick: () => {
    sessionStorage.setItem(COMPARE, JSON.stringify({ id: version.id, label }));
    status.textContent = ` ${label} marked: open another version and compare.`;
  } }, "Mark to compare");
  const compare = marked && marked.id !== version.id
    ? h("button", { type: "button", id: "compare-marked", onclick: () => navigate("#/compare", { a: marked.id, b: version.id }) }, `Compare ${marked.label} → this`)
    : null;
  return h("span", {}, mark, " ", compare, status);
}

async function fieldHistory(target, formKey, fieldKey, versionId) {
  try {
    const page = await json(`/forms/${encodeURIComponent(formKey)}/fields/${encodeURIComponent(fieldKey)}/history?version=${versionId}`);
    fill(target, h("h2", {}, `History of ${fieldKey}`), h("ol", {}, page.items.map((e) => h("li", { class: e.action }, `v${e.number} ${day(e.created_at)}: ${e.action}${e.old_key ? ` (was ${e.old_key})` : ""}`))));
  } catch (error) {
    fill(target, failure(error));
  }
}

function changeList(diff) {
  return h("ul", { class: "changes", id: "changes" }, diff.changes.length
    ? diff.changes.map((c) => h("li", { class: c.action }, `${c.action} ${c.kind} ${c.key || c.node}${c.old_key ? ` (was ${c.old_key})` : ""}${Object.keys(c.properties || {}).length ? `: ${Object.keys(c.properties).join(", ")}` : ""}`))
    : [h("li", {}, "No change.")]);
}

async function showDiff(details, parent, child) {
  const diff = await json(`/form-versions/${child.id}/diff?against=${parent.id}`);
  fill(details, 
    h("h2", { id: "diff-title" }, `v${parent.number} → v${child.number}`),
    h("p", {}, diff.summary),
    h("div", { class: "side-by-side" },
      h("div", {}, h("h2", {}, "Changes"), changeList(diff)),
      h("div", {}, h("h2", {}, "Marked render"), await renderFrame(`/form-versions/${child.id}/render/diff?against=${parent.id}`, `Changes from v${parent.number} to v${child.number}`))),
  );
}

async function compareView(params) {
  const a = h("input", { id: "compare-a", value: params.get("a") || "", size: 40 });
  const b = h("input", { id: "compare-b", value: params.get("b") || "", size: 40 });
  const result = h("div", { id: "comparison" });
  show(
    h("h1", {}, "Compare two versions"),
    h("form", { class: "toolbar", onsubmit: (e) => (e.preventDefault(), navigate("#/compare", { a: a.value.trim(), b: b.value.trim() })) },
      h("label", { for: "compare-a" }, "From version id"), a, h("label", { for: "compare-b" }, "to version id"), b, h("button", { type: "submit" }, "Compare")),
    result,
  );
  if (!params.get("a") || !params.get("b")) return;
  const [diff, base, from, to] = await Promise.all([
    json(`/form-versions/${params.get("b")}/diff?against=${params.get("a")}`),
    json(`/form-versions/${params.get("b")}/merge-base?with=${params.get("a")}`),
    json(`/form-versions/${params.get("a")}`),
    json(`/form-versions/${params.get("b")}`),
  ]);
  fill(result, 
    h("h2", {}, `${from.form_key} v${from.number} → ${to.form_key} v${to.number}`),
    h("p", {}, diff.summary),
    changeList(diff),
    h("h2", {}, "Merge base"),
    base.merge_bases.length ? h("ul", {}, base.merge_bases.map((m) => h("li", {}, formLink(m.form_key, m.id, `${m.form_key} v${m.number}`)))) : h("p", {}, "They share no ancestor."),
  );
}

async function searchView(params) {
  const q = params.get("q") || "";
  const input = h("input", { id: "search-text", type: "search", value: q, size: 50 });
  const hits = h("ol", { id: "hits" });
  show(
    h("h1", {}, "Search layouts"),
    h("form", { class: "toolbar", role: "search", onsubmit: (e) => (e.preventDefault(), navigate("#/search", { q: input.value })) },
      h("label", { for: "search-text" }, "Describe the layout"), input, h("button", { type: "submit" }, "Search")),
    hits,
  );
  if (!q) return;
  const result = await json("/layouts/search", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ text: q, k: 10 }) });
  hits.replaceChildren(...(result.items.length ? result.items.map((hit) => h("li", {}, formLink(hit.form_key, hit.version_id, `${hit.form_key} v${hit.number}`), ` ${hit.score.toFixed(3)}`)) : [h("li", {}, "Nothing similar.")]));
}

start();
