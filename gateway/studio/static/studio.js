// The Creator's Studio page: the reference client of the gateway's HTTP API (see /schema).
// Plain ES module, no build step. Both payment flows:
//   wallet: quote -> CIP-30 signTx -> submit -> progress over SSE -> images (released at depth)
//   card:   sign in -> buy credits (Stripe Elements, or the sandbox's card form) -> generate
const $ = (id) => document.getElementById(id);
const state = { config: null, access: null, refresh: null, wallet: null, walletApi: null, walletAddr: null,
                walletToken: null, busy: false };

// ---------------------------------------------------------------- HTTP
class ApiError extends Error {
  constructor(status, body) {
    super((body && (body.detail || body.error || body.message)) || `HTTP ${status}`);
    this.status = status; this.body = body || {};
  }
}

async function api(path, { method = "GET", body, token, headers = {}, timeoutMs = 30000 } = {}) {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), timeoutMs);
  const h = { Accept: "application/json", ...headers };
  if (body !== undefined) h["Content-Type"] = "application/json";
  const bearer = token === undefined ? (state.access || state.walletToken) : token;
  if (bearer) h.Authorization = `Bearer ${bearer}`;
  let resp;
  try {
    resp = await fetch(path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
                               signal: ctrl.signal });
  } catch (err) {
    throw new ApiError(0, { detail: err.name === "AbortError" ? "The server did not answer in time." :
                                                              "The server cannot be reached." });
  } finally { clearTimeout(timer); }
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = { detail: text.slice(0, 200) }; }
  if (resp.status === 401 && state.refresh && token === undefined && path !== "/v1/auth/refresh") {
    if (await refreshTokens()) return api(path, { method, body, headers, timeoutMs });
  }
  if (!resp.ok) {
    const err = new ApiError(resp.status, data);
    err.retryAfter = resp.headers.get("Retry-After");
    throw err;
  }
  return data;
}

function explain(err) {
  if (!(err instanceof ApiError)) return String(err && err.message || err);
  const retry = err.retryAfter ? ` Try again in ${err.retryAfter} s.` : "";
  switch (err.status) {
    case 0: return err.message;
    case 402: return err.body.error || "Payment required.";
    case 403: return err.body.detail || "Not allowed.";
    case 429: return `Too many attempts.${retry}`;
    case 503: return `${err.body.detail || "The studio is busy right now."}${retry}`;
    default: return err.message;
  }
}

function say(id, text, kind = "") {
  const el = $(id);
  el.textContent = text;
  el.className = `status ${kind}`;
}

// ---------------------------------------------------------------- account
function saveTokens(tokens) {
  state.access = tokens.access_token; state.refresh = tokens.refresh_token;
  sessionStorage.setItem("cp.refresh", tokens.refresh_token);
}

async function refreshTokens() {
  try {
    const tokens = await api("/v1/auth/refresh", { method: "POST", body: { refresh_token: state.refresh }, token: null });
    saveTokens(tokens);
    return true;
  } catch { signOutLocally(); return false; }
}

function signOutLocally() {
  state.access = null; state.refresh = null; sessionStorage.removeItem("cp.refresh");
  $("signed-in").hidden = true; $("signed-out").hidden = false;
}

async function loadAccount() {
  if (!state.access) return;
  const acct = await api("/v1/account");
  $("signed-out").hidden = true; $("signed-in").hidden = false;
  $("account-email").textContent = acct.email;
  $("credits").textContent = acct.credits_available;
  $("credits-pending").textContent = acct.credits_pending ? `(${acct.credits_pending} in use)` : "";
  $("frozen").hidden = !acct.frozen;
  await loadReel();
}

async function onAuth(event) {
  event.preventDefault();
  const action = event.submitter?.dataset.action || "login";
  const body = { email: $("email").value, password: $("password").value };
  say("account-status", action === "signup" ? "Creating your account…" : "Logging in…");
  try {
    saveTokens(await api(`/v1/auth/${action}`, { method: "POST", body, token: null }));
    say("account-status", action === "signup" ? "Account created." : "Logged in.", "ok");
    await loadAccount();
  } catch (err) { say("account-status", explain(err), "error"); }
}

async function onLogout() {
  try { await api("/v1/auth/logout", { method: "POST", body: { refresh_token: state.refresh } }); } catch { /* gone anyway */ }
  signOutLocally();
  say("account-status", "Logged out.");
}

// ---------------------------------------------------------------- buying credits
let stripe = null, cardElement = null;

