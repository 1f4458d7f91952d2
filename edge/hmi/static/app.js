// The operator page: live values by server-sent events (/api/events), commands by POST
// (/api/command) with the role's token (Authorization: Bearer). Plain JS, no build step.
"use strict";

const TOKEN_KEY = "discharge-edge-token";
const $ = (sel) => document.querySelector(sel);
let token = null;
let role = null;
let last = null;
let linkLive = false;  // the event stream is open: the values are the line's, and commands can reach it

function takeTokenFromUrl() {
  // http://127.0.0.1:8080/#token=... : the fragment never reaches the server's logs
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (m) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  token = localStorage.getItem(TOKEN_KEY);
}

async function whoami() {
  role = null;
  if (token) {
    try {
      const r = await fetch("/api/whoami", { headers: { Authorization: "Bearer " + token } });
      if (r.ok) role = (await r.json()).role;
    } catch (e) { /* offline: view only */ }
  }
  const el = $("#role");
  el.dataset.role = role || "";
  el.textContent = role ? "role: " + role : (token ? "token refused: view only" : "no token: view only");
  $("#setpoints-section").hidden = role !== "engineer";
  if (last) render(last);
}

function fmt(x, digits) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}

function cell(tr, text, cls) {
  const td = document.createElement("td");
  td.textContent = text;
  if (cls) td.className = cls;
  tr.appendChild(td);
  return td;
}

function renderStations(s) {
  const body = $("#stations tbody");
  body.replaceChildren();
  for (const st of s.stations) {
    const tr = document.createElement("tr");
    tr.dataset.station = st.index;
    tr.dataset.state = st.state;
    tr.dataset.isolated = String(!!st.isolated);  // red whatever the state says (a core cause bit)
    cell(tr, st.index, "num");
    cell(tr, st.channel || "–");
    cell(tr, st.state + (st.isolated && st.state !== "isolated" ? " (isolated)" : ""), "state");
    cell(tr, st.battery || "–", "battery");
    cell(tr, st.tier === null ? "–" : st.tier, "num");
    cell(tr, fmt(st.soc_pct, 1), "num soc");
    cell(tr, fmt(st.temp_degc, 1), "num temp");
    cell(tr, fmt(st.current_a, 2), "num current");
    cell(tr, (st.cause || []).join(", "));
    body.appendChild(tr);
  }
}

function renderAlarms(s) {
  const body = $("#alarms tbody");
  body.replaceChildren();
  for (const a of s.alarms) {
    const tr = document.createElement("tr");
    tr.className = "alarm";
    tr.dataset.alarmId = a.id;
    tr.dataset.priority = a.priority;
    tr.dataset.state = a.state;
    cell(tr, a.priority, "priority");
    cell(tr, a.state, "alarm-state");
    const ago = s.time_s !== null && a.raised_s !== null ? Math.max(0, s.time_s - a.raised_s) : null;
    cell(tr, ago === null ? "–" : fmt(ago, 0) + " s ago", "num");
    cell(tr, a.source + " · " + a.key);
    cell(tr, a.station === null ? "–" : a.station, "num");
    cell(tr, a.message, "alarm-message");
    const td = cell(tr, "");
    if (a.state === "unack" || a.state === "rtn_unack") {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "ack";
      b.textContent = "Acknowledge";
      b.disabled = !role || !linkLive;
      b.addEventListener("click", () => send({ command: "acknowledge", alarm_id: a.id }));
      td.appendChild(b);
    }
    body.appendChild(tr);
  }
  const n = s.alarms.length;
  const unacked = s.alarms.filter((a) => a.state === "unack" || a.state === "rtn_unack").length;
  $("#alarm-count").textContent = n;
  $("#alarm-count").dataset.n = unacked;  // red while one waits for its acknowledgement
  $("#no-alarms").hidden = n > 0;
}

function renderSetpoints(s) {
  const form = $("#setpoints");
  if (role !== "engineer" || form.dataset.built === "1") return;
  for (const [name, value] of Object.entries(s.setpoints || {})) {
    const label = document.createElement("label");
    label.textContent = name + " ";
    const input = document.createElement("input");
    input.type = "number"; input.step = "any"; input.min = "0"; input.value = value; input.name = name;
    const b = document.createElement("button");
    b.type = "button"; b.textContent = "Set";
    b.addEventListener("click", () => send({ command: "setpoint", name: name, value: Number(input.value) }));
    label.append(input, " ", b);
    form.appendChild(label);
  }
  form.dataset.built = "1";
}

function render(s) {
  last = s;
  document.title = (s.line || "line") + " — " + s.packml_state;
  $("#line-name").textContent = s.line || "line";
  const st = $("#packml-state");
  st.textContent = s.packml_state;
  st.dataset.state = s.packml_state;
  for (const b of document.querySelectorAll("button.cmd")) {
    b.disabled = !role || !linkLive || !(s.allowed_commands || []).includes(b.dataset.command);
  }
  const batch = s.batch;
  const p = $("#batch-progress");
  p.max = Math.max(1, batch.total);
  p.value = batch.recorded;
  $("#batch-text").textContent = batch.recorded + " of " + batch.total + " recorded, " + batch.waiting + " waiting";
  $("#report-link").hidden = !batch.report_path;
  if (batch.report_path) $("#report-link").href = batch.report_path;
  renderAlarms(s);
  renderStations(s);
  renderSetpoints(s);
  $("#seq").textContent = s.seq;
  $("#clock").textContent = new Date().toLocaleTimeString();  // the line's clock may run scaled (a bench)
}

async function send(body) {
  const msg = $("#message");
  msg.textContent = "…";
  msg.dataset.ok = "";
  try {
    const r = await fetch("/api/command", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: "Bearer " + (token || "") },
      body: JSON.stringify(body),
    });
    const result = await r.json();
    msg.dataset.ok = String(!!result.ok);
    msg.textContent = result.message;
  } catch (e) {
    msg.dataset.ok = "false";
    msg.textContent = "no answer: " + e;
  }
}

function connect() {
  const conn = $("#conn");
  const es = new EventSource("/api/events");
  const live = (on, text) => {
    linkLive = on;
    conn.dataset.live = String(on); document.body.dataset.live = String(on); conn.textContent = text;
    if (!on && last) render(last);  // the commands off, the state greyed: nothing claims the line is so now
  };
  es.addEventListener("open", () => live(true, "live"));
  es.addEventListener("error", () => live(false, "reconnecting… (values shown are not live)"));
  es.addEventListener("snapshot", (ev) => render(JSON.parse(ev.data)));
}

document.addEventListener("DOMContentLoaded", () => {
  takeTokenFromUrl();
  for (const b of document.querySelectorAll("button.cmd")) {
    b.addEventListener("click", () => send({ command: b.dataset.command }));
  }
  $("#token-set").addEventListener("click", () => {
    const v = $("#token").value.trim();
    if (v) localStorage.setItem(TOKEN_KEY, v); else localStorage.removeItem(TOKEN_KEY);
    token = v || null;
    $("#token").value = "";
    whoami();
  });
  whoami();
  connect();
});
