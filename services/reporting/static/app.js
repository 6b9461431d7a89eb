// Reporting dashboard: vanilla JS, charts drawn as inline SVG, labels in Chinese and English.
"use strict";

const I18N = {
  zh: {
    title: "家校社协同育人数据看板", campaign: "家访活动", allCampaigns: "全部活动", export: "导出 Excel",
    token: "访问令牌", signin: "登录", coverageByChild: "下级单位家访覆盖率", findingsByCategory: "发现问题分类",
    casesOverTime: "个案数量变化（按日）", drill: "下级单位明细（点击行进入）", unit: "单位",
    familiesAssigned: "应访家庭", familiesVisited: "已访家庭", coverage: "覆盖率", findings: "发现问题",
    casesOpen: "在办个案", casesOverdue: "超期个案", committeeShare: "班级家委会覆盖", teachersActive: "参与教师",
    visitsCompleted: "完成家访", casesOpened: "建立个案", casesClosed: "已结案", casesClosurePending: "待审批结案", attendance: "家长学校出勤率",
    schoolCommittee: "学校家委会覆盖", lang: "English", teachersBehind: "进度落后的教师", teacher: "教师",
    expected: "按计划应完成", behindBy: "落后", flaggedVisits: "违反家访要求", opened: "新建", closed: "结案", noData: "暂无数据",
  },
  en: {
    title: "Home–School–Society Cooperation Dashboard", campaign: "Campaign", allCampaigns: "All campaigns",
    export: "Export Excel", token: "Access token", signin: "Sign in", coverageByChild: "Visit coverage by unit",
    findingsByCategory: "Findings by category", casesOverTime: "Care cases per day",
    drill: "Units below (click a row to drill down)", unit: "Unit", familiesAssigned: "Families assigned",
    familiesVisited: "Families visited", coverage: "Coverage", findings: "Findings", casesOpen: "Open cases",
    casesOverdue: "Overdue cases", committeeShare: "Classes with committee", teachersActive: "Active teachers",
    visitsCompleted: "Visits completed", casesOpened: "Cases opened", casesClosed: "Cases closed",
    casesClosurePending: "Closures awaiting approval",
    attendance: "Parent-school attendance", schoolCommittee: "Schools with committee", lang: "中文",
    teachersBehind: "Teachers behind schedule", teacher: "Teacher", expected: "Expected by today",
    behindBy: "Behind by", flaggedVisits: "Visits breaking a requirement",
    opened: "opened", closed: "closed", noData: "No data yet",
  },
};

// Headline cards: [i18n key, dotted figure path, kind].
const HEADLINE = [
  ["familiesAssigned", "families.assigned", "int"],
  ["familiesVisited", "families.visited", "int"],
  ["coverage", "families.coverage", "pct"],
  ["visitsCompleted", "visits.completed", "int"],
  ["teachersActive", "teachers.active", "int"],
  ["findings", "findings.total", "int"],
  ["casesOpened", "cases.opened", "int"],
  ["casesOpen", "cases.open", "int"],
  ["casesOverdue", "cases.overdue", "int", "alert"],
  ["flaggedVisits", "requirements.flagged_visits", "int", "alert"],
  ["casesClosed", "cases.closed", "int"],
  ["casesClosurePending", "cases.closure_pending", "int"],
  ["schoolCommittee", "structure.committee_share.school", "pct"],
  ["attendance", "structure.attendance.rate", "pct"],
];

const state = {
  lang: sessionStorage.getItem("hss.lang") || "zh",
  token: null, root: null, node: null, campaign: "", data: null, series: null,
};

