// The project's docs site: reads the JSON embedded in the page and renders
// the node list, node pages, the lineage graph and column lineage. Routing by
// the URL's hash, so the page works from file://. No library, no network.
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("docs-data").textContent);
  const SVG = "http://www.w3.org/2000/svg";
  const BY_ID = Object.fromEntries(DATA.nodes.map((n) => [n.id, n]));
  const STATUS_CLASS = { success: "ok", pass: "ok", warn: "warn", fail: "bad", error: "bad", skipped: "skip" };

  // -- DOM helpers ---------------------------------------------------------

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(id, text) {
    const n = BY_ID[id];
    return el("a", { href: "#node/" + encodeURIComponent(id), class: "node-link " + (n ? kindOf(n) : ""), text: text || (n ? n.label : id) });
  }

  function kindOf(n) {
    if (n.type !== "model") return n.type;
    const layer = n.path.split("/")[1] || "model";
    return ["staging", "intermediate", "marts"].includes(layer) ? layer : "model";
  }

  function badge(status) {
    if (!status) return el("span", { class: "badge none", text: "not run" });
    return el("span", { class: "badge " + (STATUS_CLASS[status] || "none"), text: status });
  }

  function colName(id, col) {
    const n = BY_ID[id];
    return (n ? n.name : id) + "." + col;
  }

  // -- sidebar ---------------------------------------------------------------

  const GROUPS = [
    ["source", "Sources"],
    ["seed", "Seeds"],
    ["staging", "Staging models"],
    ["intermediate", "Intermediate models"],
    ["marts", "Marts"],
    ["model", "Other models"],
    ["macro", "Macros"],
    ["test", "Data tests"],
  ];

  function haystack(n) {
    const cols = (n.columns || []).map((c) => c.name + " " + c.description).join(" ");
    return (n.label + " " + n.description + " " + cols + " " + (n.path || "")).toLowerCase();
  }
  const HAY = Object.fromEntries(DATA.nodes.map((n) => [n.id, haystack(n)]));

  function sidebar(query) {
    const words = query.toLowerCase().split(/\s+/).filter(Boolean);
    const match = (n) => words.every((w) => HAY[n.id].includes(w));
    const nav = el("nav", { id: "node-list", "aria-label": "Nodes" });
    let shown = 0;
    for (const [kind, title] of GROUPS) {
      const members = DATA.nodes.filter((n) => kindOf(n) === kind && match(n));
      if (!members.length) continue;
      shown += members.length;
      const open = (kind !== "test" && kind !== "macro") || words.length > 0;
      const group = el("details", open ? { open: "" } : {}, el("summary", { text: `${title} (${members.length})` }));
      const list = el("ul", {});
      for (const n of members) {
        const item = el("li", {}, link(n.id));
        if (n.type === "test" && n.status) item.append(" ", badge(n.status));
        list.append(item);
      }
      group.append(list);
      nav.append(group);
    }
    if (!shown) nav.append(el("p", { class: "muted", text: "Nothing matches." }));
    return nav;
  }

  // -- layered graph ---------------------------------------------------------

  // nodes: [{key, label, depth, kind, href, title}], edges: [[fromKey, toKey]]
  function layeredGraph(nodes, edges, opts) {
    const boxW = opts.boxW || 200, boxH = opts.boxH || 24, gapY = 8, gapX = opts.gapX || 70, pad = 12;
    const layers = [];
    for (const n of nodes) (layers[n.depth] = layers[n.depth] || []).push(n);
    const parents = {};
    for (const [a, b] of edges) (parents[b] = parents[b] || []).push(a);
    const pos = {};
    layers.forEach((layer, d) => {
      if (!layer) return;
      // order by the mean position of the parents, then by name
      const score = (n) => {
        const ps = (parents[n.key] || []).filter((p) => pos[p] !== undefined);
        return ps.length ? ps.reduce((s, p) => s + pos[p].i, 0) / ps.length : -1;
      };
      layer.sort((a, b) => score(a) - score(b) || a.label.localeCompare(b.label));
      layer.forEach((n, i) => { pos[n.key] = { i, d }; });
    });
    const tallest = Math.max(...layers.filter(Boolean).map((l) => l.length));
    const height = pad * 2 + tallest * (boxH + gapY);
    const width = pad * 2 + layers.length * (boxW + gapX) - gapX;
    const root = svg("svg", { class: "graph " + (opts.cls || ""), width, height, viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": opts.label || "lineage graph" });
    const xy = (key) => {
      const p = pos[key];
      const layer = layers[p.d];
      const offset = ((tallest - layer.length) * (boxH + gapY)) / 2;
      return { x: pad + p.d * (boxW + gapX), y: pad + offset + p.i * (boxH + gapY) };
    };
    const edgeGroup = svg("g", { class: "edges" });
    root.append(edgeGroup);
    for (const [a, b] of edges) {
      if (!pos[a] || !pos[b]) continue;
      const s = xy(a), t = xy(b);
      const x1 = s.x + boxW, y1 = s.y + boxH / 2, x2 = t.x, y2 = t.y + boxH / 2;
      const mid = (x1 + x2) / 2;
      edgeGroup.append(svg("path", { d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, class: "edge", "data-from": a, "data-to": b }));
    }
    for (const n of nodes) {
      const { x, y } = xy(n.key);
      const a = svg("a", { href: n.href, class: "gnode " + n.kind + (n.current ? " current" : ""), "data-key": n.key });
      a.append(svg("title", {}, n.title || n.label));
      a.append(svg("rect", { x, y, width: boxW, height: boxH, rx: 5 }));
      const cut = (t) => (t.length > opts.chars ? t.slice(0, opts.chars - 1) + "…" : t);
      if (n.sub) {
        // two lines: the node, then the column
        a.append(svg("text", { x: x + 8, y: y + 14, class: "owner" }, cut(n.label)));
        a.append(svg("text", { x: x + 8, y: y + 29, class: "colname" }, cut(n.sub)));
      } else {
        a.append(svg("text", { x: x + 8, y: y + boxH / 2 + 4 }, cut(n.label)));
      }
      a.addEventListener("mouseenter", () => highlight(root, n.key, true));
      a.addEventListener("mouseleave", () => highlight(root, n.key, false));
      root.append(a);
    }
    return root;
  }

  function highlight(root, key, on) {
    for (const e of root.querySelectorAll(".edge")) {
      if (e.dataset.from === key || e.dataset.to === key) e.classList.toggle("hot", on);
    }
  }

  function projectGraph(focus) {
    const members = DATA.nodes.filter((n) => n.type !== "test" && n.depth !== null);
    let keep = new Set(members.map((n) => n.id));
    if (focus) {
      keep = new Set([focus]);
      const walk = (id, dir) => {
        for (const next of BY_ID[id][dir]) {
          if (!keep.has(next) && BY_ID[next] && BY_ID[next].type !== "test") {
            keep.add(next);
            walk(next, dir);
          }
        }
      };
      walk(focus, "upstream");
      walk(focus, "downstream");
    }
    const chosen = members.filter((n) => keep.has(n.id));
    const depthsUsed = [...new Set(chosen.map((n) => n.depth))].sort((a, b) => a - b);
    const nodes = chosen.map((n) => ({
      key: n.id,
      label: n.type === "source" ? n.label : n.name,
      depth: depthsUsed.indexOf(n.depth),
      kind: kindOf(n),
      href: "#node/" + encodeURIComponent(n.id),
      title: n.label + " (" + n.materialized + ")",
      current: n.id === focus,
    }));
    const edges = [];
    for (const n of chosen) for (const p of n.upstream) if (keep.has(p)) edges.push([p, n.id]);
    return layeredGraph(nodes, edges, { boxW: 172, gapX: 30, chars: 25, cls: "fit", label: "project lineage" });
  }

  // -- column lineage --------------------------------------------------------

  function columnLineage(id, column) {
    // every (node, column) upstream, breadth first, with the edges between them
    const seen = new Set([id + "\u0000" + column]);
    const queue = [[id, column]];
    const found = [];
    const edges = [];
    while (queue.length) {
      const [nid, col] = queue.shift();
      const parents = ((DATA.lineage[nid] || {})[col]) || [];
      for (const [pid, pcol] of parents) {
        const key = pid + "\u0000" + pcol;
        edges.push([key, nid + "\u0000" + col]);
        if (seen.has(key)) continue;
        seen.add(key);
        found.push([pid, pcol]);
        queue.push([pid, pcol]);
      }
    }
    return { found, edges };
  }

  function columnView(id, column) {
    const n = BY_ID[id];
    const view = el("article", { class: "column-view" });
    if (!n) return view.appendChild(el("p", { text: "Unknown node." })) && view;
    const { found, edges } = columnLineage(id, column);
    view.append(el("p", { class: "crumb" }, link(id), " › column"));
    view.append(el("h1", {}, el("code", { text: n.name + "." + column })));
    const col = (n.columns || []).find((c) => c.name === column);
    if (col && col.description) view.append(el("p", { class: "description", text: col.description }));
    const raw = found.filter(([pid]) => BY_ID[pid] && (BY_ID[pid].type === "source" || BY_ID[pid].type === "seed"));
    const rawBox = el("section", { id: "lineage-raw", class: "raw-columns" }, el("h2", { text: "Raw columns it comes from" }));
    if (raw.length) {
      const list = el("ul", { class: "chips" });
      raw.sort((a, b) => colName(...a).localeCompare(colName(...b)));
      for (const [pid, pcol] of raw) list.append(el("li", {}, el("a", { href: "#column/" + encodeURIComponent(pid) + "/" + encodeURIComponent(pcol), class: "chip source", text: colName(pid, pcol), title: BY_ID[pid].relation + "." + pcol })));
      rawBox.append(list);
    } else if (DATA.lineage_errors[id]) {
      rawBox.append(el("p", { class: "muted", text: "No column lineage for this model: " + DATA.lineage_errors[id] }));
    } else {
      rawBox.append(el("p", { class: "muted", text: n.type === "source" ? "This is a raw column." : "None: a constant, or a value computed from no column." }));
    }
    view.append(rawBox);
    if (found.length) {
      // through each model: grouped by node, deepest (closest to the column) first
      const byNode = new Map();
      for (const [pid, pcol] of found) (byNode.get(pid) || byNode.set(pid, []).get(pid)).push(pcol);
      const order = [...byNode.keys()].sort((a, b) => (BY_ID[b] ? BY_ID[b].depth : 0) - (BY_ID[a] ? BY_ID[a].depth : 0) || a.localeCompare(b));
      const path = el("section", { id: "lineage-path" }, el("h2", { text: "Through each model" }));
      const table = el("table", { class: "cols" }, el("thead", {}, el("tr", {}, el("th", { text: "Node" }), el("th", { text: "Columns used" }))));
      const body = el("tbody", {});
      for (const pid of order) {
        const cols = byNode.get(pid).sort();
        const cell = el("td", {});
        cols.forEach((c, i) => {
          if (i) cell.append(", ");
          cell.append(el("a", { href: "#column/" + encodeURIComponent(pid) + "/" + encodeURIComponent(c), text: c }));
        });
        body.append(el("tr", { "data-node": pid }, el("td", {}, link(pid)), cell));
      }
      table.append(body);
      path.append(el("div", { class: "table-wrap" }, table));
      view.append(path);
      const nodes = [[id, column], ...found].map(([pid, pcol]) => {
        const key = pid + "\u0000" + pcol;
        const node = BY_ID[pid];
        return { key, pid, label: node ? node.label : pid, sub: pcol, title: colName(pid, pcol), depth: node ? node.depth : 0, kind: node ? kindOf(node) : "model", href: "#column/" + encodeURIComponent(pid) + "/" + encodeURIComponent(pcol), current: pid === id && pcol === column };
      });
      const used = [...new Set(nodes.map((x) => x.depth))].sort((a, b) => a - b);
      for (const x of nodes) x.depth = used.indexOf(x.depth);
      const unique = [...new Map(edges.map((e) => [e[0] + ">" + e[1], e])).values()];
      view.append(el("section", {}, el("h2", { text: "Column lineage graph" }), el("div", { class: "graph-wrap" }, layeredGraph(nodes, unique, { boxW: 196, boxH: 38, chars: 31, gapX: 34, cls: "columns fit", label: "column lineage" }))));
    }
    return view;
  }

  // -- node page -------------------------------------------------------------

  function nodeView(id) {
    const n = BY_ID[id];
    const view = el("article", { class: "node-view" });
    if (!n) {
      view.append(el("p", { text: "Unknown node " + id }));
      return view;
    }
    view.append(el("p", { class: "crumb", text: kindOf(n) + " · " + (n.path || "") }));
    view.append(el("h1", {}, el("span", { text: n.label }), " ", n.type === "test" || n.status ? badge(n.status) : ""));
    const facts = el("dl", { class: "facts" });
    const fact = (k, v) => facts.append(el("dt", { text: k }), el("dd", {}, v));
    fact("Type", n.type);
    if (n.type === "macro") {
      fact("Arguments", n.arguments.length ? el("code", { text: n.arguments.join(", ") }) : "none");
    } else {
      fact("Materialization", n.materialized);
    }
    if (n.relation) fact("Relation", el("code", { text: n.relation }));
    if (n.type === "test") {
      fact("Tests", n.attached ? link(n.attached) : "–");
      if (n.column) fact("Column", el("a", { href: "#column/" + encodeURIComponent(n.attached) + "/" + encodeURIComponent(n.column), text: n.column }));
      fact("Severity", n.severity);
      if (n.failures !== undefined && n.failures !== null) fact("Failing rows", String(n.failures));
    }
    if (n.message) fact("Last run", n.message);
    if (n.tags && n.tags.length) fact("Tags", n.tags.join(", "));
    if (n.macros && n.macros.length) {
      const macros = el("span", { class: "macro-list" });
      n.macros.forEach((m, i) => macros.append(i ? ", " : "", link(m)));
      fact("Macros", macros);
    }
    view.append(facts);
    if (n.description) view.append(el("p", { class: "description", text: n.description }));
    const rel = el("div", { class: "relatives" });
    // a macro's callers include the tests that use it; a node's lists leave tests out
    const listOf = (title, ids) => {
      const shown = ids.filter((x) => BY_ID[x] && (n.type === "macro" || BY_ID[x].type !== "test"));
      const box = el("section", {}, el("h2", { text: `${title} (${shown.length})` }));
      const ul = el("ul", {});
      for (const x of shown) ul.append(el("li", {}, link(x)));
      if (!shown.length) ul.append(el("li", { class: "muted", text: "none" }));
      box.append(ul);
      return box;
    };
    if (n.type === "macro") rel.append(listOf("Calls", n.upstream), listOf("Used by", n.downstream));
    else rel.append(listOf("Upstream", n.upstream), listOf("Downstream", n.downstream));
    view.append(rel);
    if (n.columns && n.columns.length) {
      const testsByCol = {};
      const tableTests = [];
      for (const t of n.tests) {
        const test = BY_ID[t];
        if (!test) continue;
        if (test.column) (testsByCol[test.column] = testsByCol[test.column] || []).push(test);
        else tableTests.push(test);
      }
      const hasLineage = !!DATA.lineage[id] || n.type === "source";
      const table = el("table", { class: "cols" }, el("thead", {}, el("tr", {}, ...["Column", "Type", "Description", "Tests", hasLineage ? "Lineage" : ""].filter(Boolean).map((h) => el("th", { text: h })))));
      const body = el("tbody", {});
      for (const c of n.columns) {
        const tests = el("td", { class: "tests" });
        for (const t of testsByCol[c.name] || []) tests.append(el("a", { href: "#node/" + encodeURIComponent(t.id), class: "test-chip", title: t.label }, (t.test_name || "test") + " ", badge(t.status)));
        const row = el("tr", { "data-column": c.name }, el("td", {}, el("code", { text: c.name })), el("td", {}, el("code", { class: "type", text: c.type })), el("td", { text: c.description }), tests);
        if (hasLineage) row.append(el("td", {}, el("a", { href: "#column/" + encodeURIComponent(id) + "/" + encodeURIComponent(c.name), class: "lineage-link", text: "lineage ›" })));
        body.append(row);
      }
      table.append(body);
      view.append(el("section", {}, el("h2", { text: `Columns (${n.columns.length})` }), el("div", { class: "table-wrap" }, table)));
      if (tableTests.length) {
        const ul = el("ul", { class: "test-list" });
        for (const t of tableTests) ul.append(el("li", {}, link(t.id), " ", badge(t.status)));
        view.append(el("section", {}, el("h2", { text: "Tests on the whole table" }), ul));
      }
    }
    if (n.type !== "test" && n.type !== "macro") {
      view.append(el("section", {}, el("h2", { text: "Lineage" }), el("div", { class: "graph-wrap" }, projectGraph(id))));
    }
    if (n.sql) {
      const title = n.type === "macro" ? "Macro" : "Compiled SQL";
      view.append(el("section", {}, el("h2", { text: title }), el("pre", { class: "sql" }, el("code", { text: n.sql }))));
    }
    return view;
  }

  function overview() {
    const view = el("article", { class: "overview" });
    const count = (t) => DATA.nodes.filter((n) => n.type === t).length;
    view.append(el("h1", { text: DATA.project }));
    view.append(el("p", { class: "muted", text: `Generated ${DATA.generated_at} · ${count("source")} sources · ${count("model")} models · ${count("seed")} seeds · ${count("test")} data tests · ${count("macro")} macros` }));
    const statuses = {};
    for (const n of DATA.nodes) if (n.type === "test") statuses[n.status || "not run"] = (statuses[n.status || "not run"] || 0) + 1;
    const summary = el("p", { class: "status-summary" }, "Last test run: ");
    for (const [s, k] of Object.entries(statuses)) summary.append(badge(s === "not run" ? null : s), ` ${k}  `);
    view.append(summary);
    view.append(el("p", { text: "Click a node to open it, then a column's “lineage” to see every raw column it comes from." }));
    view.append(el("section", {}, el("h2", { text: "Lineage graph" }), el("div", { class: "graph-wrap" }, projectGraph(null))));
    return view;
  }

  // -- page --------------------------------------------------------------------

  const search = el("input", { id: "search", type: "search", placeholder: "Search models, columns, descriptions…", "aria-label": "Search" });
  const side = el("aside", { id: "sidebar" }, el("a", { href: "#", class: "home", text: DATA.project }), search);
  let list = sidebar("");
  side.append(list);
  search.addEventListener("input", () => {
    const next = sidebar(search.value);
    list.replaceWith(next);
    list = next;
  });
  const main = el("main", { id: "content" });
  document.getElementById("app").append(side, main);

  function route() {
    const hash = decodeURIComponent(location.hash.slice(1));
    let view;
    if (hash.startsWith("node/")) view = nodeView(hash.slice(5));
    else if (hash.startsWith("column/")) {
      const rest = hash.slice(7);
      const cut = rest.lastIndexOf("/");
      view = columnView(rest.slice(0, cut), rest.slice(cut + 1));
    } else view = overview();
    main.replaceChildren(view);
    main.scrollTop = 0;
    window.scrollTo(0, 0);
  }
  window.addEventListener("hashchange", route);
  route();
})();
