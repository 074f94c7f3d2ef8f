// The review app's only script: draws the trend charts from the JSON the page carries and opens a run when one
// of its points is clicked. No inline script anywhere (the Content-Security-Policy allows scripts from /static only).
(function () {
  "use strict";
  function draw() {
    var charts = document.querySelectorAll("div.chart[data-figure]");
    for (var i = 0; i < charts.length; i++) {
      var div = charts[i];
      var data = document.getElementById(div.getAttribute("data-figure"));
      if (!data || typeof Plotly === "undefined") continue;
      var fig = JSON.parse(data.textContent);
      Plotly.newPlot(div, fig.data, fig.layout, { displaylogo: false, responsive: true });
      div.on("plotly_click", function (ev) {
        var p = ev && ev.points && ev.points[0];
        var run = p && p.customdata;
        if (typeof run === "string" && /^[A-Za-z0-9][A-Za-z0-9._@-]*$/.test(run)) {
          window.location.href = "/runs/" + encodeURIComponent(run);
        }
      });
    }
    document.body.setAttribute("data-charts", String(charts.length));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();

// A citation [n] in an answer opens the passage it points to (passages start collapsed in the labelling form).
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest("a.cite");
  if (!link || !link.hash) return;
  const target = document.querySelector(link.hash);
  for (let node = target; node; node = node.parentElement) {
    if (node.tagName === "DETAILS") node.open = true;
  }
});

// Compare: each candidate field lists the candidates of the run picked beside it (the page carries them as JSON).
document.addEventListener("change", (event) => {
  const run = event.target;
  if (!run || run.tagName !== "SELECT") return;
  const data = document.getElementById("run-candidates");
  const field = document.querySelector(`select[data-run-select="${run.id}"]`);
  if (!data || !field) return;
  const names = JSON.parse(data.textContent)[run.value] || [];
  const keep = field.value;
  while (field.options.length > 1) field.remove(1);
  for (const name of names) field.add(new Option(name, name, false, name === keep));
});