function t(key) { return I18N[state.lang][key] ?? key; }
// The contracts' zh/en labels of finding categories and org levels (GET /dashboard/vocabulary.json): [zh, en].
let VOCAB = { cat: {}, level: {} };
function label(kind, code) { return VOCAB[kind]?.[code]?.[state.lang === "zh" ? 0 : 1] ?? code; }
function pick(doc, dotted) { return dotted.split(".").reduce((o, k) => (o == null ? o : o[k]), doc); }
function fmt(v, kind) {
  if (v === null || v === undefined) return "—";
  if (kind === "pct") return (v * 100).toFixed(1) + "%";
  return Number(v).toLocaleString(state.lang === "zh" ? "zh-CN" : "en-US");
}
function esc(s) { return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`); }

async function api(path, params = {}) {
  const q = new URLSearchParams(params);
  const r = await fetch(`/api/v1/${path}?${q}`, { headers: { Authorization: `Bearer ${state.token}` } });
  if (!r.ok) {
    let detail = r.statusText;
    try { detail = (await r.json()).detail || detail; } catch (e) { /* not json */ }
    throw new Error(`${r.status}: ${detail}`);
  }
  return r.json();
}

function applyLabels() {
  document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => { el.textContent = t(el.dataset.i18n); });
  document.getElementById("lang").textContent = t("lang");
  const all = document.querySelector('#campaign option[value=""]');
  if (all) all.textContent = t("allCampaigns");
}

function renderHeadline(doc) {
  const f = doc.figures;
  document.getElementById("headline").innerHTML = HEADLINE.map(([key, path, kind, cls]) => {
    const v = pick(f, path);
    return `<div class="card ${cls || ""}"><div class="label">${esc(t(key))}</div>` +
      `<div class="value" data-figure="${path}" data-value="${v ?? ""}">${fmt(v, kind)}</div></div>`;
  }).join("");
}

// Teachers behind the campaign's plan (GET /api/v1/reporting/teachers-behind), only with a campaign chosen.
function renderBehind(doc) {
  const section = document.getElementById("behind-section");
  section.hidden = !doc;
  if (!doc) return;
  const body = document.querySelector("#behind tbody");
  body.innerHTML = doc.teachers.map((x) =>
    `<tr data-teacher="${esc(x.teacher_id)}"><td>${esc(x.teacher_id)}</td>` +
    `<td>${esc((state.names || {})[x.school_path] || x.school_path)}</td>` +
    `<td>${fmt(x.assigned)}</td><td>${fmt(x.completed)}</td><td>${fmt(x.expected)}</td>` +
    `<td class="alert">${fmt(x.behind_by)}</td></tr>`).join("") ||
    `<tr><td colspan="6">${esc(t("noData"))}</td></tr>`;
}

function renderTable(children) {
  const body = document.querySelector("#drill tbody");
  body.innerHTML = children.map((c) => {
    const f = c.figures;
    const leaf = c.level === "class";
    return `<tr data-path="${esc(c.org_path)}" class="${leaf ? "leaf" : ""}">` +
      `<td>${esc(c.name)} <small>${esc(label("level", c.level))}</small></td>` +
      `<td data-col="families.assigned">${fmt(f.families.assigned)}</td>` +
      `<td data-col="families.visited">${fmt(f.families.visited)}</td>` +
      `<td data-col="families.coverage">${fmt(f.families.coverage, "pct")}</td>` +
      `<td data-col="findings.total">${fmt(f.findings.total)}</td>` +
      `<td data-col="cases.open">${fmt(f.cases.open)}</td>` +
      `<td data-col="cases.overdue">${fmt(f.cases.overdue)}</td>` +
      `<td data-col="structure.committee_share.class">${fmt(f.structure.committee_share.class, "pct")}</td></tr>`;
  }).join("") || `<tr class="leaf"><td colspan="8">${esc(t("noData"))}</td></tr>`;
  body.querySelectorAll("tr[data-path]:not(.leaf)").forEach((tr) => {
    tr.addEventListener("click", () => go(tr.dataset.path));
  });
}

// Vertical bars, values 0..1 (coverage per child unit).
function barChart(items) {
  if (!items.length) return `<p>${esc(t("noData"))}</p>`;
  const W = 560, H = 220, pad = 34, bw = Math.min(60, (W - pad * 2) / items.length - 10);
  const step = (W - pad * 2) / items.length;
  let s = `<svg viewBox="0 0 ${W} ${H}" role="img">`;
  for (const g of [0, 0.5, 1]) {
    const y = H - pad - g * (H - pad * 2);
    s += `<line x1="${pad}" x2="${W - 8}" y1="${y}" y2="${y}" stroke="#e4e7eb"/>` +
      `<text x="2" y="${y + 4}">${g * 100}%</text>`;
  }
  items.forEach((it, i) => {
    const v = it.value ?? 0, h = v * (H - pad * 2), x = pad + i * step + (step - bw) / 2, y = H - pad - h;
    s += `<rect x="${x}" y="${y}" width="${bw}" height="${h}" fill="#1d7fa8" data-bar="${esc(it.path)}"/>` +
      `<text x="${x + bw / 2}" y="${y - 4}" text-anchor="middle">${fmt(it.value, "pct")}</text>` +
      `<text x="${x + bw / 2}" y="${H - pad + 14}" text-anchor="middle">${esc(it.label.slice(0, 10))}</text>`;
  });
  return s + "</svg>";
}

// Horizontal bars (findings per category).
function hbarChart(items) {
  const max = Math.max(1, ...items.map((i) => i.value));
  const W = 560, row = 18, left = 180, H = items.length * row + 8;
  let s = `<svg viewBox="0 0 ${W} ${H}" role="img">`;
  items.forEach((it, i) => {
    const y = 4 + i * row, w = (it.value / max) * (W - left - 40);
    s += `<text x="${left - 6}" y="${y + 12}" text-anchor="end">${esc(it.label)}</text>` +
      `<rect x="${left}" y="${y + 2}" width="${w}" height="${row - 6}" fill="#e07a3f"/>` +
      `<text x="${left + w + 4}" y="${y + 12}">${it.value}</text>`;
  });
  return s + "</svg>";
}

// Every calendar day from the first to the last, zero where nothing happened (a true time axis).
function fillDays(days) {
  if (days.length < 2) return days;
  const byDay = new Map(days.map((d) => [d.day, d]));
  const out = [];
  const end = new Date(days[days.length - 1].day + "T00:00:00Z");
  for (let d = new Date(days[0].day + "T00:00:00Z"); d <= end && out.length < 800; d.setUTCDate(d.getUTCDate() + 1)) {
    const key = d.toISOString().slice(0, 10);
    out.push(byDay.get(key) || { day: key, visits: 0, findings: 0, cases_opened: 0, cases_closed: 0 });
  }
  return out;
}

// Cases opened and closed per day (two lines).
function lineChart(series) {
  const days = fillDays(series);
  if (!days.length) return `<p>${esc(t("noData"))}</p>`;
  const W = 1100, H = 200, pad = 34;
  const max = Math.max(1, ...days.map((d) => Math.max(d.cases_opened, d.cases_closed)));
  const x = (i) => pad + (days.length === 1 ? (W - pad * 2) / 2 : (i * (W - pad * 2)) / (days.length - 1));
  const y = (v) => H - pad - (v / max) * (H - pad * 2);
  const line = (key, color) => {
    const pts = days.map((d, i) => `${x(i)},${y(d[key])}`).join(" ");
    return `<polyline points="${pts}" fill="none" stroke="${color}" stroke-width="2"/>` +
      days.map((d, i) => `<circle cx="${x(i)}" cy="${y(d[key])}" r="3" fill="${color}"/>`).join("");
  };
  let s = `<svg viewBox="0 0 ${W} ${H}" role="img">`;
  s += `<line x1="${pad}" x2="${W - 8}" y1="${H - pad}" y2="${H - pad}" stroke="#9aa5b1"/>`;
  s += `<text x="2" y="${y(max) + 4}">${max}</text><text x="2" y="${H - pad + 4}">0</text>`;
  const every = Math.max(1, Math.ceil(days.length / 12));
  days.forEach((d, i) => {
    if (i % every === 0) s += `<text x="${x(i)}" y="${H - pad + 16}" text-anchor="middle">${d.day.slice(5)}</text>`;
  });
  s += line("cases_opened", "#1d7fa8") + line("cases_closed", "#3f9e5a");
  s += `<text x="${W - 200}" y="14" style="fill:#1d7fa8">■ ${esc(t("opened"))}</text>` +
    `<text x="${W - 100}" y="14" style="fill:#3f9e5a">■ ${esc(t("closed"))}</text>`;
  return s + "</svg>";
}

function renderCharts() {
  const { data, series } = state;
  document.getElementById("chart-coverage").innerHTML = barChart(
    data.children.map((c) => ({ path: c.org_path, label: c.name, value: c.figures.families.coverage })));
  const cats = data.self.figures.findings.by_category;
  document.getElementById("chart-findings").innerHTML = hbarChart(
    Object.keys(cats).map((k) => ({ label: label("cat", k), value: cats[k] })));
  document.getElementById("chart-cases").innerHTML = lineChart(series.days);
}

function renderCrumbs() {
  const parts = state.node.split("/").filter(Boolean);
  const rootDepth = state.root.split("/").filter(Boolean).length;
  const names = state.names;
  const links = [];
  for (let i = rootDepth; i <= parts.length; i++) {
    const p = "/" + parts.slice(0, i).join("/");
    links.push(`<a data-crumb="${esc(p)}">${esc(names[p] || parts[i - 1])}</a>`);
  }
  const nav = document.getElementById("crumbs");
  nav.innerHTML = links.join('<span class="sep">›</span>');
  nav.querySelectorAll("a[data-crumb]").forEach((a) => a.addEventListener("click", () => go(a.dataset.crumb)));
}

function render() {
  applyLabels();
  if (!state.data) return;
  renderHeadline(state.data.self);
  renderTable(state.data.children);
  renderBehind(state.behind);
  renderCharts();
  renderCrumbs();
  const q = new URLSearchParams({ org_path: state.node, campaign_id: state.campaign, format: "xlsx" });
  document.getElementById("export").href = `/api/v1/exports/children?${q}`;
  document.getElementById("export").onclick = (ev) => { ev.preventDefault(); download(q); };
}

async function download(q) {
  const r = await fetch(`/api/v1/exports/children?${q}`, { headers: { Authorization: `Bearer ${state.token}` } });
  const url = URL.createObjectURL(await r.blob());
  const a = Object.assign(document.createElement("a"), { href: url, download: "children.xlsx" });
  a.click();
  URL.revokeObjectURL(url);
}

async function go(node) {
  document.body.dataset.state = "loading";
  try {
    const params = { org_path: node, campaign_id: state.campaign };
    const behind = state.campaign
      ? api("reporting/teachers-behind", { org_path: node, campaign_id: state.campaign, limit: 50 })
      : Promise.resolve(null);
    const [data, series, late] = await Promise.all([api("children", params), api("series", params), behind]);
    state.node = node;
    state.data = data;
    state.series = series;
    state.behind = late;
    state.names = state.names || {};
    state.names[node] = data.self.name;
    data.children.forEach((c) => { state.names[c.org_path] = c.name; });
    document.getElementById("error").hidden = true;
    render();
    document.body.dataset.node = node;
    document.body.dataset.state = "ready";
  } catch (e) {
    showError(e);
  }
}

function showError(e) {
  const el = document.getElementById("error");
  el.textContent = String(e.message || e);
  el.hidden = false;
  document.body.dataset.state = "error";
}

async function start() {
  // The token never travels in a URL (history, proxies and server logs keep those): it is typed or pasted into
  // the sign-in form and lives in this tab's sessionStorage only.
  const url = new URL(location.href);
  state.token = sessionStorage.getItem("hss.token");
  applyLabels();
  if (!state.token) {
    document.getElementById("login").hidden = false;
    document.body.dataset.state = "login";
    return;
  }
  try {
    const vocab = await fetch("/dashboard/vocabulary.json");
    if (vocab.ok) VOCAB = await vocab.json();  // else the codes stand for their labels
    const me = await api("whoami");
    state.root = me.org_path;
    const { items: campaigns } = await api("reporting/campaigns", { limit: 500 });
    const sel = document.getElementById("campaign");
    sel.innerHTML = `<option value="">${esc(t("allCampaigns"))}</option>` +
      campaigns.map((c) => `<option value="${esc(c.campaign_id)}">${esc(c.name || c.campaign_id)}</option>`).join("");
    state.campaign = url.searchParams.get("campaign_id") ?? (campaigns[0]?.campaign_id || "");
    sel.value = state.campaign;
    sel.addEventListener("change", () => { state.campaign = sel.value; go(state.node); });
    await go(url.searchParams.get("org_path") || state.root);
  } catch (e) {
    showError(e);
  }
}

document.getElementById("lang").addEventListener("click", () => {
  state.lang = state.lang === "zh" ? "en" : "zh";
  sessionStorage.setItem("hss.lang", state.lang);
  render();
});
document.getElementById("login-btn").addEventListener("click", () => {
  sessionStorage.setItem("hss.token", document.getElementById("token-input").value.trim());
  document.getElementById("login").hidden = true;
  start();
});
start();
