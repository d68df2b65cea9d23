// amphub pages: copy buttons, self-submitting selects, forms that call the JSON API,
// and live task progress. Everything here is optional sugar over server-rendered pages,
// except the forms marked .api-form, which are the JSON API's own calls.
"use strict";

const csrfToken = () => document.querySelector('meta[name="csrf-token"]').content;

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  // Plain http on another host: the clipboard API is not offered there.
  const area = document.createElement("textarea");
  area.value = text;
  area.setAttribute("readonly", "");
  area.className = "sr-only";
  document.body.appendChild(area);
  area.select();
  document.execCommand("copy");
  area.remove();
}

function setUpCopyButtons() {
  for (const button of document.querySelectorAll("button[data-copy]")) {
    button.addEventListener("click", async () => {
      const source = document.getElementById(button.dataset.copy);
      const label = button.textContent;
      try {
        await copyText(source.textContent);
        button.textContent = "Copied";
      } catch {
        button.textContent = "Press Ctrl+C";
      }
      setTimeout(() => { button.textContent = label; }, 1500);
    });
  }
}

function setUpAutoSubmit() {
  for (const select of document.querySelectorAll("select[data-autosubmit]")) {
    select.addEventListener("change", () => select.form.requestSubmit());
  }
}

// The JSON body of an .api-form: named fields, empty ones left out, numbers as numbers.
// Fields named in the URL template ({user}) go into the URL instead.
function formRequest(form) {
  const body = {};
  let url = form.dataset.url;
  for (const field of form.querySelectorAll("input[name], select[name], textarea[name]")) {
    if (field.hasAttribute("data-local")) continue;
    if ((field.type === "radio" || field.type === "checkbox") && !field.checked) continue;
    const value = field.value.trim();
    if (url.includes(`{${field.name}}`)) {
      url = url.replace(`{${field.name}}`, encodeURIComponent(value));
    } else if (value !== "") {
      body[field.name] = field.type === "number" ? Number(value) : value;
    }
  }
  return { url, body };
}

function show(output, text, kind) {
  output.className = `result ${kind}`;
  output.textContent = text;
}

function afterSuccess(form, answer, output) {
  const then = form.dataset.then || "reload";
  if (then === "reload") {
    window.location.reload();
  } else if (then === "task") {
    show(output, `Task #${answer.id} ${answer.status}. `, "ok");
    const link = document.createElement("a");
    link.href = `/-/tasks#task-${answer.id}`;
    link.textContent = "Follow it";
    output.appendChild(link);
  } else if (then === "model") {
    window.location.assign(`/${answer.space}/${answer.id}`);
  } else if (then.startsWith("go:")) {
    window.location.assign(then.slice(3));
  }
}

async function submitToApi(form, event) {
  event.preventDefault();
  const output = form.querySelector("output.result");
  for (const field of form.querySelectorAll("[data-must-equal]")) {
    if (field.value.trim() !== field.dataset.mustEqual) {
      show(output, `Type ${field.dataset.mustEqual} to confirm.`, "error");
      return;
    }
  }
  const { url, body } = formRequest(form);
  const method = form.dataset.method;
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const response = await fetch(url, {
      method,
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrfToken() },
      body: method === "DELETE" ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
    const answer = response.status === 204 ? {} : await response.json();
    if (!response.ok) {
      show(output, answer.error ? answer.error.message : `failed (${response.status})`, "error");
      return;
    }
    afterSuccess(form, answer, output);
  } catch (error) {
    show(output, `failed: ${error.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

function setUpApiForms() {
  for (const form of document.querySelectorAll("form.api-form")) {
    form.addEventListener("submit", (event) => submitToApi(form, event));
  }
}

// Lists a form may choose from (zones, deploy targets), when the caller may read them.
async function fillDatalists() {
  for (const list of document.querySelectorAll("datalist[data-source]")) {
    const response = await fetch(list.dataset.source, { credentials: "same-origin" });
    if (!response.ok) continue;
    const answer = await response.json();
    for (const item of answer[list.dataset.key] || []) {
      const option = document.createElement("option");
      option.value = item.name;
      list.appendChild(option);
    }
  }
}

const FINISHED = new Set(["succeeded", "failed", "canceled"]);

async function followTask(row) {
  const response = await fetch(`/api/v1/tasks/${row.dataset.task}`, { credentials: "same-origin" });
  if (!response.ok) return false;
  const task = await response.json();
  const status = row.querySelector('[data-field="status"]');
  status.textContent = task.status;
  status.className = `status s-${task.status}`;
  const verdict = row.querySelector('[data-field="verdict"]');
  verdict.textContent = task.verdict || "";
  verdict.className = task.verdict ? `status s-${task.verdict}` : "";
  const progress = row.querySelector('[data-field="progress"]');
  progress.value = task.status === "succeeded" ? 100 : task.progress;
  progress.textContent = `${task.progress}%`;
  row.querySelector('[data-field="message"]').textContent = task.message;
  if (FINISHED.has(task.status)) {
    row.removeAttribute("data-task");
    row.dataset.finished = task.status;
    return false;
  }
  return true;
}

function followTasks() {
  const rows = [...document.querySelectorAll("tr[data-task]")];
  if (rows.length === 0) return;
  const tick = async () => {
    const going = await Promise.all(rows.filter((row) => row.dataset.task).map(followTask));
    if (going.some(Boolean)) setTimeout(tick, 1000);
  };
  setTimeout(tick, 500);
}

// On a phone the filters start folded, so the results come first.
function foldFiltersWhenNarrow() {
  if (!window.matchMedia("(max-width: 760px)").matches) return;
  for (const details of document.querySelectorAll("details[data-close-narrow]")) {
    details.open = false;
  }
}

// Tabs: one panel shown at a time; arrow keys move between tabs (WAI-ARIA tabs pattern).
function setUpTabs() {
  for (const list of document.querySelectorAll('[role="tablist"]')) {
    const tabs = [...list.querySelectorAll('[role="tab"]')];
    const choose = (chosen) => {
      for (const tab of tabs) {
        const on = tab === chosen;
        tab.setAttribute("aria-selected", String(on));
        tab.tabIndex = on ? 0 : -1;
        document.getElementById(tab.getAttribute("aria-controls")).hidden = !on;
      }
    };
    tabs.forEach((tab, at) => {
      tab.addEventListener("click", () => choose(tab));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (!step) return;
        const next = tabs[(at + step + tabs.length) % tabs.length];
        choose(next);
        next.focus();
      });
    });
    list.hidden = false;
    choose(tabs.find((tab) => tab.getAttribute("aria-selected") === "true") || tabs[0]);
  }
}

setUpCopyButtons();
setUpAutoSubmit();
setUpTabs();
foldFiltersWhenNarrow();
setUpApiForms();
fillDatalists();
followTasks();