async function setupPayments() {
  const packs = await api("/v1/billing/packs", { token: null });
  $("packs").replaceChildren(...packs.map((p, i) => {
    const label = document.createElement("label");
    const input = Object.assign(document.createElement("input"),
      { type: "radio", name: "pack", value: p.id, checked: i === 0, id: `pack-${p.id}` });
    label.append(input, ` ${p.label}`);
    return label;
  }));
  const cfg = state.config;
  if (cfg.stripe_publishable_key && cfg.stripe_js_url) {
    await loadScript(cfg.stripe_js_url);
    stripe = window.Stripe(cfg.stripe_publishable_key);
    cardElement = stripe.elements().create("card");
    cardElement.mount("#card-element");
  } else {
    $("buy").disabled = true;
    say("account-status", "Card payments are not configured on this studio.");
  }
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = Object.assign(document.createElement("script"), { src, async: true });
    s.onload = resolve; s.onerror = () => reject(new Error(`could not load ${src}`));
    document.head.append(s);
  });
}

async function createPaymentMethod() {
  if (!stripe) throw new Error("Card payments are not configured on this studio.");
  const card = cardElement;
  const result = await stripe.createPaymentMethod({ type: "card", card });
  if (result.error) throw new Error(result.error.message);
  return result.paymentMethod.id;
}

async function onBuy(event) {
  event.preventDefault();
  const pack = document.querySelector("input[name=pack]:checked")?.value;
  if (!pack) return say("account-status", "Choose a pack first.", "error");
  $("buy").disabled = true;
  say("account-status", "Paying…");
  try {
    const paymentMethodId = await createPaymentMethod();
    let result = await api("/api/billing/purchase-credits", { method: "POST", body: { paymentMethodId, pack } });
    if (result.status === "requires_action" && result.client_secret) {
      say("account-status", "Your bank asks you to confirm the payment…");
      const next = await stripe.handleCardAction(result.client_secret);
      if (next.error) throw new Error(next.error.message);
      result = { status: next.paymentIntent?.status || "processing" };
    }
    say("account-status", result.status === "succeeded" ? "Payment received. Credits added." :
        "Payment is being confirmed; your credits appear in a moment.", "ok");
    await waitForCredits();
  } catch (err) {
    say("account-status", err instanceof ApiError && err.status === 402 ?
        `Card declined: ${err.body.decline_code || err.body.detail}` : explain(err), "error");
  } finally { $("buy").disabled = false; }
}

async function waitForCredits(tries = 20) {
  const before = Number($("credits").textContent);
  for (let i = 0; i < tries; i++) {
    await loadAccount();
    if (Number($("credits").textContent) > before) return;
    await new Promise((r) => setTimeout(r, 500));
  }
}

// ---------------------------------------------------------------- wallets (CIP-30)
function listWallets() {
  const found = Object.entries(window.cardano || {})
    .filter(([, w]) => w && typeof w.enable === "function")
    .map(([key, w]) => ({ key, name: w.name || key }));
  $("wallet-choice").replaceChildren(...found.map((w) =>
    Object.assign(document.createElement("option"), { value: w.key, textContent: w.name })));
  $("connect-wallet").disabled = found.length === 0;
  if (!found.length) say("wallet-status", "No CIP-30 wallet found in this browser.");
}

async function onConnect() {
  const key = $("wallet-choice").value;
  try {
    say("wallet-status", "Connecting…");
    state.walletApi = await window.cardano[key].enable();
    state.wallet = key;
    const used = await state.walletApi.getUsedAddresses();
    state.walletAddr = used[0] || await state.walletApi.getChangeAddress();
    await walletLogin();
    await showBalance();
    await loadReel();
  } catch (err) {
    say("wallet-status", cip30Message(err, "connect"), "error");
  }
}

async function walletLogin() {
  const ch = await api(`/v1/auth/wallet/challenge?address=${encodeURIComponent(state.walletAddr)}`, { token: null });
  const signed = await state.walletApi.signData(state.walletAddr, ch.payload);
  const tokens = await api("/v1/auth/wallet/verify", { method: "POST", token: null,
    body: { address: state.walletAddr, signature: signed.signature, key: signed.key } });
  state.walletToken = tokens.access_token;
}

async function showBalance() {
  const bal = await api(`/v1/wallets/${encodeURIComponent(state.walletAddr)}/balance`, { token: null });
  const short = (bal.address || state.walletAddr).slice(0, 16);
  const create = bal.create ?? bal.asset?.quantity ?? bal.create_balance ?? 0;
  const ada = bal.ada ?? (bal.lovelace !== undefined ? (Number(bal.lovelace) / 1e6).toFixed(2) : "?");
  say("wallet-status", `${short}… — ${create} $CREATE, ${ada} ADA`, "ok");
}

