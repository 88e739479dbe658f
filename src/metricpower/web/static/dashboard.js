// metricpower dashboard: draws the run page's charts from the JSON API and follows a
// run in progress. No inline script: the page passes URLs in data- attributes.
"use strict";

function drawCharts(url) {
  const status = document.getElementById("charts-status");
  fetch(url).then((r) => {
    if (!r.ok) throw new Error("charts: HTTP " + r.status);
    return r.json();
  }).then((charts) => {
    document.querySelectorAll("[data-chart]").forEach((el) => {
      const spec = charts[el.dataset.chart];
      if (!spec) return;
      if (!spec.data.length) {
        el.textContent = "Nothing of this kind was recorded in this run.";
        el.classList.add("missing");
        return;
      }
      Plotly.newPlot(el, spec.data, spec.layout,
        {responsive: true, displaylogo: false, modeBarButtonsToRemove: ["sendDataToCloud"]});
    });
    status.textContent = "Showing " + charts.who + " (" +
      charts.shown.toLocaleString("en") + ") in the citizen charts. Hover for values; " +
      "drag to zoom, double-click to reset; click a legend entry to hide it.";
    document.body.dataset.ready = "1";
  }).catch((e) => { status.textContent = String(e); status.classList.add("error"); });
}

function followJob(url, runUrl) {
  const bar = document.getElementById("progress");
  const state = document.getElementById("job-state");
  const result = document.getElementById("job-result");
  function poll() {
    fetch(url).then((r) => r.json()).then((job) => {
      bar.value = job.day;
      const words = {queued: "waiting to start", running: "simulating",
                     writing: "writing the run directory and its report",
                     done: "done", failed: "failed"}[job.state] || job.state;
      state.textContent = words + ": day " + job.day.toLocaleString("en") + " of " +
        job.days.toLocaleString("en") + " (" + job.elapsed + " s)";
      if (job.state === "done") {
        const a = document.createElement("a");
        a.href = runUrl;
        a.id = "run-link";
        a.textContent = "Open the run: " + job.run;
        result.replaceChildren(a);
        document.body.dataset.state = "done";
      } else if (job.state === "failed") {
        result.textContent = job.error;
        result.className = "error";
        document.body.dataset.state = "failed";
      } else {
        setTimeout(poll, 250);
      }
    }).catch(() => setTimeout(poll, 1000));
  }
  poll();
}

// Charts whose specification the page carries itself (a citizen's score).
function drawInline() {
  const own = document.querySelectorAll("[data-spec]");
  own.forEach((el) => {
    const spec = JSON.parse(el.dataset.spec);
    Plotly.newPlot(el, spec.data, spec.layout, {responsive: true, displaylogo: false});
  });
  if (own.length) document.body.dataset.ready = "1";
}

document.addEventListener("DOMContentLoaded", () => {
  const data = document.body.dataset;
  if (data.charts) drawCharts(data.charts);
  drawInline();
  if (data.job) followJob(data.job, data.runUrl);
  const who = document.getElementById("who");
  if (who) who.addEventListener("change", () => who.form.submit());
});
