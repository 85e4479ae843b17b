// The chat page's customer chats (WeCom only): the member's customers (客户), a 1:1 chat with one of
// them where the page sends both sides' messages (each goes into the emulator's chat archive), and the
// chat toolbar (聊天工具栏): its page opens beside the chat in a frame, and this page plays the WeCom
// client for the JS-SDK in it (jwxwork.js asks over postMessage; we ask /_emulator/jsapi/...).
// Plain JavaScript, no build step; data goes into the DOM as text or attribute values only.
"use strict";

(function () {
  const params = new URLSearchParams(window.location.search);
  const platform = params.get("platform") || "";
  const userid = params.get("userid") || "";
  if (platform !== "wecom" || !userid) return;

  const state = { customers: [], toolbar: [], current: null, frameOrigin: "" };
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined || child === "") continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  async function call(path, body) {
    const options = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
    const response = await fetch(path, options);
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = { error: "HTTP " + response.status };
    }
    return { ok: response.ok, data };
  }

  function showError(message) {
    $("customer-error").textContent = message;
    $("customer-error").hidden = !message;
  }

  // ---------------------------------------------------------------- the panel

  function build() {
    const header = document.querySelector(".chat-header");
    if (!header) return false;
    const button = el("button", { type: "button", id: "customers-button", class: "customers-button", "data-testid": "customers-button", text: "客户" });
    button.addEventListener("click", openList);
    header.insertBefore(button, $("connection"));

    const back = el("button", { type: "button", class: "cp-back", "data-testid": "customer-back", text: "‹" });
    back.addEventListener("click", goBack);
    const composer = el(
      "form",
      { id: "customer-composer", class: "composer" },
      el("input", { id: "customer-input", "data-testid": "customer-input", type: "text", autocomplete: "off", maxlength: "2048", placeholder: "发消息给客户" }),
      el("button", { type: "submit", "data-testid": "customer-send", text: "发送" }),
      el("button", { type: "button", id: "customer-send-as-customer", class: "as-customer", "data-testid": "customer-send-as-customer", text: "客户发" }),
    );
    composer.addEventListener("submit", (event) => {
      event.preventDefault();
      send("staff");
    });
    const panel = el(
      "section",
      { id: "customer-panel", class: "customer-panel", "data-testid": "customer-panel", hidden: true },
      el("header", { class: "chat-header" }, back, el("span", { id: "customer-title", class: "cp-title", "data-testid": "customer-title", text: "我的客户" }), el("span", { id: "customer-tools", class: "cp-tools" })),
      el("ul", { id: "customer-list", class: "people", "data-testid": "customer-list" }),
      el(
        "div",
        { id: "customer-chat", class: "customer-chat", hidden: true },
        el("main", { id: "customer-messages", class: "messages", "data-testid": "customer-messages" }),
        el("p", { id: "customer-error", class: "error", "data-testid": "customer-error", role: "alert", hidden: true }),
        composer,
      ),
    );
    const closeButton = el("button", { type: "button", "data-testid": "sidebar-close", text: "关闭" });
    closeButton.addEventListener("click", closeSidebar);
    const overlay = el(
      "div",
      { id: "sidebar-overlay", class: "overlay sidebar-overlay", "data-testid": "sidebar-overlay", hidden: true },
      el("div", { class: "overlay-bar" }, el("span", { id: "sidebar-title", text: "聊天工具栏" }), closeButton),
      el("iframe", { id: "sidebar-frame", "data-testid": "sidebar-frame", title: "聊天工具栏" }),
    );
    document.body.append(panel, overlay);
    $("customer-send-as-customer").addEventListener("click", () => send("customer"));
    window.addEventListener("message", bridge);
    return true;
  }

  async function openList() {
    const { ok, data } = await call("/_chat/customers?" + new URLSearchParams({ userid }).toString());
    $("customer-panel").hidden = false;
    $("customer-chat").hidden = true;
    $("customer-list").hidden = false;
    $("customer-tools").replaceChildren();
    $("customer-title").textContent = "我的客户";
    if (!ok) {
      $("customer-list").replaceChildren(el("li", { class: "hint", text: data.error || "读取客户失败" }));
      return;
    }
    state.customers = data.customers;
    state.toolbar = data.toolbar;
    const items = data.customers.map((c) => {
      const link = el(
        "a",
        { href: "#", "data-testid": "customer-option", "data-external-userid": c.external_userid },
        el("span", { class: "avatar", text: (c.name || "客").slice(0, 1) }),
        el("span", { text: c.name || c.external_userid }),
        el("span", { class: "dept", text: c.corp_name ? "@" + c.corp_name : "@微信" }),
      );
      link.addEventListener("click", (event) => {
        event.preventDefault();
        openChat(c);
      });
      return el("li", {}, link);
    });
    $("customer-list").replaceChildren(...(items.length ? items : [el("li", { class: "hint", text: "还没有客户。" })]));
  }

  async function openChat(customer) {
    state.current = customer;
    showError("");
    const { ok, data } = await call("/_chat/customers/open", { userid, external_userid: customer.external_userid });
    if (!ok) return showError(data.error || "打不开这个聊天");
    $("customer-title").textContent = customer.name || customer.external_userid;
    $("customer-title").dataset.externalUserid = customer.external_userid;
    $("customer-list").hidden = true;
    $("customer-chat").hidden = false;
    $("customer-tools").replaceChildren(
      ...state.toolbar.map((page) => {
        const b = el("button", { type: "button", class: "toolbar-page", "data-testid": "toolbar-page", text: page.name });
        b.addEventListener("click", () => openSidebar(page));
        return b;
      }),
    );
    await loadMessages();
    $("customer-input").focus();
  }

  async function goBack() {
    if (state.current) {
      state.current = null;
      closeSidebar();
      await call("/_chat/customers/open", { userid, external_userid: null });
      return openList();
    }
    $("customer-panel").hidden = true;
  }

  function messageNode(m) {
    const mine = m.from === userid;
    return el(
      "div",
      { class: "message", "data-testid": "customer-message", "data-direction": mine ? "out" : "in", "data-msgid": m.msgid, "data-seq": m.seq },
      el("div", { class: "avatar", "aria-hidden": "true", text: mine ? "我" : (state.current.name || "客").slice(0, 1) }),
      el("div", { class: "message-body" }, el("div", { class: "bubble", text: m.text.content })),
    );
  }

  async function loadMessages() {
    const query = new URLSearchParams({ userid, external_userid: state.current.external_userid });
    const { ok, data } = await call("/_chat/customers/messages?" + query.toString());
    if (!ok) return showError(data.error || "读取消息失败");
    $("customer-messages").replaceChildren(...data.messages.map(messageNode));
  }

  async function send(as) {
    const input = $("customer-input");
    const text = input.value.trim();
    if (!text || !state.current) return;
    showError("");
    const { ok, data } = await call("/_chat/customers/send", { userid, external_userid: state.current.external_userid, text, as });
    if (!ok) return showError(data.error || "发送失败");
    input.value = "";
    const list = $("customer-messages");
    list.append(messageNode(data.message));
    list.scrollTop = list.scrollHeight;
    input.focus();
  }

  // ---------------------------------------------------------------- the chat toolbar and its JS-SDK

  function openSidebar(page) {
    let url;
    try {
      url = new URL(page.url, window.location.href);
    } catch (_) {
      return showError("工具栏页面的地址无效：" + page.url);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return showError("工具栏页面的地址无效：" + page.url);
    // who is signed in to "WeCom" for its OAuth stand-in (emulator/wecom_oauth.py)
    document.cookie = "emulator_wecom_user=" + encodeURIComponent(userid) + "; path=/; SameSite=Lax";
    state.frameOrigin = url.origin;
    $("sidebar-title").textContent = page.name;
    $("sidebar-frame").src = url.href;
    $("sidebar-overlay").hidden = false;
  }

  function closeSidebar() {
    $("sidebar-overlay").hidden = true;
    $("sidebar-frame").removeAttribute("src");
  }

  async function bridge(event) {
    const frame = $("sidebar-frame");
    if (!frame || event.source !== frame.contentWindow || event.origin !== state.frameOrigin) return;
    const message = event.data;
    if (!message || message.wwEmulator !== 1 || typeof message.id !== "string") return;
    let answer;
    const payload = message.payload || {};
    try {
      if (message.type === "agentConfig") {
        answer = (await call("/_emulator/jsapi/agent_config", Object.assign({}, payload, { userid }))).data;
      } else if (message.type === "invoke") {
        answer = (await call("/_emulator/jsapi/invoke", Object.assign({}, payload, { userid }))).data;
      } else {
        answer = { err_msg: String(message.type) + ":fail unknown call" };
      }
    } catch (error) {
      answer = { err_msg: "bridge:fail " + error };
    }
    event.source.postMessage({ wwEmulator: 1, id: message.id, answer }, event.origin);
  }

  document.addEventListener("DOMContentLoaded", () => {
    // chat.js fills the header once the directory is read; the header itself is static HTML
    build();
  });
})();