function cip30Message(err, what) {
  // CIP-30 errors: TxSignError/DataSignError code 2 (or APIError -3) = the user declined.
  // TxSignError.UserDeclined = 2, DataSignError.UserDeclined = 3, APIError.Refused = -3.
  const declined = err && ((what === "sign" && err.code === 2) || (what === "connect" && err.code === 3) || err.code === -3);
  if (declined || /declin/i.test((err && (err.info || err.message)) || "")) {
    return what === "connect" ? "The wallet connection was declined." : "You declined the signature; nothing was paid.";
  }
  if (err instanceof ApiError) return explain(err);
  return `Wallet error: ${err && (err.info || err.message) || err}`;
}

// ---------------------------------------------------------------- generating
function params() {
  const size = Number($("size").value);
  const p = { width: size, height: size };
  if ($("seed").value !== "") p.seed = Number($("seed").value);
  return p;
}

async function onGenerate(event) {
  event.preventDefault();
  if (state.busy) return;
  const pay = event.submitter?.dataset.pay || "card";
  const prompt = $("prompt").value.trim();
  if (!prompt) return say("generate-status", "Write a prompt first.", "error");
  state.busy = true;
  for (const b of document.querySelectorAll("#generate-form button")) b.disabled = true;
  try {
    if (pay === "wallet") await generateWithWallet(prompt); else await generateWithCredits(prompt);
  } catch (err) {
    say("generate-status", pay === "wallet" ? cip30Message(err, "sign") : explain(err), "error");
  } finally {
    state.busy = false;
    for (const b of document.querySelectorAll("#generate-form button")) b.disabled = false;
    $("progress").hidden = true;
  }
}

async function generateWithCredits(prompt) {
  if (!state.access) throw new Error("Log in (or sign up) to use card credits.");
  say("generate-status", "Reserving 1 credit…");
  const job = await api("/v1/generations", { method: "POST", body: { prompt, params: params() },
                                              headers: { "Idempotency-Key": crypto.randomUUID() } });
  await follow(job, state.access);
  await loadAccount();
}

async function generateWithWallet(prompt) {
  if (!state.walletApi) throw new Error("Connect a wallet first.");
  say("generate-status", "Checking your $CREATE and building the payment…");
  const utxos = await state.walletApi.getUtxos();
  const quote = await api("/v1/web3/quotes", { method: "POST",
    body: { prompt, params: params(), address: state.walletAddr, utxos: utxos || [] } });
  say("generate-status", `Sign the payment of 1 $CREATE (fee ${(Number(quote.fee) / 1e6).toFixed(6)} ADA) in your wallet…`);
  const witnessSet = await state.walletApi.signTx(quote.tx_cbor, true);
  say("generate-status", "Submitting your payment…");
  let q = await api(`/v1/web3/quotes/${quote.quote_id}/submit`, { method: "POST", body: { witness_set: witnessSet } });
  // The chain decides: generation may start once the payment is seen, images come at the required depth.
  $("progress").hidden = false;
  const deadline = Date.now() + 10 * 60 * 1000;
  while (!["delivered", "failed", "expired"].includes(q.state) && Date.now() < deadline) {
    say("generate-status", q.state === "waiting" ? "Payment sent; waiting for the chain to confirm it…" :
                           "Payment seen on chain; generating (images are released at the required depth)…");
    await new Promise((r) => setTimeout(r, 1000));
    q = await api(`/v1/web3/quotes/${quote.quote_id}`);
  }
  if (q.state !== "delivered") throw new Error(q.error || `The payment did not complete (${q.state}).`);
  say("generate-status", "Done.", "ok");
  await loadReel();
  await showBalance();
}

async function follow(job, token) {
  // Progress over Server-Sent Events, read with fetch so the bearer token travels in a header (never in
  // a URL that ends up in logs). Falls back to polling when the stream breaks.
  $("progress").hidden = false;
  const url = job.events_url || `/v1/generations/${job.id}/events`;
  const deadline = Date.now() + 10 * 60 * 1000;
  try {
    const resp = await fetch(url, { headers: { Accept: "text/event-stream", Authorization: `Bearer ${token}` } });
    if (!resp.ok || !resp.body) throw new Error(`events: HTTP ${resp.status}`);
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "", finished = null;
    while (!finished && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while (!finished && (cut = buffer.indexOf("\n\n")) >= 0) {
        const raw = buffer.slice(0, cut); buffer = buffer.slice(cut + 2);
        const ev = { type: "message", data: "" };
        for (const line of raw.split("\n")) {
          if (line.startsWith("event:")) ev.type = line.slice(6).trim();
          else if (line.startsWith("data:")) ev.data += line.slice(5).trim();
        }
        let data = {};
        try { data = JSON.parse(ev.data || "{}"); } catch { /* keep {} */ }
        showProgress(ev.type, data);
        if (ev.type === "done") finished = "done";
        if (ev.type === "error") {
          reader.cancel().catch(() => {});
          throw new Error(data.error || data.detail || "The generation failed; you were not charged.");
        }
      }
    }
    reader.cancel().catch(() => {});
  } catch (err) {
    if (!/^events:/.test(err.message) && !(err instanceof TypeError)) throw err;
  }
  const gen = await poll(job, token);
  say("generate-status", "Done.", "ok");
  await loadReel();
  return gen;
}

