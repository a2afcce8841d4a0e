// chunkload's cold-start timeline: hand-written, no library. Each .timeline element holds its
// data (JSON) and draws one start per cache state: time across, one lane per thread, each device
// read a bar coloured by the tier that served its last chunk, thin lines under it for the chunk
// fetches it waited on. Hovering (or tapping, or focusing) a bar shows what explain says about it.
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  function el(name, attrs, parent) {
    var e = document.createElementNS(NS, name);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }
  function ms(us, step) {
    var v = us / 1000, d = v >= 100 ? 0 : v >= 1 ? 1 : 3;
    if (step) d = step >= 1000 ? 0 : Math.min(3, Math.ceil(-Math.log10(step / 1000)));
    return v.toFixed(d) + " ms";
  }
  function niceStep(span, n) {
    var raw = span / n, p = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) if (steps[i] * p >= raw) return steps[i] * p;
    return 10 * p;
  }
  function setup(root) {
    var data = JSON.parse(root.querySelector(".tl-data").textContent);
    var select = root.querySelector(".tl-state");
    var plot = root.querySelector(".tl-plot");
    var detail = root.querySelector(".tl-detail");
    var summary = root.querySelector(".tl-summary");
    var hint = detail.textContent;
    var colour = {};
    data.tiers.forEach(function (t) { colour[t.name] = t.color; });
    function draw() {
      var st = data.states[Number(select.value) || 0];
      var width = Math.max(300, plot.clientWidth || 800);
      var left = 64, right = 16, top = 8, axis = 34;
      var lane = Math.max(22, Math.min(48, Math.floor(160 / st.threads.length)));
      var end = st.reads.reduce(function (m, r) { return Math.max(m, r.end_us); }, st.start_ms * 1000) || 1;
      var x = function (us) { return left + (width - left - right) * us / end; };
      var height = top + lane * st.threads.length + axis;
      plot.textContent = "";
      var svg = el("svg", { viewBox: "0 0 " + width + " " + height, width: width, height: height,
        role: "img", "aria-label": "timeline of " + st.label }, plot);
      var laneOf = {};
      st.threads.forEach(function (t, i) {
        laneOf[t] = i;
        var y = top + i * lane;
        el("rect", { x: left, y: y, width: width - left - right, height: lane, fill: i % 2 ? "#fafafa" : "#f0f0f0" }, svg);
        el("text", { x: left - 6, y: y + lane / 2 + 4, "text-anchor": "end" }, svg).textContent = "thread " + t;
      });
      var step = niceStep(end, width < 500 ? 4 : 8);
      for (var t = 0; t <= end + 1e-9; t += step) {
        el("line", { x1: x(t), x2: x(t), y1: top, y2: height - axis + 4, stroke: "#bbb", "stroke-width": 0.5 }, svg);
        el("text", { x: x(t), y: height - axis + 16, "text-anchor": "middle" }, svg).textContent = ms(t, step);
      }
      el("text", { x: left + (width - left - right) / 2, y: height - 4, "text-anchor": "middle" }, svg)
        .textContent = "time since the start's first access";
      st.reads.forEach(function (r, i) {
        var y = top + laneOf[r.thread] * lane;
        var w = Math.max(2, x(r.end_us) - x(r.start_us));
        var bar = el("rect", { x: x(r.start_us), y: y + 3, width: w, height: lane - 10,
          fill: colour[r.tier] || "#777", "class": "read", tabindex: 0, "data-read": i }, svg);
        el("title", {}, bar).textContent = r.op + " " + r.path + ": " + ms(r.end_us - r.start_us);
        r.chunks.forEach(function (c) {
          if (c.ready_us <= r.start_us || c.via === "hole") return;
          el("line", { x1: x(r.start_us), x2: x(c.ready_us), y1: y + lane - 5, y2: y + lane - 5,
            stroke: colour[c.tier] || "#777", "stroke-width": 2, "class": "fetch" }, svg);
        });
        function show() {
          var old = svg.querySelector(".read.chosen");
          if (old) old.classList.remove("chosen");
          bar.classList.add("chosen");
          detail.textContent = r.story;
        }
        bar.addEventListener("mouseenter", show);
        bar.addEventListener("focus", show);
        bar.addEventListener("click", show);
      });
      var n = st.threads.length;
      summary.textContent = st.reads.length + " device reads on " + n + (n === 1 ? " thread" : " threads") +
        "; the start took " + ms(st.start_ms * 1000) + ".";
      detail.textContent = hint;
    }
    select.addEventListener("change", draw);
    var last = 0;
    window.addEventListener("resize", function () {
      if (plot.clientWidth !== last) { last = plot.clientWidth; draw(); }
    });
    last = plot.clientWidth;
    draw();
  }
  document.querySelectorAll(".timeline").forEach(setup);
})();
