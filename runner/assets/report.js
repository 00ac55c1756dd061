// The sales KPI report: reads the JSON embedded in the page, sums numerators
// and denominators over the chosen months and team, and draws SVG charts.
// No library, no network.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("kpi-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const MONTHS = DATA.months;
  const TEAM_NAMES = Object.fromEntries(DATA.teams.map((t) => [t.id, t.name]));
  const state = {
    from: MONTHS[0],
    to: MONTHS[MONTHS.length - 1],
    team: "",
    sort: {},
  };

  // -- numbers -------------------------------------------------------------

  const currency = new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: DATA.currency,
    maximumFractionDigits: 0,
  });
  const UNIT_SUFFIX = { pct: "%", days: " days", minutes: " min", count: "", currency: "" };
  const UNIT_NAME = {
    pct: "%",
    days: "days",
    minutes: "minutes",
    count: "activities",
    currency: DATA.currency,
  };

  const compact = new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: DATA.currency,
    notation: "compact",
    maximumFractionDigits: 1,
  });

  function fmt(kpi, value, short) {
    if (value === null || value === undefined || Number.isNaN(value)) return "–";
    if (kpi.unit === "currency") return short && Math.abs(value) >= 1e4 ? compact.format(value) : currency.format(value);
    const digits = kpi.unit === "count" ? 0 : Math.abs(value) >= 100 ? 0 : 1;
    return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits }) + UNIT_SUFFIX[kpi.unit];
  }

  function tickFmt(kpi, value) {
    if (kpi.unit === "currency") return Math.abs(value) >= 1e3 ? compact.format(value) : currency.format(value);
    return trim(value) + (kpi.unit === "pct" ? "%" : "");
  }

  function trim(v) {
    return Number(v.toFixed(2)).toLocaleString("en-US");
  }

  function monthLabel(m, withYear) {
    const d = new Date(m + "T00:00:00Z");
    const name = d.toLocaleString("en-US", { month: "short", timeZone: "UTC" });
    return withYear ? name + " " + d.getUTCFullYear() : name + " " + String(d.getUTCFullYear()).slice(2);
  }

  // sum(numerator) / sum(denominator) x scale, or the plain sum
  function value(kpi, n, d) {
    if (kpi.denominator === null) return n;
    return d ? (n / d) * kpi.scale : null;
  }

  function inRange(m) {
    return m >= state.from && m <= state.to;
  }

  // rows: [month, level, team_id, rep_id, numerator, denominator, reference, breakdown]
  function sums(kpi, keep, keyOf) {
    const out = new Map();
    for (const r of kpi.rows) {
      if (!keep(r)) continue;
      const key = keyOf(r);
      const acc = out.get(key) || { n: 0, d: 0, ref: 0 };
      acc.n += r[4] || 0;
      acc.d += r[5] || 0;
      acc.ref += r[6] || 0;
      out.set(key, acc);
    }
    return out;
  }

  function scopeRow(kpi) {
    // the trend and cards: the chosen team's rows, else the company's
    if (state.team && !kpi.company_only) return (r) => r[1] === "team" && r[2] === state.team;
    return (r) => r[1] === "company";
  }

  function monthly(kpi) {
    const keep = scopeRow(kpi);
    const by = sums(kpi, (r) => keep(r) && inRange(r[0]), (r) => r[0]);
    return MONTHS.filter(inRange).map((m) => {
      const s = by.get(m);
      return { month: m, value: s ? value(kpi, s.n, s.d) : kpi.denominator === null ? 0 : null, n: s ? s.n : 0, d: s ? s.d : 0, ref: s ? s.ref : 0 };
    });
  }

  function byTeam(kpi) {
    const by = sums(kpi, (r) => r[1] === "team" && inRange(r[0]), (r) => r[2]);
    return [...by.entries()]
      .map(([team, s]) => ({ key: team, name: team === null ? "No team" : TEAM_NAMES[team] || team, value: value(kpi, s.n, s.d), n: s.n, d: s.d }))
      .sort((a, b) => String(a.key).localeCompare(String(b.key)));
  }

  function byBreakdown(kpi) {
    const keep = scopeRow(kpi);
    const by = sums(kpi, (r) => keep(r) && inRange(r[0]), (r) => r[7]);
    return kpi.breakdown_values.filter((b) => by.has(b)).map((b) => {
      const s = by.get(b);
      return { key: b, name: b, value: value(kpi, s.n, s.d), n: s.n, d: s.d };
    });
  }

  function byRep(kpi) {
    const keep = (r) => r[1] === "rep" && inRange(r[0]) && (!state.team || r[2] === state.team);
    const by = sums(kpi, keep, (r) => r[3] + "\u0000" + (r[2] || ""));
    return [...by.entries()].map(([key, s]) => {
      const [rep, team] = key.split("\u0000");
      const info = DATA.reps[rep];
      return {
        rep: info ? info.name : rep,
        team: team ? TEAM_NAMES[team] || team : "No team",
        n: s.n,
        d: s.d,
        value: value(kpi, s.n, s.d),
      };
    });
  }

  // -- DOM helpers ---------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c) node.append(c);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceTicks(lo, hi, count) {
    if (lo === hi) hi = lo + 1;
    const raw = (hi - lo) / count;
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 2.5, 5, 10].map((f) => f * mag).find((s) => s >= raw);
    const start = Math.floor(lo / step) * step;
    const ticks = [];
    for (let v = start; v <= hi + step * 1e-9; v += step) ticks.push(Number(v.toFixed(10)));
    if (ticks[ticks.length - 1] < hi) ticks.push(ticks[ticks.length - 1] + step);
    return ticks;
  }

  // -- charts --------------------------------------------------------------

  function trendChart(kpi, points, width) {
    const narrow = width < 520;
    const m = { top: kpi.reference ? 28 : 16, right: 26, bottom: 46, left: narrow ? 58 : 70 };
    const h = narrow ? 220 : 250;
    const w = Math.max(width, 260);
    const root = svg("svg", { class: "chart trend", width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": kpi.title + " by month" });
    const vals = points.map((p) => p.value).filter((v) => v !== null);
    if (kpi.reference) vals.push(...points.map((p) => p.ref));
    const lo = Math.min(0, ...vals);
    const hi = vals.length ? Math.max(...vals) : 1;
    const ticks = niceTicks(lo, hi, narrow ? 4 : 5);
    const y0 = ticks[0], y1 = ticks[ticks.length - 1];
    const iw = w - m.left - m.right, ih = h - m.top - m.bottom;
    const x = (i) => m.left + (points.length === 1 ? iw / 2 : (i * iw) / (points.length - 1));
    const y = (v) => m.top + ih - ((v - y0) / (y1 - y0 || 1)) * ih;
    for (const t of ticks) {
      root.append(svg("line", { x1: m.left, x2: w - m.right, y1: y(t), y2: y(t), class: t === 0 ? "axis" : "grid" }));
      root.append(svg("text", { x: m.left - 6, y: y(t) + 4, class: "tick", "text-anchor": "end" }, tickFmt(kpi, t)));
    }
    const every = Math.ceil(points.length / Math.max(1, Math.floor(iw / (narrow ? 44 : 56))));
    points.forEach((p, i) => {
      if (i % every === 0 || i === points.length - 1) {
        if (i !== points.length - 1 && points.length - 1 - i < every) return;
        root.append(svg("text", { x: x(i), y: h - m.bottom + 16, class: "tick", "text-anchor": "middle" }, monthLabel(p.month)));
      }
    });
    root.append(svg("text", { x: m.left + iw / 2, y: h - 6, class: "axis-title", "text-anchor": "middle" }, kpi.x_label === "month" ? "Month" : "Month (" + kpi.x_label + ")"));
    root.append(svg("text", { x: 12, y: m.top + ih / 2, class: "axis-title", "text-anchor": "middle", transform: `rotate(-90 12 ${m.top + ih / 2})` }, kpi.title + " (" + UNIT_NAME[kpi.unit] + ")"));
    let path = "";
    let pen = false;
    points.forEach((p, i) => {
      if (p.value === null) { pen = false; return; }
      path += (pen ? "L" : "M") + x(i).toFixed(1) + "," + y(p.value).toFixed(1);
      pen = true;
    });
    if (kpi.reference && points.length) {
      const ref = points.map((p, i) => (i ? "L" : "M") + x(i).toFixed(1) + "," + y(p.ref).toFixed(1)).join("");
      root.append(svg("path", { d: ref, class: "ref-line" }));
      // a legend, top right
      const lx = w - m.right - 160;
      root.append(svg("line", { x1: lx, x2: lx + 18, y1: 8, y2: 8, class: "line" }));
      root.append(svg("text", { x: lx + 22, y: 12, class: "tick" }, kpi.numerator_label));
      root.append(svg("line", { x1: lx + 100, x2: lx + 118, y1: 8, y2: 8, class: "ref-line" }));
      root.append(svg("text", { x: lx + 122, y: 12, class: "tick" }, kpi.reference_label));
    }
    root.append(svg("path", { d: path, class: "line" }));
    points.forEach((p, i) => {
      if (p.value === null) return;
      const c = svg("circle", { cx: x(i), cy: y(p.value), r: narrow ? 3.5 : 4, class: "point", "data-month": p.month, "data-value": p.value });
      const against = kpi.reference ? `, ${kpi.reference_label.toLowerCase()} ${fmt(kpi, p.ref)}` : "";
      c.append(svg("title", {}, monthLabel(p.month, true) + ": " + fmt(kpi, p.value) + detail(kpi, p) + against));
      root.append(c);
    });
    return root;
  }

  function detail(kpi, p) {
    if (kpi.denominator === null) return "";
    return ` (${fmtCount(kpi, p.n, "numerator")} / ${fmtCount(kpi, p.d)} ${kpi.denominator_label.toLowerCase()})`;
  }

  function fmtCount(kpi, v, which) {
    if (which === "numerator" && kpi.unit === "currency") return currency.format(v);
    return Math.round(v).toLocaleString("en-US");
  }

  // one bar per item ({key, name, value}); cls names the chart, attr the item
  function barChart(kpi, teams, width, cls, attr, selectedKey) {
    // wide: names left of the bars; narrow: names above them, bars full width
    const narrow = width < 520;
    const label = narrow ? 8 : 140;
    const nameH = narrow ? 16 : 0;
    const barH = 22, gap = 8, top = 6, bottom = 34;
    const row = nameH + barH + gap;
    const w = Math.max(width, 260);
    const h = top + teams.length * row + bottom;
    const root = svg("svg", { class: "chart " + cls, width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": kpi.title + " by " + attr });
    const vals = teams.map((t) => t.value).filter((v) => v !== null);
    const hi = vals.length ? Math.max(...vals, 0) : 1;
    const lo = Math.min(0, ...vals);
    const ticks = niceTicks(lo, hi, narrow ? 3 : 4);
    const v0 = ticks[0], v1 = ticks[ticks.length - 1];
    const valueRoom = narrow ? 64 : 76;
    const iw = w - label - valueRoom - 8;
    const x = (v) => label + ((v - v0) / (v1 - v0 || 1)) * iw;
    const base = top + teams.length * row;
    for (const t of ticks) {
      root.append(svg("line", { x1: x(t), x2: x(t), y1: top, y2: base, class: t === 0 ? "axis" : "grid" }));
      root.append(svg("text", { x: x(t), y: base + 14, class: "tick", "text-anchor": "middle" }, tickFmt(kpi, t)));
    }
    root.append(svg("text", { x: label + iw / 2, y: h - 4, class: "axis-title", "text-anchor": "middle" }, kpi.title + " (" + UNIT_NAME[kpi.unit] + "), chosen months"));
    teams.forEach((t, i) => {
      const yy = top + i * row + nameH;
      if (narrow) root.append(svg("text", { x: label, y: yy - 4, class: "bar-label" }, t.name));
      else {
        const name = t.name.length > 20 ? t.name.slice(0, 19) + "…" : t.name;
        root.append(svg("text", { x: label - 6, y: yy + barH / 2 + 4, class: "bar-label", "text-anchor": "end" }, name));
      }
      if (t.value === null) {
        root.append(svg("text", { x: x(0) + 4, y: yy + barH / 2 + 4, class: "tick" }, "no data"));
        return;
      }
      const x0 = x(Math.min(0, t.value)), x1 = x(Math.max(0, t.value));
      const selected = selectedKey && t.key === selectedKey;
      const bar = svg("rect", { x: x0, y: yy, width: Math.max(1, x1 - x0), height: barH, rx: 3, class: "bar" + (selected ? " selected" : ""), ["data-" + attr]: t.key === null ? "" : t.key, "data-value": t.value });
      bar.append(svg("title", {}, t.name + ": " + fmt(kpi, t.value) + detail(kpi, t)));
      root.append(bar);
      root.append(svg("text", { x: x1 + 4, y: yy + barH / 2 + 4, class: "bar-value" }, fmt(kpi, t.value, true)));
    });
    return root;
  }

  function repTable(kpi, reps) {
    const cols = [
      { key: "rep", label: "Rep", text: true },
      { key: "team", label: "Team", text: true, opt: true },
      { key: "n", label: kpi.numerator_label, opt: kpi.denominator !== null },
    ];
    if (kpi.denominator !== null) {
      cols.push({ key: "d", label: kpi.denominator_label, opt: true });
      cols.push({ key: "value", label: kpi.title });
    }
    const sort = state.sort[kpi.mart] || { key: kpi.denominator === null ? "n" : "value", desc: kpi.better === "up" };
    reps.sort((a, b) => {
      const va = a[sort.key], vb = b[sort.key];
      if (va === null && vb === null) return 0;
      if (va === null) return 1;
      if (vb === null) return -1;
      const c = typeof va === "string" ? va.localeCompare(vb) : va - vb;
      return sort.desc ? -c : c;
    });
    const head = el("tr", {}, ...cols.map((c) => el("th", {
      scope: "col",
      class: (c.text ? "" : "num ") + (c.opt ? "opt " : "") + (sort.key === c.key ? (sort.desc ? "sorted desc" : "sorted asc") : ""),
      "aria-sort": sort.key === c.key ? (sort.desc ? "descending" : "ascending") : "none",
      onclick: () => {
        state.sort[kpi.mart] = { key: c.key, desc: sort.key === c.key ? !sort.desc : !c.text };
        render();
      },
      text: c.label,
    })));
    const body = reps.map((r) => el("tr", {}, ...cols.map((c) => {
      let text = r[c.key];
      if (c.key === "value") text = fmt(kpi, r.value);
      else if (c.key === "n") text = kpi.unit === "currency" ? currency.format(r.n) : fmtCount(kpi, r.n);
      else if (c.key === "d") text = fmtCount(kpi, r.d);
      return el("td", { class: (c.text ? "" : "num") + (c.opt ? " opt" : ""), text: String(text) });
    })));
    const table = el("table", { class: "reps", "data-kpi": kpi.mart }, el("thead", {}, head), el("tbody", {}, ...body));
    return el("div", { class: "table-wrap" }, table);
  }

  // -- page ------------------------------------------------------------------

  function cards() {
    const month = [...MONTHS].filter((m) => m <= state.to && (!DATA.last_complete_month || m <= DATA.last_complete_month)).pop();
    const prev = MONTHS[MONTHS.indexOf(month) - 1];
    const box = el("section", { class: "cards", "aria-label": "Headline numbers" });
    box.append(el("h2", { class: "cards-title", text: month ? "Last complete month: " + monthLabel(month, true) + (prev ? ", change on " + monthLabel(prev, true) : "") : "No complete month in the range" }));
    const grid = el("div", { class: "card-grid" });
    for (const kpi of DATA.kpis) {
      const keep = scopeRow(kpi);
      const by = sums(kpi, keep, (r) => r[0]);
      const cur = by.get(month);
      const before = by.get(prev);
      const v = cur ? value(kpi, cur.n, cur.d) : null;
      const p = before ? value(kpi, before.n, before.d) : null;
      let change = "";
      let tone = "flat";
      if (v !== null && p !== null) {
        const delta = kpi.unit === "pct" ? v - p : p ? ((v - p) / Math.abs(p)) * 100 : null;
        if (delta !== null) {
          const arrow = delta > 0 ? "▲" : delta < 0 ? "▼" : "■";
          change = `${arrow} ${delta > 0 ? "+" : ""}${delta.toFixed(1)}${kpi.unit === "pct" ? " pts" : "%"}`;
          if (Math.abs(delta) >= 0.05) tone = (delta > 0) === (kpi.better === "up") ? "good" : "bad";
        }
      }
      grid.append(el("a", { class: "card", href: "#" + kpi.mart, "data-kpi": kpi.mart, "data-value": v === null ? "" : String(v) },
        el("span", { class: "card-title", text: kpi.title + (state.team && kpi.company_only ? " (company)" : "") }),
        el("span", { class: "card-value", text: fmt(kpi, v) }),
        el("span", { class: "card-change " + tone, text: change || "no comparison" }),
        kpi.reference && cur && cur.ref ? el("span", { class: "card-note", text: Math.round((100 * cur.n) / cur.ref) + "% of " + kpi.reference_label.toLowerCase() }) : null));
    }
    box.append(grid);
    return box;
  }

  function controls() {
    const monthSelect = (id, current, onchange) => el("select", { id, onchange }, ...MONTHS.map((m) => {
      const o = el("option", { value: m, text: monthLabel(m, true) });
      if (m === current) o.selected = true;
      return o;
    }));
    const team = el("select", { id: "team", onchange: (e) => { state.team = e.target.value; render(); } },
      el("option", { value: "", text: "All teams (company)" }),
      ...DATA.teams.map((t) => {
        const o = el("option", { value: t.id, text: t.name });
        if (t.id === state.team) o.selected = true;
        return o;
      }));
    return el("form", { class: "controls", onsubmit: (e) => e.preventDefault() },
      el("label", {}, el("span", { text: "From" }), monthSelect("from", state.from, (e) => {
        state.from = e.target.value;
        if (state.from > state.to) state.to = state.from;
        render();
      })),
      el("label", {}, el("span", { text: "To" }), monthSelect("to", state.to, (e) => {
        state.to = e.target.value;
        if (state.to < state.from) state.from = state.to;
        render();
      })),
      el("label", {}, el("span", { text: "Team" }), team));
  }

  function section(kpi, width) {
    const points = monthly(kpi);
    const whole = (() => {
      const t = points.reduce((a, p) => ({ n: a.n + p.n, d: a.d + p.d }), { n: 0, d: 0 });
      return value(kpi, t.n, t.d);
    })();
    const scope = state.team && !kpi.company_only ? TEAM_NAMES[state.team] : "Company";
    const half = width >= 900 ? Math.floor((width - 24) / 2) : width;
    const sec = el("section", { class: "kpi", id: kpi.mart, "data-kpi": kpi.mart });
    sec.append(el("h2", {}, el("span", { text: kpi.title }), el("span", { class: "range-value", text: fmt(kpi, whole) + " over the chosen months" })));
    sec.append(el("p", { class: "formula", text: kpi.formula + (kpi.company_only ? " · company level only" : "") }));
    const trend = el("figure", { class: "panel" }, el("figcaption", { text: scope + ", by month" }));
    trend.append(trendChart(kpi, points, half - 2));
    const teamsFig = el("figure", { class: "panel" }, el("figcaption", { text: "Teams compared" }));
    if (kpi.company_only) teamsFig.append(el("p", { class: "empty", text: "This KPI exists for the company only: customers belong to no team." }));
    else teamsFig.append(barChart(kpi, byTeam(kpi), half - 2, "teams", "team", state.team));
    const panels = el("div", { class: "panels" }, trend, teamsFig);
    if (kpi.breakdown) {
      const stages = el("figure", { class: "panel" }, el("figcaption", { text: scope + ", by stage" }));
      stages.append(barChart(kpi, byBreakdown(kpi), half - 2, "stages", "stage", null));
      panels.append(stages);
    }
    sec.append(panels);
    if (!kpi.company_only) {
      const details = el("details", { class: "rep-details", open: "" }, el("summary", { text: "Reps" + (state.team ? " of " + TEAM_NAMES[state.team] : "") + " (click a column to sort)" }));
      details.append(repTable(kpi, byRep(kpi)));
      sec.append(details);
    }
    return sec;
  }

  function render() {
    const app = document.getElementById("app");
    const scrollY = window.scrollY;
    app.replaceChildren();
    if (!MONTHS.length) {
      app.append(el("h1", { text: "Sales KPIs" }), el("p", { text: "The marts hold no month yet: load an export and run kpi build." }));
      return;
    }
    const header = el("header", {},
      el("h1", { text: "Sales KPIs" }),
      el("p", { class: "meta", text: `Generated ${DATA.generated_at} · ${monthLabel(MONTHS[0], true)} to ${monthLabel(MONTHS[MONTHS.length - 1], true)} · rates are recomputed from their numerators and denominators over the chosen months and team` }),
      controls());
    app.append(header);
    app.append(cards());
    const main = el("main", {});
    app.append(main);
    const width = main.clientWidth || 960;
    for (const kpi of DATA.kpis) main.append(section(kpi, width));
    window.scrollTo(0, scrollY);
  }

  let lastWidth = 0;
  window.addEventListener("resize", () => {
    if (Math.abs(window.innerWidth - lastWidth) > 20) {
      lastWidth = window.innerWidth;
      render();
    }
  });
  lastWidth = window.innerWidth;
  render();
})();