async function poll(job, token) {
  for (let i = 0; i < 600; i++) {
    const gen = await api(`/v1/generations/${job.id}`, { token });
    showProgress("status", gen);
    if (gen.status === "succeeded") return gen;
    if (gen.status === "failed") throw new Error(gen.error || "The generation failed; you were not charged.");
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error("Timed out waiting for the generation.");
}

function showProgress(type, data) {
  const step = data.step ?? data.progress?.step, total = data.total_steps ?? data.progress?.total_steps;
  if (step !== undefined && total) {
    $("progress-bar").value = Math.round((100 * step) / total);
    $("progress-text").textContent = `step ${step} of ${total}`;
  }
  const text = { queued: "Queued…", waiting_payment: "Waiting for your payment to be confirmed on chain…",
                 running: "Generating…", image: "Images arriving…", images: "Images arriving…" }[type]
    || (data.status === "waiting_payment" ? "Waiting for your payment to be confirmed on chain…" : null);
  if (text) say("generate-status", text);
}

// ---------------------------------------------------------------- the Idea Reel
async function loadReel() {
  const token = state.access || state.walletToken;
  if (!token) return;
  let page;
  try { page = await api("/v1/generations", { token }); } catch { return; }
  const items = Array.isArray(page) ? page : (page.items || page.generations || page.data || []);
  $("reel-empty").hidden = items.length > 0;
  $("reel-items").replaceChildren(...items.map((g) => reelItem(g, token)));
}

function reelItem(gen, token) {
  const li = document.createElement("li");
  for (const img of gen.images || []) {
    const el = Object.assign(document.createElement("img"),
      { src: img.url, alt: `Generated from: ${gen.prompt || "your prompt"}`, loading: "lazy", width: 512, height: 512 });
    li.append(el);
  }
  const meta = document.createElement("p");
  meta.className = "meta";
  meta.textContent = `${gen.prompt || ""} — ${gen.status}${gen.error ? `: ${gen.error}` : ""}`;
  li.append(meta);
  if (gen.status === "succeeded") {
    const details = document.createElement("details");
    const summary = Object.assign(document.createElement("summary"),
      { textContent: gen.payment?.kind === "web3" || gen.payment_kind === "web3" ? "Payment tx" : "Burn receipt" });
    const pre = document.createElement("pre");
    details.append(summary, pre);
    details.addEventListener("toggle", async () => {
      if (!details.open || pre.textContent) return;
      if (gen.payment_tx_id || gen.payment?.tx_id) { pre.textContent = `tx ${gen.payment_tx_id || gen.payment.tx_id}`; return; }
      try {
        const r = await api(`/v1/generations/${gen.id}/receipt`, { token });
        pre.textContent = `burn tx ${r.tx_id} (${r.state}, depth ${r.depth})\nbatch of ${r.count}, leaf ${r.index}\n` +
          `leaf ${r.leaf}\nroot ${r.root}\nproof ${JSON.stringify(r.proof)}\n` +
          "check it: python -m gateway verify-receipt FILE (or by hand, see gateway/burns/README.md)";
      } catch (err) { pre.textContent = err.status === 404 ? "The burn backing this credit is not on chain yet." : explain(err); }
    });
    li.append(details);
  }
  return li;
}

// ---------------------------------------------------------------- start
async function main() {
  $("auth-form").addEventListener("submit", onAuth);
  $("logout").addEventListener("click", onLogout);
  $("buy-form").addEventListener("submit", onBuy);
  $("generate-form").addEventListener("submit", onGenerate);
  $("connect-wallet").addEventListener("click", onConnect);
  try { state.config = await api("/v1/studio/config", { token: null }); }
  catch (err) { say("generate-status", `The studio is not reachable: ${explain(err)}`, "error"); return; }
  $("network").textContent = state.config.network;
  $("devnet-note").hidden = !state.config.devnet_wallet;
  if (state.config.devnet_wallet) await import("/studio/devnet-wallet.js");
  listWallets();
  try { await setupPayments(); } catch (err) { say("account-status", explain(err), "error"); }
  state.refresh = sessionStorage.getItem("cp.refresh");
  if (state.refresh && await refreshTokens()) await loadAccount().catch(() => {});
}

main();
