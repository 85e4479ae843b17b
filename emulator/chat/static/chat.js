// The emulator's chat page. Plain JavaScript, no build step. Every piece of data is put in the DOM
// with textContent or as attribute values (URLs checked first): never as HTML.
//
// /?platform=wecom&userid=LiNa opens that person's chat; without both, the picker.
// The timeline comes from /_chat/events (Server-Sent Events: "snapshot", then "entry" per change);
// sending and clicking POST to /_chat/send and /_chat/click, which make the platform's real callback.
"use strict";

(function () {
  const PLATFORM_NAMES = { wecom: "企业微信", dingtalk: "钉钉" };
  const $ = (id) => document.getElementById(id);

  const params = new URLSearchParams(window.location.search);
  const state = {
    platform: params.get("platform") || "",
    userid: params.get("userid") || "",
    people: {}, // platform -> [{userid, name, department}]
    versions: new Map(), // entry id -> version shown
    source: null,
  };

  // ---------------------------------------------------------------- small DOM helpers

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

  function showError(message) {
    const box = $("error");
    box.textContent = message;
    box.hidden = !message;
  }

  async function postJson(path, body) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    let data = {};
    try {
      data = await response.json();
    } catch (_) {
      data = { error: "HTTP " + response.status };
    }
    return { ok: response.ok, status: response.status, data };
  }

  // ---------------------------------------------------------------- links

  /** The http(s) URL a card link opens, or "" (dingtalk://...?url= is unwrapped; other schemes refused). */
  function safeUrl(raw) {
    if (!raw) return "";
    let url;
    try {
      url = new URL(raw, window.location.href);
    } catch (_) {
      return "";
    }
    if (url.protocol === "dingtalk:") {
      const inner = url.searchParams.get("url");
      return inner ? safeUrl(inner) : "";
    }
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : "";
  }

  /** Who is "logged in" for the WeCom OAuth stand-in: set before any WeCom link opens. */
  function rememberWeComUser() {
    if (state.platform === "wecom") {
      document.cookie =
        "emulator_wecom_user=" + encodeURIComponent(state.userid) + "; path=/; SameSite=Lax";
    }
  }

  function openLink(raw) {
    const url = safeUrl(raw);
    if (!url) {
      showError("这个链接无法在模拟器里打开：" + raw);
      return;
    }
    rememberWeComUser();
    $("overlay-open").href = url;
    $("overlay-frame").src = url;
    $("overlay").hidden = false;
  }

  function closeOverlay() {
    $("overlay").hidden = true;
    $("overlay-frame").removeAttribute("src");
  }

  function linkNode(text, raw, attrs) {
    const url = safeUrl(raw);
    const a = el("a", Object.assign({ href: url || "#", "data-url": raw }, attrs || {}), text);
    a.addEventListener("click", (event) => {
      event.preventDefault();
      openLink(raw);
    });
    // a middle click or "open in new tab" skips the click handler: the cookie must be there first
    a.addEventListener("mousedown", rememberWeComUser);
    a.addEventListener("auxclick", rememberWeComUser);
    a.addEventListener("contextmenu", rememberWeComUser);
    return a;
  }

  // ---------------------------------------------------------------- text and a little markdown

  const URL_TEXT = /https?:\/\/[^\s<>"'，。；）)\]]+/g;
  const INLINE = /\*\*([^*]+)\*\*|\[([^\]]+)\]\(([^)\s]+)\)|(https?:\/\/[^\s<>"'，。；）)\]]+)/g;

  /** Text with its http(s) URLs as links (as the clients show them). */
  function linkify(text) {
    const out = document.createDocumentFragment();
    let last = 0;
    for (const match of String(text).matchAll(URL_TEXT)) {
      out.append(text.slice(last, match.index), linkNode(match[0], match[0], {}));
      last = match.index + match[0].length;
    }
    out.append(text.slice(last));
    return out;
  }

  function inline(text) {
    const out = document.createDocumentFragment();
    let last = 0;
    for (const match of text.matchAll(INLINE)) {
      out.append(text.slice(last, match.index));
      if (match[1] !== undefined) out.append(el("strong", { text: match[1] }));
      else if (match[2] !== undefined) out.append(linkNode(match[2], match[3], {}));
      else out.append(linkNode(match[4], match[4], {}));
      last = match.index + match[0].length;
    }
    out.append(text.slice(last));
    return out;
  }

  function markdown(text) {
    const box = document.createDocumentFragment();
    for (const line of String(text).split("\n")) {
      const heading = line.match(/^#{1,6}\s+(.*)$/);
      const item = line.match(/^\s*[-*]\s+(.*)$/);
      if (heading) box.append(el("span", { class: "md-title" }, inline(heading[1])));
      else if (item) box.append(el("p", { class: "md-li" }, inline(item[1])));
      else box.append(el("p", {}, inline(line)));
    }
    return box;
  }

  function textBubble(text) {
    const bubble = el("div", { class: "bubble", "data-testid": "bubble-text" });
    if (text.format === "markdown") {
      if (text.title && !String(text.text).trim().startsWith("#")) {
        bubble.append(el("span", { class: "md-title", text: text.title }));
      }
      bubble.append(markdown(text.text));
    } else {
      bubble.append(linkify(text.text));
    }
    return bubble;
  }

  // ---------------------------------------------------------------- cards

  function card(entry) {
    const view = entry.card;
    const decided = view.result !== null && view.result !== undefined;
    const node = el("div", {
      class: "card card-" + view.look,
      "data-testid": "card",
      "data-card-id": entry.card_id,
      "data-card-type": view.card_type,
      "data-state": decided ? "done" : view.buttons.length ? "pending" : "info",
    });
    if (view.source) node.append(el("div", { class: "card-source", "data-testid": "card-source", text: view.source }));
    if (view.title) node.append(el("div", { class: "card-title", "data-testid": "card-title", text: view.title }));
    if (view.desc) node.append(el("div", { class: "card-desc", "data-testid": "card-desc", text: view.desc }));
    if (view.emphasis) {
      node.append(
        el(
          "div",
          { class: "card-emphasis", "data-testid": "card-emphasis" },
          el("div", { class: "big", text: view.emphasis.title }),
          el("div", { class: "small", text: view.emphasis.desc }),
        ),
      );
    }
    if (view.quote) {
      const quote = el(
        "div",
        { class: "card-quote", "data-testid": "card-quote" },
        view.quote.title ? el("div", { class: "quote-title", text: view.quote.title }) : null,
        view.quote.text ? el("div", { text: view.quote.text }) : null,
      );
      if (view.quote.url) quote.append(linkNode("打开", view.quote.url, {}));
      node.append(quote);
    }
    if (view.sub_title) {
      node.append(el("div", { class: "card-subtitle", "data-testid": "card-subtitle", text: view.sub_title }));
    }
    if (view.body) {
      const body = el("div", { class: "card-body", "data-testid": "card-body" });
      if (view.body.format === "markdown") body.append(markdown(view.body.text));
      else body.append(linkify(view.body.text));
      node.append(body);
    }
    if (view.rows.length) {
      const rows = el("dl", { class: "card-rows" });
      for (const row of view.rows) {
        const value = row.url ? linkNode(row.value, row.url, {}) : row.value;
        rows.append(
          el(
            "div",
            { class: "card-row", "data-testid": "card-row", "data-key": row.key },
            el("dt", { text: row.key }),
            el("dd", { "data-testid": "card-row-value" }, value),
          ),
        );
      }
      node.append(rows);
    }
    if (view.status) {
      const status = el("div", { class: "card-status", "data-testid": "card-status", text: view.status.text });
      if (/^#[0-9A-F]{6}$/i.test(view.status.color || "")) status.style.background = view.status.color;
      node.append(status);
    }
    if (decided) {
      node.append(el("div", { class: "card-result", "data-testid": "card-result", text: view.result }));
    } else if (view.buttons.length) {
      const buttons = el("div", { class: "card-buttons" });
      for (const button of view.buttons) {
        const b = el("button", {
          type: "button",
          class: "card-button",
          "data-testid": "card-button",
          "data-key": button.key,
          "data-style": button.style,
          text: button.text,
        });
        b.addEventListener("click", () =>
          button.url ? openLink(button.url) : clickButton(entry, button.key, node),
        );
        buttons.append(b);
      }
      node.append(buttons);
    }
    if (view.links.length) {
      const links = el("div", { class: "card-links" });
      for (const link of view.links) {
        links.append(linkNode(link.text, link.url, { class: "card-link", "data-testid": "card-link" }));
      }
      node.append(links);
    }
    return node;
  }

  async function clickButton(entry, key, node) {
    const buttons = node.querySelectorAll("button.card-button");
    buttons.forEach((b) => (b.disabled = true));
    showError("");
    try {
      const { ok, data } = await postJson("/_chat/click", {
        platform: state.platform,
        userid: state.userid,
        card_id: entry.card_id,
        key,
      });
      if (data.entry) upsert(data.entry);
      if (!ok) showError(data.error || "点击没有成功");
    } catch (error) {
      showError("点击没有送达：" + error);
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  }

  // ---------------------------------------------------------------- the timeline

  function personName() {
    const person = (state.people[state.platform] || []).find((p) => p.userid === state.userid);
    return person ? person.name : state.userid;
  }

  function timeOf(iso) {
    const at = new Date(iso);
    return isNaN(at) ? "" : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function message(entry) {
    const mine = entry.direction === "out";
    const node = el("div", {
      class: "message",
      "data-testid": "message",
      "data-entry-id": entry.id,
      "data-seq": entry.seq,
      "data-kind": entry.kind,
      "data-direction": entry.direction,
      "data-status": entry.status,
      "data-version": entry.version,
    });
    const avatar = el("div", { class: "avatar", "aria-hidden": "true", text: mine ? personName().slice(0, 1) : "工" });
    const body = el("div", { class: "message-body" });
    body.append(el("time", { class: "meta", datetime: entry.at, text: timeOf(entry.at) }));
    if (entry.kind === "card" && entry.card) body.append(card(entry));
    else body.append(textBubble(entry.text || { text: "", format: "plain" }));
    if (entry.status === "failed") {
      body.append(el("div", { class: "failed-note", "data-testid": "message-error", text: "发送失败：" + entry.error }));
    }
    node.append(avatar, body);
    return node;
  }

  function upsert(entry) {
    const shown = state.versions.get(entry.id);
    if (shown !== undefined && shown >= entry.version) return;
    state.versions.set(entry.id, entry.version);
    const list = $("messages");
    const stick = list.scrollHeight - list.scrollTop - list.clientHeight < 80 || entry.direction === "out";
    const node = message(entry);
    const old = list.querySelector('[data-entry-id="' + CSS.escape(entry.id) + '"]');
    if (old) {
      old.replaceWith(node);
    } else {
      const after = Array.from(list.children).find((n) => Number(n.dataset.seq) > entry.seq);
      list.insertBefore(node, after || null);
    }
    if (stick) list.scrollTop = list.scrollHeight;
  }

  function connect() {
    const query = new URLSearchParams({ platform: state.platform, userid: state.userid });
    const source = new EventSource("/_chat/events?" + query.toString());
    state.source = source;
    const status = $("connection");
    source.addEventListener("open", () => (status.dataset.state = "open"));
    source.addEventListener("error", () => {
      status.dataset.state = source.readyState === EventSource.CLOSED ? "closed" : "connecting";
    });
    source.addEventListener("snapshot", (event) => {
      const data = JSON.parse(event.data);
      $("messages").replaceChildren();
      state.versions.clear();
      data.entries.forEach(upsert);
      status.dataset.state = "open";
    });
    source.addEventListener("entry", (event) => upsert(JSON.parse(event.data)));
  }

  async function send(event) {
    event.preventDefault();
    const input = $("message-input");
    const text = input.value.trim();
    if (!text) return;
    const button = $("send-button");
    button.disabled = true;
    showError("");
    try {
      const { ok, data } = await postJson("/_chat/send", {
        platform: state.platform,
        userid: state.userid,
        text,
      });
      if (data.entry) upsert(data.entry);
      if (ok) input.value = "";
      else showError(data.error || "发送失败");
    } catch (error) {
      showError("发送失败：" + error);
    } finally {
      button.disabled = false;
      input.focus();
    }
  }

  // ---------------------------------------------------------------- picker

  function chatUrl(platform, userid) {
    return "/?" + new URLSearchParams({ platform, userid }).toString();
  }

  function fillPeople() {
    const platform = $("platform-picker").value;
    const people = state.people[platform] || [];
    const select = $("person-picker");
    select.replaceChildren(
      ...people.map((p) =>
        el("option", { value: p.userid, text: p.name + "（" + p.userid + "）", selected: p.userid === state.userid }),
      ),
    );
    $("people").replaceChildren(
      ...people.map((p) =>
        el(
          "li",
          {},
          el(
            "a",
            { href: chatUrl(platform, p.userid), "data-testid": "person-option", "data-userid": p.userid },
            el("span", { class: "avatar", text: p.name.slice(0, 1) }),
            el("span", { text: p.name }),
            el("span", { class: "dept", text: p.department }),
          ),
        ),
      ),
    );
    document.body.className = "look-" + (platform || "wecom");
  }

  function showPicker(problem) {
    $("chat").hidden = true;
    $("picker").hidden = false;
    const platforms = Object.keys(state.people);
    $("platform-picker").replaceChildren(
      ...platforms.map((p) =>
        el("option", { value: p, text: PLATFORM_NAMES[p] || p, selected: p === state.platform }),
      ),
    );
    fillPeople();
    $("picker-error").textContent = problem || "";
    $("picker-error").hidden = !problem;
  }

  function showChat() {
    document.body.className = "look-" + state.platform;
    $("picker").hidden = true;
    $("chat").hidden = false;
    $("platform-label").textContent = PLATFORM_NAMES[state.platform] || state.platform;
    $("current-person").textContent = personName();
    $("current-person").dataset.userid = state.userid;
    document.title = personName() + " · " + (PLATFORM_NAMES[state.platform] || state.platform) + " · 工单助手";
    connect();
    $("message-input").focus();
  }

  async function start() {
    $("picker-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const platform = $("platform-picker").value;
      const userid = $("person-picker").value;
      if (platform && userid) window.location.assign(chatUrl(platform, userid));
    });
    $("platform-picker").addEventListener("change", fillPeople);
    $("composer").addEventListener("submit", send);
    $("overlay-close").addEventListener("click", closeOverlay);
    $("overlay-open").addEventListener("mousedown", rememberWeComUser);
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") closeOverlay();
    });
    try {
      const response = await fetch("/_chat/people");
      state.people = await response.json();
    } catch (error) {
      showPicker("读取通讯录失败：" + error);
      return;
    }
    if (!state.platform && !state.userid) return showPicker("");
    if (!state.people[state.platform]) return showPicker("这里没有平台 " + state.platform);
    if (!state.people[state.platform].some((p) => p.userid === state.userid)) {
      return showPicker("通讯录里没有 " + state.userid);
    }
    showChat();
  }

  window.addEventListener("pagehide", () => state.source && state.source.close());
  document.addEventListener("DOMContentLoaded", start);
})();
