// The genstack playground: one prompt to several models, their results side
// by side. No framework and no build step; it talks to the API the page's
// config.json names, with the key the user enters (kept in this tab's
// sessionStorage, never in a URL or a cookie).
import { renderMarkdown } from "./markdown.js";

const TERMINAL = new Set(["COMPLETED", "PARTIAL", "FAILED", "BUDGET_EXCEEDED", "CANCELLED"]);
const KEY = "genstack.apiKey";
const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, error) {
    super(error.message || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "";
    this.details = error.details || {};
  }
}

const state = { apiUrl: "", models: [], jobId: null, polling: null };

async function api(method, path, body) {
  const key = sessionStorage.getItem(KEY);
  if (!key) throw new ApiError(401, { message: "enter an API key first", code: "NO_KEY" });
  const headers = { "x-api-key": key };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(state.apiUrl + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    // No answer the page may read: the network, or an origin the API's CORS does not allow.
    throw new ApiError(0, { message: `the API at ${state.apiUrl} could not be reached from this page`, code: "UNREACHABLE" });
  }
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (!response.ok) {
    const error = data && data.error ? data.error : { message: (data && data.message) || text || response.statusText };
    throw new ApiError(response.status, error);
  }
  return data;
}

// Amounts as the API records them (to 8 decimals), without trailing zeros:
// the columns then add up to the job's total on screen too.
function usd(value) {
  const fixed = Number(value || 0).toFixed(8).replace(/0+$/, "");
  return `$${fixed.endsWith(".") ? `${fixed}00` : fixed.replace(/\.(\d)$/, ".$10")}`;
}

function show(id, message) { $(id).textContent = message || ""; }

// --------------------------------------------------------------- the key
async function useKey(key) {
  sessionStorage.setItem(KEY, key);
  show("key-status", "Loading this deployment's models…");
  try {
    const catalog = await api("GET", "/models");
    state.models = catalog.models;
    show("key-status", `Key accepted: ${state.models.length} models enabled.`);
    renderModels();
    await Promise.all([refreshSpend(), refreshHistory()]);
  } catch (error) {
    show("key-status", error.status === 403 ? "This key is not valid for this deployment." : error.message);
  }
}

async function refreshSpend() {
  const usage = await api("GET", "/usage");
  const month = usage.months[usage.months.length - 1];
  show("spend", `This month (${month.period}): ${usd(month.spentUsd)} spent of ${usd(usage.monthlyBudgetUsd)}; ${usd(month.remainingUsd)} left.`);
}

// ------------------------------------------------------------ the models
function renderModels() {
  const kind = $("kind").value;
  const fieldset = $("models");
  fieldset.querySelectorAll("label, p").forEach((n) => n.remove());
  const usable = state.models.filter((m) => m.kinds.includes(kind));
  if (!usable.length) {
    const p = document.createElement("p");
    p.className = "hint";
    p.textContent = `No ${kind} model is enabled in this deployment.`;
    fieldset.append(p);
  }
  usable.forEach((model, i) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.name = "model";
    box.value = model.id;
    box.id = `model-${i}`;
    box.disabled = !model.available;
    const price = model.pricing.perImageUsd !== undefined && kind === "image"
      ? `${usd(model.pricing.perImageUsd)} an image`
      : `${usd(model.pricing.inputPer1kTokensUsd)} / ${usd(model.pricing.outputPer1kTokensUsd)} per 1k tokens in/out`;
    label.append(box, `${model.id} (${model.providerName}; ${price})${model.available ? "" : " — its provider has no key"}`);
    fieldset.append(label);
  });
  document.querySelectorAll(".text-only").forEach((n) => { n.hidden = kind === "image"; });
  document.querySelectorAll(".image-only").forEach((n) => { n.hidden = kind === "text"; });
}

// ------------------------------------------------------------ a request
function jobRequest() {
  const kind = $("kind").value;
  const body = { kind, models: [...document.querySelectorAll('input[name="model"]:checked')].map((b) => b.value) };
  const template = $("template-id").value.trim();
  if (template) {
    body.template = { id: template };
    const raw = $("variables").value.trim();
    if (raw) {
      try { body.variables = JSON.parse(raw); } catch { throw new ApiError(400, { message: "template variables must be a JSON object", details: { field: "variables" } }); }
    }
  } else {
    body.prompt = $("prompt").value;
  }
  const parameters = {};
  const numbers = kind === "image" ? ["width", "height"] : ["temperature", "max-tokens"];
  for (const id of numbers) {
    const value = $(id).value;
    if (value !== "") parameters[id === "max-tokens" ? "maxTokens" : id] = Number(value);
  }
  if (kind !== "image" && $("system").value.trim()) parameters.system = $("system").value;
  if (Object.keys(parameters).length) body.parameters = parameters;
  if ($("budget").value !== "") body.budgetUsd = Number($("budget").value);
  return body;
}

function showError(error) {
  // details: {field, ...} from a refusal of the handlers, or [{field, message}, ...] from validation.
  const details = Array.isArray(error.details) ? error.details[0] || {} : error.details || {};
  const field = String(details.field || "");
  const message = error.code ? `${error.message} (${error.code})` : error.message;
  if (field === "prompt" || field.startsWith("messages")) {
    show("prompt-error", message);
  } else {
    show("job-error", message);
  }
}

