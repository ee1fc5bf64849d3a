// DEVNET ONLY: a CIP-30 wallet (window.cardano.devnet) backed by the devnet's test wallets, so the
// wallet flow can be tried with no browser extension. The gateway serves this file and its
// /devnet-wallet/ proxy only on the devnet; the keys are public test keys and hold nothing of value.
// Every signature asks the person first, like a real wallet's pop-up.
const NAME = new URLSearchParams(location.search).get("devnet_wallet") || "demo";
const base = `/devnet-wallet/${encodeURIComponent(NAME)}`;

class Cip30Error extends Error {
  constructor(code, info) { super(info); this.code = code; this.info = info; }
}

async function call(path, body) {
  const resp = await fetch(`${base}${path}`, body === undefined ? {} :
    { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Cip30Error(data.code === "proof_generation" ? 1 : -2, data.message || `HTTP ${resp.status}`);
  return data;
}

function ask(text) {
  const dialog = document.getElementById("devnet-wallet-dialog");
  document.getElementById("dw-text").textContent = text;
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "approve"), { once: true });
    dialog.showModal();
    document.getElementById("dw-approve").focus();
  });
}

let info = null;
const walletApi = {
  getNetworkId: async () => info.network_id,
  getUtxos: async () => (await call("/utxos")).utxos,
  getCollateral: async () => [],
  getBalance: async () => (await call("/balance")).balance,
  getUsedAddresses: async () => [info.address_hex],
  getUnusedAddresses: async () => [],
  getChangeAddress: async () => info.address_hex,
  getRewardAddresses: async () => [info.reward_address_hex],
  signTx: async (tx, partialSign = false) => {
    if (!(await ask("Sign this transaction? It pays 1 $CREATE to the studio (plus the network fee)."))) {
      throw new Cip30Error(2, "user declined to sign the transaction");  // TxSignError.UserDeclined
    }
    return (await call("/sign-tx", { tx, partial_sign: partialSign })).witness_set;
  },
  signData: async (address, payload) => {
    if (!(await ask("Sign in to the Creator's Studio with this wallet? (No transaction, no fee.)"))) {
      throw new Cip30Error(3, "user declined to sign the message");  // DataSignError.UserDeclined
    }
    return call("/sign-data", { address, payload });
  },
  submitTx: async (tx) => (await call("/submit-tx", { tx })).tx_id,
};

window.cardano = window.cardano || {};
window.cardano.devnet = {
  name: "Devnet test wallet",
  apiVersion: "0.1.0",
  icon: "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 10 10'%3E%3Ccircle cx='5' cy='5' r='4' fill='%23ffd84d'/%3E%3C/svg%3E",
  supportedExtensions: [],
  isEnabled: async () => info !== null,
  enable: async () => {
    info = await call("", {});
    return walletApi;
  },
};
