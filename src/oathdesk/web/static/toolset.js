// The TOTP toolset page: codes, QR code, conversions and new seeds, all computed in this browser.
// Privacy guarantee: nothing typed here leaves the page. There is no <form> (so Enter cannot
// submit the secret anywhere), no fetch/XMLHttpRequest, no storage, and the QR code is drawn
// here as SVG. The browser tests record every request the page makes and check this.

import { encodeQr, qrSvg } from "./toolset-qr.js";
import {
  DEFAULT_SECRET_BYTES,
  SeedError,
  buildOtpauthUri,
  encodeBase32,
  encodeHex,
  parseSeed,
} from "./toolset-seed.js";
import { groupCode, stepAt, totpWindow, webCryptoAvailable } from "./toolset-otp.js";

const $ = (id) => document.getElementById(id);
const state = { secret: null, step: null, generation: 0 };

function settings() {
  const clamp = (value, low, high, fallback) => {
    const number = Number.parseInt(value, 10);
    return Number.isFinite(number) ? Math.min(high, Math.max(low, number)) : fallback;
  };
  return {
    algorithm: $("algorithm").value,
    digits: clamp($("digits").value, 6, 10, 6),
    period: clamp($("period").value, 1, 86400, 30),
    past: clamp($("past").value, 0, 20, 2),
    future: clamp($("future").value, 0, 20, 2),
  };
}

const pad2 = (n) => String(n).padStart(2, "0");
function clock(seconds, utc) {
  const d = new Date(seconds * 1000);
  return utc
    ? `${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:${pad2(d.getUTCSeconds())}`
    : `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

function showError(message) {
  const box = $("seed-error");
  box.textContent = message;
  box.hidden = !message;
}

function clearOutputs() {
  state.secret = null;
  state.step = null;
  $("codes-body").replaceChildren();
  $("current-code").textContent = "";
  $("current-code").removeAttribute("data-code");
  $("countdown").textContent = "";
  $("as-base32").textContent = "";
  $("as-hex").textContent = "";
  $("seed-form").textContent = "";
  $("otpauth-uri").textContent = "";
  $("qr").replaceChildren();
  $("results").hidden = true;
}

async function renderCodes() {
  if (!state.secret) return;
  const generation = ++state.generation;
  const options = settings();
  const now = Date.now() / 1000;
  const rows = await totpWindow(state.secret, options, now, options.past, options.future);
  if (generation !== state.generation || !state.secret) return; // a newer render won
  state.step = stepAt(now, options.period);
  const body = $("codes-body");
  body.replaceChildren();
  for (const row of rows) {
    const tr = document.createElement("tr");
    tr.dataset.offset = String(row.offset);
    tr.dataset.code = row.code;
    if (row.offset === 0) tr.className = "toolset-current";
    const cells = [
      row.offset > 0 ? `+${row.offset}` : String(row.offset),
      groupCode(row.code),
      `${clock(row.start, false)}-${clock(row.end, false)}`,
      `${clock(row.start, true)}-${clock(row.end, true)}`,
    ];
    cells.forEach((text, index) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (index === 1) td.className = "toolset-code";
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
  const current = rows.find((row) => row.offset === 0);
  $("current-code").textContent = groupCode(current.code);
  $("current-code").dataset.code = current.code;
  $("codes-table").dataset.computedAt = String(now);
  updateCountdown();
}

function updateCountdown() {
  if (!state.secret) return;
  const { period } = settings();
  const now = Date.now() / 1000;
  if (stepAt(now, period) !== state.step) {
    renderCodes();
    return;
  }
  const left = Math.ceil((stepAt(now, period) + 1) * period - now);
  $("countdown").textContent = `next code in ${left} s`;
  $("countdown-bar").max = period;
  $("countdown-bar").value = left;
}

function renderQr() {
  if (!state.secret) return;
  const { algorithm, digits, period } = settings();
  const uri = buildOtpauthUri(state.secret, {
    account: $("account").value.trim() || "token",
    issuer: $("issuer").value.trim() || null,
    algorithm,
    digits,
    period,
  });
  $("otpauth-uri").textContent = uri;
  let qr;
  try {
    qr = encodeQr(uri, "M");
  } catch {
    const note = document.createElement("p");
    note.className = "ts-error";
    note.textContent = "too long for a QR code; shorten the account or issuer";
    $("qr").replaceChildren(note);
    return;
  }
  const svg = qrSvg(qr, 4);
  svg.setAttribute("aria-label", "QR code of the otpauth URI");
  $("qr").replaceChildren(svg);
}

function groupsOf4(text) {
  return text.replace(/(.{4})(?=.)/g, "$1 ");
}

function readSeed() {
  const text = $("seed").value;
  if (!text.trim()) {
    showError("");
    clearOutputs();
    return;
  }
  let parsed;
  try {
    parsed = parseSeed(text);
  } catch (error) {
    if (!(error instanceof SeedError)) throw error;
    showError(error.message);
    clearOutputs();
    return;
  }
  showError("");
  state.secret = parsed.secret;
  // An otpauth URI brings its own parameters; put them in the controls so they are visible.
  if (parsed.algorithm) $("algorithm").value = parsed.algorithm;
  if (parsed.digits) $("digits").value = String(parsed.digits);
  if (parsed.period) $("period").value = String(parsed.period);
  if (parsed.form === "otpauth-uri") {
    $("account").value = parsed.account || "";
    $("issuer").value = parsed.issuer || "";
  }
  const bits = parsed.secret.length * 8;
  $("seed-form").textContent = `read as ${parsed.form}: ${parsed.secret.length} bytes (${bits} bits)`;
  $("as-base32").textContent = groupsOf4(encodeBase32(parsed.secret));
  $("as-hex").textContent = encodeHex(parsed.secret);
  $("results").hidden = false;
  renderCodes();
  renderQr();
}

function newSeed() {
  const size = Number.parseInt($("new-size").value, 10) || DEFAULT_SECRET_BYTES.sha1;
  const secret = crypto.getRandomValues(new Uint8Array(size));
  $("seed").value = groupsOf4(encodeBase32(secret));
  $("account").value = "";
  $("issuer").value = "";
  readSeed();
}

function copyFrom(targetId, button) {
  const text = $(targetId).textContent.replace(/ /g, "");
  if (!text || !navigator.clipboard) return;
  navigator.clipboard.writeText(text).then(() => {
    const label = button.textContent;
    button.textContent = "copied";
    setTimeout(() => {
      button.textContent = label;
    }, 1500);
  });
}

function start() {
  if (!webCryptoAvailable()) {
    $("no-webcrypto").hidden = false;
    $("seed").disabled = true;
    return;
  }
  $("seed").addEventListener("input", readSeed);
  for (const id of ["algorithm", "digits", "period"]) {
    $(id).addEventListener("change", () => {
      renderCodes();
      renderQr();
    });
  }
  for (const id of ["past", "future"]) $(id).addEventListener("change", renderCodes);
  for (const id of ["account", "issuer"]) $(id).addEventListener("input", renderQr);
  $("new-seed").addEventListener("click", newSeed);
  $("clear-seed").addEventListener("click", () => {
    $("seed").value = "";
    readSeed();
  });
  for (const button of document.querySelectorAll("[data-toolset-copy]")) {
    button.addEventListener("click", () => copyFrom(button.dataset.toolsetCopy, button));
  }
  setInterval(updateCountdown, 250);
  document.body.dataset.toolsetReady = "1";
  if ($("seed").value) readSeed(); // the browser may restore a value on back/forward
}

start();