async function submit(event) {
  event.preventDefault();
  show("job-error");
  show("prompt-error");
  try {
    const accepted = await api("POST", "/generate", jobRequest());
    openJob(accepted.jobId);
  } catch (error) {
    showError(error);
  }
}

async function enhance() {
  show("prompt-error");
  try {
    const result = await api("POST", "/enhance", { prompt: $("prompt").value, kind: $("kind").value });
    show("enhanced-original", result.original);
    show("enhanced-improved", result.prompt);
    $("enhanced").hidden = false;
  } catch (error) {
    showError(error);
  }
}

// ------------------------------------------------------------- a job
function openJob(jobId) {
  state.jobId = jobId;
  clearTimeout(state.polling);
  $("results").replaceChildren();
  poll();
}

async function poll() {
  const jobId = state.jobId;
  try {
    const job = await api("GET", `/status/${encodeURIComponent(jobId)}`);
    if (jobId !== state.jobId) return;
    renderJob(job);
    const running = !TERMINAL.has(job.status);
    $("cancel").disabled = !running;
    if (running) {
      state.polling = setTimeout(poll, 1000);
    } else {
      refreshHistory();
      refreshSpend().catch(() => {});
    }
  } catch (error) {
    show("job-summary", error.message);
  }
}

function renderJob(job) {
  const total = job.results.reduce((sum, r) => sum + Number(r.costUsd || 0), 0);
  show("job-summary", `Job ${job.jobId}: ${job.status}. Total cost ${usd(job.costUsd)}${job.error ? ` — ${job.error}` : ""}`);
  $("job-summary").dataset.totalUsd = String(job.costUsd);
  $("job-summary").dataset.sumUsd = String(total);
  $("results").replaceChildren(...job.results.map((result) => renderResult(result)));
}

function renderResult(result) {
  const column = document.createElement("article");
  column.className = "result";
  column.dataset.model = result.model;
  const title = document.createElement("h3");
  title.textContent = result.model;
  const status = document.createElement("p");
  status.className = `status status-${result.status}`;
  status.textContent = result.status + (result.error ? `: ${result.error.message || result.error}` : "");
  column.append(title, status);
  if (result.status === "SUCCEEDED" || result.url) {
    if (result.kind === "text" && result.text !== undefined) {
      column.append(renderMarkdown(result.text));
    } else if (result.kind === "image" || result.kind === "chart") {
      const img = document.createElement("img");
      img.src = result.url;
      img.alt = `${result.kind} from ${result.model}`;
      column.append(img);
      if (result.files && result.files["vl.json"]) {
        const spec = document.createElement("a");
        spec.href = result.files["vl.json"];
        spec.textContent = "Vega-Lite spec";
        spec.rel = "noopener noreferrer";
        column.append(spec);
      }
    }
    if (result.url && result.kind === "text") {
      const link = document.createElement("a");
      link.href = result.url;
      link.textContent = "full output";
      link.rel = "noopener noreferrer";
      column.append(link);
    }
  }
  const meta = document.createElement("p");
  meta.className = "meta";
  const parts = [];
  if (result.latencyMs !== undefined) parts.push(`${result.latencyMs} ms`);
  if (result.inputTokens !== undefined) parts.push(`${result.inputTokens} in / ${result.outputTokens} out tokens`);
  parts.push(`cost ${usd(result.costUsd)}`);
  meta.textContent = parts.join(" · ");
  meta.dataset.costUsd = String(result.costUsd || 0);
  column.append(meta);
  return column;
}

async function cancel() {
  try {
    await api("POST", `/jobs/${encodeURIComponent(state.jobId)}/cancel`);
    poll();
  } catch (error) {
    show("job-error", error.message);
  }
}

// ------------------------------------------------------------ history
async function refreshHistory() {
  const page = await api("GET", "/jobs?limit=20");
  $("history").replaceChildren(...page.jobs.map((job) => {
    const li = document.createElement("li");
    const open = document.createElement("button");
    open.type = "button";
    open.textContent = "Open";
    open.setAttribute("aria-label", `Open job ${job.jobId}`);
    open.addEventListener("click", () => openJob(job.jobId));
    li.append(open, ` ${job.createdAt} · ${job.kind} · ${job.models.join(", ")} · ${job.status} · ${usd(job.costUsd)}`);
    li.dataset.jobId = job.jobId;
    return li;
  }));
}

// ------------------------------------------------------------- start
async function start() {
  const config = await (await fetch("config.json")).json();
  state.apiUrl = config.apiUrl.replace(/\/$/, "");
  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    useKey($("api-key").value.trim());
  });
  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    $("api-key").value = "";
    show("key-status", "Key forgotten.");
  });
  $("kind").addEventListener("change", renderModels);
  $("job-form").addEventListener("submit", submit);
  $("enhance").addEventListener("click", enhance);
  $("use-improved").addEventListener("click", () => {
    $("prompt").value = $("enhanced-improved").textContent;
    $("enhanced").hidden = true;
  });
  $("cancel").addEventListener("click", cancel);
  $("refresh-history").addEventListener("click", () => refreshHistory().catch((e) => show("job-error", e.message)));
  const saved = sessionStorage.getItem(KEY);
  if (saved) {
    $("api-key").value = saved;
    useKey(saved);
  }
}

start();
