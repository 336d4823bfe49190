// photokit gallery: face selection, before/after slider, live job progress. No dependencies.
"use strict";

function setupSelection() {
  const form = document.getElementById("faces-form");
  if (!form) return;
  const count = document.getElementById("selected-count");
  const update = () => {
    const picked = form.querySelectorAll("input.pick:checked");
    count.textContent = picked.length + " selected";
    form.querySelectorAll(".card.face").forEach((card) => {
      card.classList.toggle("selected", card.querySelector("input.pick").checked);
    });
  };
  form.addEventListener("change", update);
  form.addEventListener("submit", (event) => {
    const button = event.submitter;
    const bulk = button && (button.id === "move-button" || button.id === "split-button");
    if (bulk && !form.querySelector("input.pick:checked")) {
      event.preventDefault();
      count.textContent = "select faces first";
    }
    if (button && button.id === "move-button" && !document.getElementById("move-input").value.trim()) {
      event.preventDefault();
      count.textContent = "who should they move to?";
    }
    if (button && button.name === "single") {  // "not this person" acts on its own face only
      form.querySelectorAll("input.pick").forEach((box) => { box.checked = false; });
    }
  });
  update();
}

function setupCompare() {
  const compare = document.getElementById("compare");
  if (!compare) return;
  const slider = document.getElementById("slider");
  const clip = document.getElementById("before-clip");
  const before = document.getElementById("before-image");
  const after = document.getElementById("after-image");
  const actual = document.getElementById("actual-size");
  const layout = () => {
    clip.style.width = slider.value + "%";
    before.style.width = after.clientWidth + "px";  // the input, drawn at the output's size
    before.style.height = after.clientHeight + "px";
  };
  slider.addEventListener("input", layout);
  after.addEventListener("load", layout);
  window.addEventListener("resize", layout);
  actual.addEventListener("change", () => { compare.classList.toggle("actual", actual.checked); layout(); });
  layout();
}

function renderJob(row, job) {
  const status = row.querySelector(".status");
  status.className = "status " + job.status;
  status.textContent = job.status + (job.cancel_requested && job.status === "running" ? " (stopping)" : "");
  const bar = row.querySelector("progress");
  bar.max = job.total || 1;
  bar.value = job.total ? job.done : 0;
  row.querySelector(".stage").textContent = job.stage || "";
  const notes = row.querySelector(".notes");
  notes.replaceChildren();
  for (const [level, text] of job.notes.slice(-6)) {
    const div = document.createElement("div");
    div.className = level;
    div.textContent = text;
    notes.append(div);
  }
  if (job.error) {
    const div = document.createElement("div");
    div.className = "bad";
    div.textContent = job.error;
    notes.append(div);
  }
  if (!["queued", "running"].includes(job.status)) {
    const cancel = row.querySelector("form");
    if (cancel) cancel.remove();
  }
}

function setupJobs() {
  const table = document.getElementById("jobs");
  if (!table) return;
  const poll = async () => {
    try {
      const response = await fetch(table.dataset.poll, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return;
      const data = await response.json();
      let unknown = false;
      for (const job of data.jobs) {
        const row = table.querySelector(`tr[data-job="${job.id}"]`);
        if (row) renderJob(row, job); else unknown = true;
      }
      if (unknown) window.location.reload();
    } catch (err) {
      /* the server may be restarting: try again on the next tick */
    }
  };
  setInterval(poll, 1500);
}

document.addEventListener("DOMContentLoaded", () => {
  setupSelection();
  setupCompare();
  setupJobs();
});
