"""A Stripe.js v3 subset for pages running offline against the sandbox: ``Stripe(pk_test_…)``,
``elements().create("card").mount(el)``, ``createPaymentMethod``, ``confirmCardPayment``,
``handleCardAction``, ``retrievePaymentIntent``, ``redirectToCheckout``. It talks to the sandbox's
``/v1`` API with the publishable key, exactly the calls Stripe.js makes against Stripe."""

from __future__ import annotations

__all__ = ["STRIPE_JS"]

STRIPE_JS = r"""/* Stripe sandbox: an offline Stripe.js v3 subset (test mode only). */
(function () {
  "use strict";
  var API = "__SANDBOX_API_BASE__";

  function encode(value, prefix, out) {
    if (value === null || value === undefined) return out;
    if (Array.isArray(value)) {
      value.forEach(function (v, i) { encode(v, prefix + "[" + i + "]", out); });
    } else if (typeof value === "object") {
      Object.keys(value).forEach(function (k) { encode(value[k], prefix ? prefix + "[" + k + "]" : k, out); });
    } else {
      out.push(encodeURIComponent(prefix) + "=" + encodeURIComponent(String(value)));
    }
    return out;
  }

  function call(key, method, path, params) {
    var body = encode(params || {}, "", []).join("&");
    var url = API + path + (method === "GET" && body ? "?" + body : "");
    return fetch(url, {
      method: method,
      headers: {"Authorization": "Bearer " + key, "Content-Type": "application/x-www-form-urlencoded"},
      body: method === "GET" ? undefined : body
    }).then(function (resp) { return resp.json(); }).catch(function (err) {
      return {error: {type: "api_connection_error", message: String(err)}};
    });
  }

  function CardElement() {
    var self = this, inputs = {}, handlers = {}, root = null;
    var fields = [["number", "Card number", "4242 4242 4242 4242"], ["exp", "MM / YY", "12 / 34"],
                  ["cvc", "CVC", "123"]];
    this.mount = function (target) {
      root = typeof target === "string" ? document.querySelector(target) : target;
      if (!root) throw new Error("Stripe sandbox: mount target not found");
      var box = document.createElement("div");
      box.className = "StripeElement StripeSandboxCard";
      box.style.display = "flex";
      box.style.gap = "0.5em";
      fields.forEach(function (f) {
        var input = document.createElement("input");
        input.name = "cardsandbox-" + f[0];
        input.placeholder = f[1];
        input.setAttribute("aria-label", f[1]);
        input.setAttribute("data-stripe-sandbox", f[0]);
        input.style.flex = f[0] === "number" ? "3" : "1";
        input.addEventListener("input", function () {
          (handlers.change || []).forEach(function (h) { h({elementType: "card", complete: self.complete(),
                                                           empty: !inputs.number.value, error: undefined}); });
        });
        inputs[f[0]] = input;
        box.appendChild(input);
      });
      root.appendChild(box);
      (handlers.ready || []).forEach(function (h) { h({elementType: "card"}); });
    };
    this.on = function (name, handler) { (handlers[name] = handlers[name] || []).push(handler); return self; };
    this.off = function (name) { delete handlers[name]; return self; };
    this.clear = function () { Object.keys(inputs).forEach(function (k) { inputs[k].value = ""; }); };
    this.focus = function () { if (inputs.number) inputs.number.focus(); };
    this.blur = function () {};
    this.update = function () {};
    this.unmount = this.destroy = function () { if (root) root.innerHTML = ""; root = null; };
    this.complete = function () {
      return !!(inputs.number && inputs.number.value && inputs.exp.value && inputs.cvc.value);
    };
    this._card = function () {
      var exp = (inputs.exp ? inputs.exp.value : "").split("/");
      return {number: (inputs.number ? inputs.number.value : "").replace(/\s+/g, ""),
              exp_month: (exp[0] || "").trim(), exp_year: (exp[1] || "").trim(),
              cvc: inputs.cvc ? inputs.cvc.value.trim() : ""};
    };
  }

  function Elements() {
    var created = {};
    this.create = function (type) {
      if (type !== "card") throw new Error("Stripe sandbox: only the 'card' element exists offline");
      return (created[type] = new CardElement());
    };
    this.getElement = function (type) { return created[type] || null; };
  }

  function idOf(clientSecret) { return String(clientSecret).split("_secret_")[0]; }

  function Stripe(key) {
    if (!/^pk_test_/.test(String(key))) throw new Error("Stripe sandbox: use a pk_test_ publishable key");

    function paymentMethodData(data) {
      var out = {type: "card", card: data.card && data.card._card ? data.card._card() : data.card};
      if (data.billing_details) out.billing_details = data.billing_details;
      if (data.metadata) out.metadata = data.metadata;
      return out;
    }

    function waitForAuthentication(pi) {
      var next = pi.next_action || {};
      var url = next.redirect_to_url ? next.redirect_to_url.url : (next.use_stripe_sdk || {}).stripe_js;
      var frame = document.createElement("iframe");
      frame.src = url;
      frame.title = "3-D Secure";
      frame.style.cssText = "position:fixed;inset:10%;width:80%;height:80%;z-index:2147483647;" +
                            "background:#fff;border:1px solid #888";
      document.body.appendChild(frame);
      return new Promise(function (resolve) {
        var timer = setInterval(function () {
          call(key, "GET", "/v1/payment_intents/" + pi.id, {client_secret: pi.client_secret}).then(function (r) {
            if (r.error || r.status !== "requires_action") {
              clearInterval(timer);
              frame.remove();
              resolve(r);
            }
          });
        }, 500);
      }).then(function (r) {
        if (r.error) return {error: r.error};
        if (r.status === "requires_payment_method" && r.last_payment_error) {
          return {error: Object.assign({payment_intent: r}, r.last_payment_error)};
        }
        return {paymentIntent: r};
      });
    }

    function settle(pi) {
      if (pi.error) return {error: pi.error};
      if (pi.status === "requires_action") return waitForAuthentication(pi);
      return {paymentIntent: pi};
    }

    return {
      elements: function () { return new Elements(); },
      createPaymentMethod: function (arg, element, data) {
        var params = typeof arg === "string" ? Object.assign({type: arg, card: element}, data || {}) : arg;
        return call(key, "POST", "/v1/payment_methods", paymentMethodData(params)).then(function (r) {
          return r.error ? {error: r.error} : {paymentMethod: r};
        });
      },
      confirmCardPayment: function (clientSecret, data) {
        var params = {client_secret: clientSecret};
        data = data || {};
        if (typeof data.payment_method === "string") params.payment_method = data.payment_method;
        else if (data.payment_method) params.payment_method_data = paymentMethodData(data.payment_method);
        if (data.return_url) params.return_url = data.return_url;
        return call(key, "POST", "/v1/payment_intents/" + idOf(clientSecret) + "/confirm", params).then(settle);
      },
      handleCardAction: function (clientSecret) {
        return call(key, "GET", "/v1/payment_intents/" + idOf(clientSecret), {client_secret: clientSecret})
          .then(settle);
      },
      retrievePaymentIntent: function (clientSecret) {
        return call(key, "GET", "/v1/payment_intents/" + idOf(clientSecret), {client_secret: clientSecret})
          .then(function (r) { return r.error ? {error: r.error} : {paymentIntent: r}; });
      },
      redirectToCheckout: function (options) {
        window.location.assign(API + "/checkout/" + encodeURIComponent(options.sessionId));
        return Promise.resolve({});
      }
    };
  }

  window.Stripe = Stripe;
})();
"""
