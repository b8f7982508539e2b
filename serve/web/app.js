// costpipe dashboard: one page reading the JSON API of `costpipe serve`
// (/api/v1/*) with the key the user gives, kept in localStorage. No build
// step; charts by uPlot (vendor/uplot). Every panel loads on its own, so a
// failing endpoint shows its error in its panel and the others still render;
// a load's questions travel in one batch request (see api).
'use strict';
(() => {
  const KEY = 'costpipe.key';
  const PALETTE = ['#2f6fdb', '#e8833a', '#3aa675', '#c2372b', '#8a5cd1', '#2aa3b8', '#c9a227', '#d4589b', '#6b7a8f', '#7fb800'];
  // Per range: the cost series step, the latency step, and the days the
  // unpriced list looks back.
  const RANGES = {
    '1h': { step: '1m', lat: '1m' },
    '6h': { step: '1m', lat: '1h' },
    '24h': { step: '1h', lat: '1h' },
    '7d': { step: '1h', lat: '1d' },
    '30d': { step: '1d', lat: '1d' },
    '90d': { step: '1d', lat: '1d' },
  };
  // Tables list at most this many groups, the largest first.
  const MAX_ROWS = 10;
  const $ = (sel) => document.querySelector(sel);
  const charts = {};
  let timer = null;
  // Each load has a generation and an AbortController: a newer load (a
  // control changed while one runs) aborts the older one's request, and
  // the older one's panels draw nothing of answers that still arrive (stale
  // checks the generation after every wait), so the page never shows an
  // older range or filter than its controls say.
  let generation = 0;
  let running = null; // the AbortController of the load in progress
  const stale = (q) => q.gen !== generation;

  class APIError extends Error {
    constructor(status, msg, param) { super(msg); this.status = status; this.param = param; }
  }

  // api asks /api/v1/<path> with params (an array of [name, value]) for
  // the load whose AbortController's signal is signal and resolves to its
  // JSON answer. The questions asked in one turn of the page (a load's
  // panels) go to the server as one batch request (/api/v1/batch): a
  // browser opens at most 6 connections to a server, so a dozen separate
  // requests would queue behind each other. The batch streams each answer
  // as it is ready, so a panel draws as soon as its own answers are in. The
  // same question twice in a batch is asked once. Aborting signal ends the
  // batch: its unanswered questions reject.
  let pending = null;
  function api(path, params, signal) {
    const u = new URLSearchParams();
    for (const [k, v] of params) u.append(k, v);
    const q = path + (params.length ? '?' + u : '');
    if (!pending || pending.signal !== signal) {
      const batch = { signal, items: new Map() };
      pending = batch;
      queueMicrotask(() => { if (pending === batch) pending = null; flush(batch); });
    }
    const items = pending.items;
    if (!items.has(q)) {
      const item = { q };
      item.promise = new Promise((resolve, reject) => { item.resolve = resolve; item.reject = reject; });
      items.set(q, item);
    }
    return items.get(q).promise;
  }

  async function flush(batch) {
    const items = [...batch.items.values()];
    const u = new URL('/api/v1/batch', location.origin);
    for (const it of items) u.searchParams.append('q', it.q);
    let settled = 0;
    const settle = (line) => {
      const a = JSON.parse(line);
      const it = items[a.i];
      if (!it || it.done) return;
      it.done = true;
      settled++;
      performance.mark('costpipe-answer', { detail: { q: it.q, status: a.status, cache: a.cache, timing: a.timing } });
      if (a.status === 200) it.resolve(a.body);
      else it.reject(new APIError(a.status, a.error || 'HTTP ' + a.status, a.param));
    };
    try {
      const r = await fetch(u, { signal: batch.signal, headers: { Authorization: 'Bearer ' + localStorage.getItem(KEY), Accept: 'application/x-ndjson' } });
      if (!r.ok) {
        let body = null;
        try { body = await r.json(); } catch (e) { /* not JSON */ }
        throw new APIError(r.status, (body && body.error) || r.statusText, body && body.param);
      }
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (value) buf += dec.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl);
          buf = buf.slice(nl + 1);
          if (line) settle(line);
        }
        if (done) break;
      }
      if (buf.trim()) settle(buf);
      if (settled < items.length) throw new APIError(0, 'the server ended its answer early');
    } catch (e) {
      const err = e instanceof APIError ? e : new APIError(0, e.message);
      for (const it of items) if (!it.done) { it.done = true; it.reject(err); }
    }
  }

  // ---- formatting ----
  // One formatter each (toLocaleString builds one per call).
  const USD = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const INT = new Intl.NumberFormat('en-US');
  // fmtUSD formats an amount of USD: a number, or money as the API sends
  // it, an exact decimal string; null (unknown) is a dash.
  function fmtUSD(v) {
    if (v == null) return '–';
    const n = Number(v);
    if (!isFinite(n)) return '–';
    if (Math.abs(n) >= 1) return '$' + USD.format(n);
    if (n === 0) return '$0';
    return '$' + n.toPrecision(3);
  }
  const fmtInt = (v) => INT.format(Number(v));
  const fmtMs = (v) => (v == null ? '–' : Number(v) < 10 ? Number(v).toFixed(2) : INT.format(Math.round(Number(v))));
  const fmtPct = (v) => (v == null ? '–' : (v > 0 ? '+' : '') + Number(v).toFixed(1) + '%');
  const fmtShare = (v) => (100 * Number(v)).toFixed(1) + '%';

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v;
      else if (k === 'text') e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k);
    return e;
  }
  // num is a table cell with a formatted number; data-value keeps the API's value.
  const num = (raw, text) => el('td', { class: 'num', 'data-value': String(raw), text });

  function fillBody(table, rows, empty, cols) {
    const tb = table.tBodies[0];
    tb.replaceChildren();
    if (!rows.length) {
      tb.append(el('tr', {}, el('td', { class: 'empty', colspan: String(cols), text: empty })));
      return;
    }
    for (const r of rows) tb.append(r);
  }

  // css reads a colour of the theme, once per load: reading the computed
  // style after the panels changed the page would recompute the styles.
  const cssCache = new Map();
  function css(name) {
    if (!cssCache.has(name)) cssCache.set(name, getComputedStyle(document.documentElement).getPropertyValue(name).trim());
    return cssCache.get(name);
  }
  // The charts' widths, read once per load before the panels change the
  // page (reading one after a change would lay the page out again); the
  // ResizeObserver follows later changes.
  const CHARTS = ['cost-chart', 'latency-chart', 'ttft-chart'];
  const widths = {};

  // ---- state ----
  function current() {
    const range = $('#range').value;
    const where = [];
    if ($('#f-tenant').value) where.push(['where', 'tenant=' + $('#f-tenant').value]);
    if ($('#f-model').value) where.push(['where', 'model=' + $('#f-model').value]);
    return { range, since: range, step: RANGES[range].step, lat: RANGES[range].lat, stack: $('#stack').value, where };
  }

  function saveControls() {
    const s = {};
    for (const id of ['range', 'stack', 'refresh', 'budget']) s[id] = $('#' + id).value;
    localStorage.setItem('costpipe.controls', JSON.stringify(s));
  }
  function restoreControls() {
    try {
      const s = JSON.parse(localStorage.getItem('costpipe.controls') || '{}');
      for (const [id, v] of Object.entries(s)) if ($('#' + id) && v != null) $('#' + id).value = v;
    } catch (e) { /* ignore a bad saved state */ }
  }

  // ---- charts ----
  function chart(id, series, data, yfmt) {
    const box = $('#' + id);
    if (charts[id]) { charts[id].destroy(); delete charts[id]; }
    box.replaceChildren();
    const fg = css('--muted'), grid = css('--line');
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const opts = {
      width: Math.max(widths[id] || box.clientWidth, 200),
      height: box.classList.contains('small') ? 200 : 260,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      scales: { x: { time: true } },
      series: [{}, ...series],
      axes: [axis, Object.assign({}, axis, { size: 64, values: (u, vals) => vals.map(yfmt) })],
      legend: { live: true },
      cursor: { drag: { x: false, y: false } },
    };
    charts[id] = new uPlot(opts, data, box);
  }

  const resize = new ResizeObserver((entries) => {
    for (const e of entries) {
      const c = charts[e.target.id];
      if (c && Math.abs(c.width - e.target.clientWidth) > 2) c.setSize({ width: Math.max(e.target.clientWidth, 200), height: c.height });
    }
  });

  function status(panel, msg, isErr) {
    const s = $('#' + panel + ' .status');
    s.textContent = msg || '';
    s.classList.toggle('error', !!isErr);
    $('#' + panel).dataset.state = isErr ? 'error' : 'ok';
  }

  // ---- panels ----
  // Each panel draws the answers of load q (q.gen, q.signal), unless a
  // newer load started while it waited for them (stale).
  async function costPanel(q) {
    const [series, total] = await Promise.all([
      api('series', [['since', q.since], ['step', q.step], ['by', q.stack], ['metric', 'cost'], ...q.where], q.signal),
      api('usage', [['since', q.since], ...q.where], q.signal),
    ]);
    if (stale(q)) return;
    const t = total[0] || { cost_usd: '0', requests: 0, unpriced_requests: 0 };
    $('#cost-total').textContent = fmtUSD(t.cost_usd);
    $('#cost-total').dataset.value = t.cost_usd;
    $('#calls-total').textContent = fmtInt(t.requests);
    $('#calls-total').dataset.value = String(t.requests);
    $('#unpriced-total').textContent = fmtInt(t.unpriced_requests);
    $('#unpriced-total').dataset.value = String(t.unpriced_requests);

    const xs = [...new Set(series.map((r) => Date.parse(r.ts) / 1000))].sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    const groups = new Map();
    for (const r of series) {
      const g = r[q.stack] || '(none)';
      if (!groups.has(g)) groups.set(g, { name: g, vals: new Array(xs.length).fill(0), sum: 0 });
      const v = Number(r.cost_usd);
      const gr = groups.get(g);
      gr.vals[at.get(Date.parse(r.ts) / 1000)] += v;
      gr.sum += v;
    }
    let list = [...groups.values()].sort((a, b) => b.sum - a.sum);
    if (list.length > 8) {
      const other = { name: 'other', vals: new Array(xs.length).fill(0), sum: 0 };
      for (const g of list.slice(7)) { g.vals.forEach((v, i) => { other.vals[i] += v; }); other.sum += g.sum; }
      list = [...list.slice(0, 7), other];
    }
    // Stack: cumulative sums, drawn top first so each covers the one below.
    const cum = [];
    let acc = new Array(xs.length).fill(0);
    for (const g of list) { acc = acc.map((v, i) => v + g.vals[i]); cum.push(acc); }
    const order = list.map((g, i) => i).reverse();
    const series_ = order.map((i) => ({
      label: list[i].name, stroke: PALETTE[i % PALETTE.length], fill: PALETTE[i % PALETTE.length] + 'cc', width: 1, points: { show: false },
      value: (u, v, si, idx) => (idx == null ? '–' : fmtUSD(list[i].vals[idx])),
    }));
    $('#p-cost').dataset.groups = String(list.length);
    $('#p-cost').dataset.points = String(xs.length);
    chart('cost-chart', series_, [xs, ...order.map((i) => cum[i])], fmtUSD);
    status('p-cost', list.length ? `${list.length} ${q.stack}s, ${xs.length} steps of ${q.step}` : 'no usage in this range');
  }

  // topQuestion is the top list of dim: the filters' list (FILTER_ROWS,
  // no filter) or, filtered, the panel's; unfiltered, the panel shows the
  // first MAX_ROWS of the filters' list, one question for both.
  const FILTER_ROWS = 100;
  const topQuestion = (q, dim, where) => api('top', [['since', q.since], ['by', dim], ['limit', String(where.length ? MAX_ROWS : FILTER_ROWS)], ...where], q.signal);

  async function topPanel(q) {
    const [tenants, models] = await Promise.all([topQuestion(q, 'tenant', q.where), topQuestion(q, 'model', q.where)]);
    if (stale(q)) return;
    for (const [id, dim, rows] of [['#top-tenant', 'tenant', tenants], ['#top-model', 'model', models]]) {
      fillBody($(id), rows.slice(0, MAX_ROWS).map((r) => el('tr', { 'data-name': r[dim] },
        el('td', { text: r[dim] }),
        num(r.cost_usd, fmtUSD(r.cost_usd)),
        el('td', { 'data-value': String(r.share), title: fmtShare(r.share) },
          el('div', { class: 'bar', style: `width:${Math.max(0.5, 100 * r.share).toFixed(1)}%` }), el('small', { text: fmtShare(r.share) })),
      )), 'no usage', 3);
    }
    status('p-top', '');
  }

  async function latencyPanel(q) {
    const [steps, whole] = await Promise.all([
      api('latency', [['since', q.since], ['step', q.lat], ['by', 'model'], ...q.where], q.signal),
      api('latency', [['since', q.since], ['by', 'model'], ...q.where], q.signal),
    ]);
    if (stale(q)) return;
    // The whole range per model, busiest first (the API orders by cost).
    const models = [];
    const byModel = new Map();
    for (const r of whole) {
      if (!byModel.has(r.model)) { byModel.set(r.model, {}); models.push(r.model); }
      byModel.get(r.model)[r.measure] = r;
    }
    fillBody($('#latency-table'), models.slice(0, MAX_ROWS).map((m) => {
      const l = byModel.get(m).latency || {}, t = byModel.get(m).ttft || {};
      return el('tr', { 'data-name': m }, el('td', { text: m }), num(l.count, fmtInt(l.count || 0)),
        num(l.p50_ms, fmtMs(l.p50_ms)), num(l.p99_ms, fmtMs(l.p99_ms)), num(t.p50_ms, fmtMs(t.p50_ms)), num(t.p99_ms, fmtMs(t.p99_ms)));
    }), 'no calls', 6);
    // Over time: the 4 busiest models' p50 (solid) and p99 (dashed).
    const shown = models.slice(0, 4);
    const xs = [...new Set(steps.map((r) => Date.parse(r.ts) / 1000))].sort((a, b) => a - b);
    const at = new Map(xs.map((x, i) => [x, i]));
    for (const [measure, id] of [['latency', 'latency-chart'], ['ttft', 'ttft-chart']]) {
      const ser = [], data = [xs];
      shown.forEach((m, i) => {
        for (const [stat, dash] of [['p50_ms', undefined], ['p99_ms', [5, 4]]]) {
          const ys = new Array(xs.length).fill(null);
          for (const r of steps) if (r.model === m && r.measure === measure && r[stat] != null) ys[at.get(Date.parse(r.ts) / 1000)] = r[stat];
          ser.push({ label: `${m} ${stat.slice(0, 3)}`, stroke: PALETTE[i % PALETTE.length], width: 1.5, dash, spanGaps: false, points: { show: xs.length < 40 },
            value: (u, v) => (v == null ? '–' : fmtMs(v)) });
          data.push(ys);
        }
      });
      chart(id, ser, data, (v) => fmtMs(v));
    }
    $('#p-latency').dataset.points = String(xs.length);
    const more = models.length > MAX_ROWS ? `; ${models.length - MAX_ROWS} less used models not listed` : '';
    status('p-latency', shown.length ? `per ${q.lat}; p50 solid, p99 dashed${more}` : 'no calls in this range');
  }

  function sparkline(vals) {
    const w = 120, h = 24;
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.setAttribute('class', 'spark');
    svg.setAttribute('role', 'img');
    const max = Math.max(...vals, 0) || 1;
    const pts = vals.map((v, i) => `${(i / Math.max(vals.length - 1, 1) * (w - 2) + 1).toFixed(1)},${(h - 1 - (v / max) * (h - 2)).toFixed(1)}`);
    const pl = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
    pl.setAttribute('points', pts.join(' '));
    svg.append(pl);
    svg.dataset.points = String(vals.length);
    return svg;
  }

  async function growthPanel(q) {
    const answer = await api('growth', [['by', q.stack], ...q.where], q.signal);
    if (stale(q)) return;
    $('#growth-by').textContent = 'by ' + q.stack + ', cost, complete UTC days';
    // Without usage in the window the answer is one row without a group
    // whose note says so; last_7d is money, a decimal string.
    const rows = answer.filter((r) => r[q.stack] != null);
    const none = answer.length && !rows.length ? answer[0].note : '';
    fillBody($('#growth-table'), rows.slice(0, MAX_ROWS).map((r) => {
      const wow = el('td', { class: 'num ' + (r.wow_pct > 0 ? 'up' : r.wow_pct < 0 ? 'down' : ''), 'data-value': String(r.wow_pct), text: fmtPct(r.wow_pct) });
      const dbl = r.doubling_days != null ? `${r.doubling_days.toFixed(1)} d` : r.halving_days != null ? `halves ${r.halving_days.toFixed(1)} d` : (r.note ? '–' : 'no trend');
      return el('tr', { 'data-name': r[q.stack] }, el('td', { text: r[q.stack], title: r.note || '' }),
        num(r.last_7d, fmtUSD(r.last_7d)), wow, num(r.cmgr_pct, fmtPct(r.cmgr_pct)),
        el('td', { class: 'num', 'data-value': String(r.doubling_days), text: dbl }),
        el('td', {}, sparkline(r.daily || [])));
    }), 'no usage in the growth window', 6);
    const more = rows.length > MAX_ROWS ? `${rows.length - MAX_ROWS} smaller groups not shown; ` : '';
    status('p-growth', none || more + (rows.some((r) => r.note) ? 'hover a group for why a number is missing' : ''));
  }

  async function forecastPanel(q) {
    const budget = $('#budget').value;
    const params = [...q.where];
    if (budget && Number(budget) > 0) params.push(['budget', budget]);
    const rows = await api('forecast', params, q.signal);
    if (stale(q)) return;
    const box = $('#forecast-body');
    box.replaceChildren();
    const r = rows[0];
    // Without usage the answer is one row without a period whose note says so.
    if (!r || r.period_start == null) { box.append(el('p', { class: 'empty', text: 'no usage to forecast' })); status('p-forecast', r ? r.note : ''); return; }
    const b = budget && Number(budget) > 0 ? Number(budget) : null;
    // Money comes as exact decimal strings ("12.345000000000"): numbers
    // for the drawing, the strings as they are for the legend's values.
    const n = (v) => (v == null ? null : Number(v));
    const [toDate, p10, p50, p90] = [n(r.to_date), n(r.forecast_p10), n(r.forecast_p50), n(r.forecast_p90)];
    const hi = Math.max(p90 || 0, toDate, b || 0) * 1.08 || 1;
    const x = (v) => (100 * v / hi).toFixed(2) + '%';
    const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
    svg.setAttribute('class', 'fc');
    const rect = (xa, xb, y, hgt, fill, op) => {
      const e = document.createElementNS('http://www.w3.org/2000/svg', 'rect');
      e.setAttribute('x', x(xa)); e.setAttribute('width', x(Math.max(xb - xa, 0))); e.setAttribute('y', y); e.setAttribute('height', hgt);
      e.setAttribute('fill', fill); if (op) e.setAttribute('opacity', op);
      svg.append(e); return e;
    };
    if (p10 != null && p90 != null) rect(p10, p90, 14, 28, css('--band')).setAttribute('data-band', 'p10-p90');
    rect(0, toDate, 22, 12, css('--accent'));
    if (p50 != null) rect(p50, p50 + hi / 400, 8, 40, css('--fg'));
    if (b) rect(b, b + hi / 300, 2, 54, css('--bad')).setAttribute('data-budget', String(b));
    box.append(svg);
    const item = (label, v, key) => el('span', {}, label + ' ', el('b', { 'data-key': key, 'data-value': String(v), text: fmtUSD(v) }));
    const legend = el('div', { class: 'fc-legend' }, item('to date', r.to_date, 'to_date'),
      item('p10', r.forecast_p10, 'forecast_p10'), item('p50', r.forecast_p50, 'forecast_p50'), item('p90', r.forecast_p90, 'forecast_p90'));
    if (b) {
      legend.append(item('budget', b, 'budget'));
      legend.append(el('span', {}, 'P(over) ', el('b', { 'data-key': 'p_overspend', text: r.p_overspend == null ? '–' : fmtShare(r.p_overspend) })));
      if (r.exhaustion_p50) legend.append(el('span', {}, 'runs out ', el('b', { text: r.exhaustion_p50 })));
    }
    box.append(legend);
    status('p-forecast', `${r.period_start} to ${r.period_end} (UTC), ${r.method || 'no method'}` + (r.note ? ` — ${r.note}` : ''));
  }

  async function unpricedPanel(q) {
    const rows = await api('prices', [['since', q.range === '1h' || q.range === '6h' ? '24h' : q.since], ...q.where], q.signal);
    if (stale(q)) return;
    fillBody($('#unpriced-table'), rows.map((r) => el('tr', { 'data-name': r.model },
      el('td', { text: r.status, title: r.note }), el('td', { text: `${r.provider} / ${r.model}` + (r.service_tier ? ` (${r.service_tier})` : '') }),
      num(r.requests, fmtInt(r.requests)))), 'every model is priced', 3);
    status('p-unpriced', rows.length ? 'fix the price catalog: these calls cost $0 or the wrong amount' : '');
  }

  async function alertsPanel(q) {
    let rows;
    try {
      rows = await api('alerts', [['state', 'firing']], q.signal);
    } catch (e) {
      if (e.status === 404 && !stale(q)) { $('#p-alerts').hidden = true; return; }
      throw e;
    }
    if (stale(q)) return;
    fillBody($('#alerts-table'), rows.map((r) => el('tr', {}, el('td', { text: r.rule }), el('td', { text: r.group }),
      el('td', { text: r.summary }), el('td', { class: 'num', text: r.fired_at ? r.fired_at.replace('T', ' ').slice(0, 16) : '–' }))),
    'nothing is firing', 4);
    status('p-alerts', '');
  }

  // filters fills the tenant and model pickers from the range's top lists
  // by cost (unfiltered: the lists the top panel shows the head of).
  async function filters(q) {
    const lists = await Promise.all(['tenant', 'model'].map((dim) => topQuestion(q, dim, [])));
    if (stale(q)) return;
    for (const [i, dim] of ['tenant', 'model'].entries()) {
      const sel = $('#f-' + dim);
      const keep = sel.value;
      const names = lists[i].map((r) => r[dim]);
      if (keep && !names.includes(keep)) names.unshift(keep);
      sel.replaceChildren(el('option', { value: '', text: 'all' }), ...names.map((n) => el('option', { value: n, text: n })));
      sel.value = keep;
    }
  }

  async function load() {
    const gen = ++generation;
    if (running) running.abort(); // the older load's request: its answers would be thrown away
    const ctl = new AbortController();
    running = ctl;
    performance.mark('costpipe-load-' + gen);
    cssCache.clear();
    for (const id of CHARTS) widths[id] = $('#' + id).clientWidth;
    document.body.dataset.loading = 'true';
    const q = Object.assign(current(), { gen, signal: ctl.signal });
    // In the page's order, so the server starts on the panels at the top
    // first.
    const panels = [['p-cost', costPanel], ['p-top', topPanel], ['p-forecast', forecastPanel], ['p-latency', latencyPanel],
      ['p-growth', growthPanel], ['p-unpriced', unpricedPanel], ['p-alerts', alertsPanel], [null, filters]];
    const results = await Promise.allSettled(panels.map(([id, f]) => f(q).finally(() => {
      performance.mark('costpipe-panel', { detail: { panel: id || 'filters', gen } });
    })));
    if (gen !== generation) return; // a newer load runs (and aborted this one)
    running = null;
    let unauthorized = false;
    results.forEach((res, i) => {
      if (res.status === 'fulfilled') return;
      const e = res.reason;
      if (e.status === 401) unauthorized = true;
      if (panels[i][0]) status(panels[i][0], (e.param ? `${e.param}: ` : '') + e.message, true);
    });
    if (unauthorized) { signOut('the key was refused'); return; }
    $('#updated').textContent = 'updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
    document.body.dataset.loading = 'false';
    document.body.dataset.generation = String(gen);
    performance.mark('costpipe-loaded-' + gen);
  }

  function schedule() {
    clearInterval(timer);
    const s = Number($('#refresh').value);
    // A refresh never cuts short the load in progress (a slow range could
    // then never finish); a change of the controls does.
    if (s > 0) timer = setInterval(() => { if (!document.hidden && !running) load(); }, s * 1000);
  }

  function signOut(msg) {
    localStorage.removeItem(KEY);
    clearInterval(timer);
    if (running) { generation++; running.abort(); running = null; } // the load in progress draws nothing more
    $('#dash').hidden = true;
    $('#controls').hidden = true;
    $('#auth').hidden = false;
    $('#auth-error').textContent = msg || '';
    $('#key').focus();
  }

  function start() {
    $('#auth').hidden = true;
    $('#dash').hidden = false;
    $('#controls').hidden = false;
    load();
    schedule();
  }

  restoreControls();
  for (const id of CHARTS) resize.observe($('#' + id));
  $('#auth-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    localStorage.setItem(KEY, $('#key').value.trim());
    $('#key').value = '';
    start();
  });
  $('#signout').addEventListener('click', () => signOut(''));
  for (const id of ['range', 'stack', 'f-tenant', 'f-model']) $('#' + id).addEventListener('change', () => { saveControls(); load(); });
  $('#refresh').addEventListener('change', () => { saveControls(); schedule(); });
  $('#budget').addEventListener('change', () => { saveControls(); load(); });
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => load());
  if (localStorage.getItem(KEY)) start(); else signOut('');
})();
