// The work-order sidebar (聊天工具栏). Plain JavaScript, no build step. Every piece of data goes into
// the DOM with textContent or as attribute values: never as HTML.
//
// 1. GET api/config?url=<this page>        -> wx.agentConfig (the app's JS-SDK identity)
// 2. wx.invoke("getContext")               -> must be opened from a 1:1 chat's toolbar
// 3. wx.invoke("getCurExternalContact")    -> the customer's external_userid
// 4. GET api/context?external_userid=      -> the customer, their work orders, the recent messages
// 5. POST api/workorders | api/links       -> create a work order / link the ticked messages
// Every API call carries the page's CSRF token (X-CSRF-Token); the session is an HttpOnly cookie.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const state = { externalUserId: "", data: null, requestId: "" };

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

  function status(text, kind) {
    $("status").textContent = text;
    $("status").hidden = !text;
    $("app").dataset.state = kind;
  }

  function flash(text, ok, orderNo) {
    const box = $("flash");
    box.textContent = text;
    box.hidden = !text;
    box.className = "flash " + (ok ? "ok" : "error");
    if (orderNo) box.dataset.orderNo = orderNo;
    else delete box.dataset.orderNo;
    if (text) box.scrollIntoView({ block: "nearest" });
  }

  function requestId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  async function api(path, method, body) {
    const headers = { "X-CSRF-Token": document.body.dataset.csrf };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    let response;
    try {
      response = await fetch(document.body.dataset.api + "/" + path, {
        method: method || "GET",
        headers,
        credentials: "same-origin",
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      return { ok: false, status: 0, data: { error: "网络错误：" + error } };
    }
    let data;
    try {
      data = await response.json();
    } catch (_) {
      data = { error: "HTTP " + response.status };
    }
    return { ok: response.ok, status: response.status, data };
  }

  // ---------------------------------------------------------------- the JS-SDK

  function agentConfig(config) {
    return new Promise((resolve, reject) => {
      wx.agentConfig(
        Object.assign({}, config, {
          success: resolve,
          fail: (res) => reject(res || {}),
        }),
      );
    });
  }

  function invoke(name, args) {
    return new Promise((resolve) => wx.invoke(name, args || {}, (res) => resolve(res || {})));
  }

  async function connect() {
    if (typeof wx === "undefined" || typeof wx.agentConfig !== "function") {
      return status("没有加载企业微信 JS-SDK：请在企业微信的聊天工具栏中打开本页面。", "error");
    }
    const url = window.location.href.split("#")[0];
    const signed = await api("config?url=" + encodeURIComponent(url));
    if (!signed.ok) return status(signed.data.error || "无法获取签名", "error");
    try {
      await agentConfig(signed.data);
    } catch (res) {
      return status("企业微信鉴权失败：" + (res.errMsg || res.err_msg || "未知错误"), "error");
    }
    const context = await invoke("getContext");
    if (context.err_msg !== "getContext:ok") {
      return status("无法读取入口：" + (context.err_msg || "未知错误"), "error");
    }
    if (context.entry !== "single_chat_tools") {
      return status("请在与客户的单聊中，从聊天工具栏打开本页面。", "error");
    }
    const contact = await invoke("getCurExternalContact");
    if (contact.err_msg !== "getCurExternalContact:ok" || !contact.userId) {
      return status("无法获取当前客户：" + (contact.err_msg || "未知错误"), "error");
    }
    state.externalUserId = contact.userId;
    await reload();
  }

  // ---------------------------------------------------------------- showing

  async function reload() {
    const query = "context?external_userid=" + encodeURIComponent(state.externalUserId);
    const { ok, data } = await api(query);
    if (!ok) return status(data.error || "读取失败", "error");
    state.data = data;
    render();
    status("", "ready");
  }

  function timeOf(iso) {
    const at = new Date(iso);
    if (isNaN(at)) return "";
    return at.toLocaleString([], { month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit" });
  }

  function renderCustomer(customer) {
    const name = customer.name || "（未同步的客户）";
    const box = $("customer");
    box.replaceChildren(
      el("h2", { text: "客户" }),
      el("p", { class: "customer-name", "data-testid": "sidebar-customer-name", text: name }),
      customer.corp_name ? el("p", { class: "muted", text: customer.corp_name }) : null,
      el("p", { class: "muted", "data-testid": "sidebar-customer-id", text: customer.external_userid }),
      customer.known ? null : el("p", { class: "muted", text: "客户资料尚未同步，请在下方填写客户名称。" }),
    );
    box.hidden = false;
    $("f-customer-name").value = customer.name || "";
  }

  function renderOrders(orders) {
    const list = $("orders");
    list.replaceChildren(
      ...orders.map((o) =>
        el(
          "li",
          { class: "order", "data-testid": "sidebar-order", "data-order-no": o.order_no },
          el("div", { class: "order-title", text: o.title }),
          el(
            "div",
            { class: "muted" },
            el("span", { "data-testid": "sidebar-order-no", text: o.order_no }),
            " · " + o.state + " · 已关联 " + o.linked + " 条",
          ),
        ),
      ),
    );
    if (!orders.length) list.append(el("li", { class: "muted", text: "还没有工单。" }));
    $("orders-box").hidden = false;
    const select = $("f-order");
    select.replaceChildren(...orders.map((o) => el("option", { value: o.order_no, text: o.order_no + " " + o.title })));
    $("link-box").hidden = !orders.length;
  }

  function renderMessages(messages) {
    const list = $("messages");
    list.replaceChildren(
      ...messages.map((m) => {
        const id = "m-" + m.id.replace(/[^A-Za-z0-9_-]/g, "_");
        return el(
          "li",
          { class: "message " + m.direction, "data-testid": "sidebar-message", "data-msg-id": m.id },
          el("input", { type: "checkbox", id, value: m.id, "data-testid": "sidebar-message-check" }),
          el(
            "label",
            { for: id },
            el("span", { class: "muted", text: (m.direction === "out" ? "我" : "客户") + " · " + timeOf(m.sent_at) }),
            el("span", { class: "text", "data-testid": "sidebar-message-text", text: m.text }),
            m.linked.length ? el("span", { class: "linked", text: "已关联 " + m.linked.join("、") }) : null,
          ),
        );
      }),
    );
    if (!messages.length) list.append(el("li", { class: "muted", text: "还没有和这位客户的聊天记录。" }));
    $("messages-box").hidden = false;
  }

  function renderForm(templates) {
    const template = templates[0];
    $("create-box").hidden = !template;
    if (!template) return;
    const category = $("f-category");
    category.replaceChildren(
      el("option", { value: "", text: "请选择" }),
      ...template.categories.map((c) => el("option", { value: c.value, text: c.label })),
    );
    const priority = $("f-priority");
    priority.replaceChildren(
      ...template.priorities.map((p) =>
        el("option", { value: p.value, text: p.label, selected: p.value === template.default_priority }),
      ),
    );
  }

  function render() {
    const data = state.data;
    renderCustomer(data.customer);
    renderOrders(data.orders);
    renderMessages(data.messages);
    renderForm(data.templates);
  }

  function checked() {
    return Array.from(document.querySelectorAll('[data-testid="sidebar-message-check"]:checked'), (c) => c.value);
  }

  // ---------------------------------------------------------------- acting

  async function submit(form, path, body, done) {
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    flash("", true);
    try {
      const { ok, data } = await api(path, "POST", body);
      if (!ok) return flash(data.error || "没有成功", false);
      flash(done(data), true, data.order_no);
      return data;
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  async function create(event) {
    event.preventDefault();
    const form = $("create-form");
    const template = (state.data.templates || [])[0];
    if (!template) return;
    state.requestId = state.requestId || requestId(); // kept until it worked: a retry is the same order
    const body = {
      external_userid: state.externalUserId,
      template_id: template.id,
      customer_name: $("f-customer-name").value,
      category: $("f-category").value,
      priority: $("f-priority").value,
      description: $("f-description").value,
      msg_ids: checked(),
      request_id: state.requestId,
    };
    const made = await submit(form, "workorders", body, (d) => "已创建工单 " + d.order_no + "，关联 " + d.total + " 条聊天记录");
    if (made) {
      state.requestId = "";
      form.reset();
      await reload();
      flash("已创建工单 " + made.order_no + "，关联 " + made.total + " 条聊天记录", true, made.order_no);
    }
  }

  async function link(event) {
    event.preventDefault();
    const body = { external_userid: state.externalUserId, order_no: $("f-order").value, msg_ids: checked() };
    const done = await submit($("link-form"), "links", body, (d) => "已关联到工单 " + d.order_no + "，共 " + d.total + " 条");
    if (done) {
      await reload();
      flash("已关联到工单 " + done.order_no + "，共 " + done.total + " 条", true, done.order_no);
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("create-form").addEventListener("submit", create);
    $("link-form").addEventListener("submit", link);
    connect().catch((error) => status("出错了：" + error, "error"));
  });
})();
