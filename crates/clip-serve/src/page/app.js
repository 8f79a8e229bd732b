// The search page: talks to the same server's JSON API. No framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const tokenInput = $("token");
tokenInput.value = localStorage.getItem("clip-token") || "";
tokenInput.addEventListener("change", () => localStorage.setItem("clip-token", tokenInput.value));

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  if (tokenInput.value) h["Authorization"] = "Bearer " + tokenInput.value;
  return h;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method,
    headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error((data.error && data.error.message) || response.statusText);
  return data;
}

function status(text, isError) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}

// Thumbnails need the token when one is set, which <img src> cannot send: fetch them instead.
async function setThumbnail(img, url) {
  if (!tokenInput.value) {
    img.src = url;
    return;
  }
  const response = await fetch(url, { headers: headers(false) });
  if (response.ok) img.src = URL.createObjectURL(await response.blob());
}

function render(results) {
  const grid = $("results");
  grid.replaceChildren();
  grid.dataset.count = String(results.length);
  for (const r of results) {
    const figure = document.createElement("figure");
    figure.className = "result";
    figure.dataset.id = r.id;
    const img = document.createElement("img");
    img.alt = r.path || r.id;
    img.loading = "lazy";
    setThumbnail(img, r.thumbnail);
    const caption = document.createElement("figcaption");
    const path = document.createElement("span");
    path.className = "path";
    path.textContent = (r.path || "").split("/").pop();
    path.title = r.path || "";
    const score = document.createElement("span");
    score.className = "score";
    score.textContent = r.score.toFixed(3);
    caption.append(path, score);
    figure.append(img, caption);
    grid.append(figure);
  }
  status(results.length + (results.length === 1 ? " result" : " results"));
  document.body.dataset.state = "done";
}

async function run(description, request) {
  document.body.dataset.state = "busy";
  status("Searching " + description + "…");
  try {
    render(await request());
  } catch (e) {
    $("results").replaceChildren();
    status(e.message, true);
    document.body.dataset.state = "error";
  }
}

function k() {
  return Math.max(1, parseInt($("k").value, 10) || 12);
}

function searchText(q) {
  const url = new URL(location.href);
  url.searchParams.set("q", q);
  url.searchParams.set("k", String(k()));
  history.replaceState(null, "", url);
  const params = new URLSearchParams({ q, k: String(k()) });
  run("for “" + q + "”", async () => (await api("GET", "/v1/search?" + params)).results);
}

function readDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

async function searchImage(file) {
  const image = await readDataUrl(file);
  run("by image " + file.name, async () => (await api("POST", "/v1/search", { image, k: k() })).results);
}

$("search-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("query").value.trim();
  if (q) searchText(q);
});

const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  const file = e.dataTransfer.files[0];
  if (file) searchImage(file);
});
$("pick").addEventListener("change", (e) => { if (e.target.files[0]) searchImage(e.target.files[0]); });

$("classify-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const file = $("classify-image").files[0];
  const labels = $("labels").value.split(",").map((s) => s.trim()).filter(Boolean);
  const bars = $("bars");
  if (!file || labels.length === 0) {
    bars.textContent = "Pick an image and give comma-separated labels.";
    return;
  }
  const image = await readDataUrl(file);
  $("classify-preview").src = image;
  $("classify-preview").hidden = false;
  bars.textContent = "Classifying…";
  try {
    const data = await api("POST", "/v1/classify", { images: [image], labels });
    bars.replaceChildren(...data.results[0].scores.map(({ label, prob }) => {
      const row = document.createElement("div");
      row.className = "bar";
      row.textContent = label + " — " + (100 * prob).toFixed(1) + "%";
      const track = document.createElement("div");
      track.className = "track";
      const fill = document.createElement("div");
      fill.className = "fill";
      fill.style.width = (100 * prob).toFixed(1) + "%";
      track.append(fill);
      row.append(track);
      return row;
    }));
  } catch (err) {
    bars.textContent = err.message;
  }
});

fetch("/v1/info", { headers: headers(false) }).then((r) => r.json()).then((h) => {
  $("model").textContent = h.model + " · " + (h.index === null ? "no index" : h.index + " images");
}).catch(() => {});

// A search in the URL (/?q=a+cat&k=8) runs on load, so results can be linked and bookmarked.
const params = new URLSearchParams(location.search);
if (params.get("k")) $("k").value = params.get("k");
const initial = params.get("q");
if (initial) {
  $("query").value = initial;
  searchText(initial);
}
