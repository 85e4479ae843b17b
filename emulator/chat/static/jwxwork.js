// The WeCom JS-SDK as the emulator serves it (/wwopen/js/jwxwork.js): wx.agentConfig and wx.invoke.
// In WeCom these talk to the client app; here the client is the emulator's chat page, which frames
// the page (the chat toolbar's sidebar) and answers over window.postMessage (customers.js), asking
// the emulator (/_emulator/jsapi/...) to check the signature and to say what chat is open.
// Outside such a frame every call fails with "...:fail not running inside WeCom".
"use strict";

(function () {
  if (window.wx && window.wx.__emulator) return;
  const pending = new Map();
  let seq = 0;
  let configId = "";

  function parentOrigin() {
    const ancestors = window.location.ancestorOrigins;
    return ancestors && ancestors.length ? ancestors[0] : "*";
  }

  function bridge(type, name, payload) {
    return new Promise((resolve) => {
      if (window.parent === window) {
        resolve({ err_msg: name + ":fail not running inside WeCom (open it from the emulator's chat toolbar)" });
        return;
      }
      seq += 1;
      const id = "ww" + seq;
      pending.set(id, resolve);
      window.parent.postMessage({ wwEmulator: 1, id, type, payload }, parentOrigin());
    });
  }

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const data = event.data;
    if (!data || data.wwEmulator !== 1 || !pending.has(data.id)) return;
    const resolve = pending.get(data.id);
    pending.delete(data.id);
    resolve(data.answer || {});
  });

  function call(fn, res) {
    if (typeof fn === "function") fn(res);
  }

  window.wx = {
    __emulator: true,
    agentConfig(options) {
      const o = options || {};
      const payload = {
        corpid: o.corpid,
        agentid: o.agentid,
        timestamp: o.timestamp,
        nonceStr: o.nonceStr,
        signature: o.signature,
        jsApiList: o.jsApiList,
        url: window.location.href.split("#")[0],
      };
      bridge("agentConfig", "agentConfig", payload).then((answer) => {
        const res = { err_msg: answer.err_msg, errMsg: answer.err_msg };
        if (answer.err_msg === "agentConfig:ok") {
          configId = answer.config_id || "";
          call(o.success, res);
        } else {
          call(o.fail, res);
        }
        call(o.complete, res);
      });
    },
    invoke(name, args, callback) {
      bridge("invoke", name, { config_id: configId, api: name, args: args || {} }).then((res) => call(callback, res));
    },
    // wx.config (the corp identity) is not needed for these APIs on WeCom 3.0.24+; accepted, ignored
    config() {},
    ready(fn) {
      call(fn);
    },
    error() {},
  };
})();
