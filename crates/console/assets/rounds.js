// Live rounds: the chart of the rounds page, and server-sent events that
// append each finished round (rows rendered by the server) and the status.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("rounds-data").textContent);
  var body = document.getElementById("rounds-body");
  var chart = document.getElementById("chart");
  var xs = [], acc = [], loss = [];
  data.forEach(function (r) { xs.push(r.round); acc.push(r.accuracy); loss.push(r.loss); });
  var plot = new uPlot({
    width: Math.max(320, chart.clientWidth || 640), height: 280, legend: { show: false },
    scales: { x: { time: false } },
    series: [{}, { label: "test accuracy", stroke: "#0b5cad", scale: "acc" },
             { label: "training loss", stroke: "#9a4a00", scale: "loss" }],
    axes: [{ label: "round" }, { scale: "acc", label: "accuracy" },
           { scale: "loss", side: 1, label: "loss", grid: { show: false } }]
  }, [xs, acc, loss], chart);
  var last = Number(body.dataset.last || 0);
  var events = new EventSource("/rounds/events?after=" + last);
  var live = document.getElementById("live");
  events.onopen = function () { live.textContent = "live"; live.className = "good"; };
  events.addEventListener("round", function (e) {
    var r = JSON.parse(e.data);
    if (r.round <= last) { return; }
    last = r.round;
    body.insertAdjacentHTML("beforeend", r.row);
    xs.push(r.round); acc.push(r.accuracy); loss.push(r.loss);
    plot.setData([xs, acc, loss]);
    document.getElementById("rounds-done").textContent = String(body.rows.length);
  });
  events.addEventListener("phase", function (e) {
    document.getElementById("phase").textContent = e.data;
    if (e.data === "Completed" || e.data.indexOf("Failed") === 0) {
      events.close();
      live.textContent = "plan over";
    }
  });
  events.addEventListener("step", function (e) { live.textContent = "live · " + e.data; });
})();
