/* bankbot web chat: plain JavaScript, no build step.
 *
 * Anonymous visitors talk to the REST channel (/webhooks/rest/webhook) with a random sender id
 * kept in localStorage. A customer picked in the development login talks to the app channel
 * (/webhooks/app/webhook) with "Authorization: Bearer <JWT>" from POST /dev/login.
 * Messages go out one at a time from a queue; on a network error (or 429/503) the head of the
 * queue is retried with exponential backoff while a banner says so.
 */
(function () {
  "use strict";

  var REST_URL = "/webhooks/rest/webhook";
  var APP_URL = "/webhooks/app/webhook";
  var LOGIN_URL = "/dev/login";
  var KEY_SENDER = "bankbot.sender";
  var KEY_LARGE = "bankbot.largeText";
  var KEY_LOGIN = "bankbot.login";
  var MAX_CHARS = 2000;
  var BACKOFF_MIN = 1000;
  var BACKOFF_MAX = 30000;

  var $ = function (id) { return document.getElementById(id); };
  var els = {
    messages: $("messages"), typing: $("typing"), banner: $("banner"), input: $("input"),
    sendForm: $("send-form"), human: $("human"), large: $("large-text"),
    identity: $("identity"), login: $("login"), loginForm: $("login-form"),
    loginOptions: $("login-options"), loginError: $("login-error"),
    loginOpen: $("login-open"), chat: $("chat")
  };

  // ---- storage (private mode may refuse it: fall back to memory) --------------------------
  var memory = {};
  function store(kind) {
    try { var s = window[kind]; s.setItem("bankbot.test", "1"); s.removeItem("bankbot.test"); return s; }
    catch (e) {
      return {
        getItem: function (k) { return k in memory ? memory[k] : null; },
        setItem: function (k, v) { memory[k] = String(v); },
        removeItem: function (k) { delete memory[k]; }
      };
    }
  }
  var local = store("localStorage");
  var session = store("sessionStorage");

  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var bytes = new Uint8Array(16);
    (window.crypto || {}).getRandomValues ? crypto.getRandomValues(bytes)
      : bytes.forEach(function (_, i) { bytes[i] = Math.floor(Math.random() * 256); });
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  function anonymousSender() {
    var id = local.getItem(KEY_SENDER);
    if (!id) { id = "web-" + randomId(); local.setItem(KEY_SENDER, id); }
    return id;
  }

  // ---- state ---------------------------------------------------------------------------------
  var state = {
    login: null,        // {customer_id, name, token, expires_at} or null (anonymous)
    chosen: false,      // an identity was picked (anonymous counts)
    queue: [],          // messages waiting to be sent, in order
    sending: false,
    attempt: 0,
    retryTimer: null
  };

  // ---- large text ----------------------------------------------------------------------------
  function setLarge(on) {
    document.documentElement.classList.toggle("large-text", on);
    els.large.setAttribute("aria-pressed", on ? "true" : "false");
    local.setItem(KEY_LARGE, on ? "1" : "0");
  }
  els.large.addEventListener("click", function () {
    setLarge(els.large.getAttribute("aria-pressed") !== "true");
  });
  setLarge(local.getItem(KEY_LARGE) === "1");

  // ---- rendering -----------------------------------------------------------------------------
  function scrollToEnd() {
    els.chat.scrollTop = els.chat.scrollHeight;
  }

  function addItem(kind, who) {
    var li = document.createElement("li");
    li.className = "msg msg-" + kind;
    var label = document.createElement("span");
    label.className = "visually-hidden";
    label.textContent = who + "：";
    li.appendChild(label);
    els.messages.appendChild(li);
    return li;
  }

  function addUser(text) {
    var li = addItem("user", "我");
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text;
    li.appendChild(bubble);
    var status = document.createElement("span");
    status.className = "msg-status";
    li.appendChild(status);
    scrollToEnd();
    return li;
  }

  function addNote(text) {
    var li = addItem("note", "提示");
    var span = document.createElement("span");
    span.textContent = text;
    li.appendChild(span);
    scrollToEnd();
    return li;
  }

  function addBot(message) {
    var li = addItem("bot", "客服");
    if (message.text) {
      var bubble = document.createElement("div");
      bubble.className = "bubble";
      bubble.textContent = message.text;
      li.appendChild(bubble);
    }
    if (message.image) {
      var img = document.createElement("img");
      img.src = message.image;
      img.alt = "客服发送的图片";
      img.className = "bubble-image";
      li.appendChild(img);
    }
    var buttons = Array.isArray(message.buttons) ? message.buttons : [];
    if (buttons.length) {
      var group = document.createElement("div");
      group.className = "chips";
      group.setAttribute("role", "group");
      group.setAttribute("aria-label", "可选操作");
      buttons.forEach(function (b) {
        var title = String(b.title || b.payload || "");
        var payload = String(b.payload || b.title || "");
        if (!payload) return;
        var chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        chip.textContent = title;
        chip.dataset.payload = payload;
        chip.addEventListener("click", function () {
          chip.classList.add("chosen");
          chip.setAttribute("aria-pressed", "true");
          group.querySelectorAll("button").forEach(function (c) { c.disabled = true; });
          send(payload, title);
        });
        group.appendChild(chip);
      });
      li.appendChild(group);
    }
    if (!message.text && !message.image && !buttons.length && message.custom) {
      var pre = document.createElement("div");
      pre.className = "bubble";
      pre.textContent = typeof message.custom === "string" ? message.custom
        : JSON.stringify(message.custom);
      li.appendChild(pre);
    }
    scrollToEnd();
  }

  function setTyping(on) {
    els.typing.hidden = !on;
    if (on) scrollToEnd();
  }

  function showBanner(text, kind) {
    els.banner.textContent = text;
    els.banner.className = "banner" + (kind ? " banner-" + kind : "");
    els.banner.hidden = false;
  }
  function hideBanner() { els.banner.hidden = true; els.banner.textContent = ""; }

  // ---- identity ------------------------------------------------------------------------------
  function showIdentity() {
    els.identity.textContent = state.login
      ? state.login.name + "（" + state.login.customer_id + "）"
      : (state.chosen ? "匿名访客" : "未登录");
  }

  function saveLogin() {
    if (state.login) session.setItem(KEY_LOGIN, JSON.stringify(state.login));
    else session.removeItem(KEY_LOGIN);
  }

  function restoreLogin() {
    try {
      var saved = JSON.parse(session.getItem(KEY_LOGIN) || "null");
      if (saved && saved.token && saved.expires_at > Date.now() + 60000) return saved;
    } catch (e) { /* ignore */ }
    session.removeItem(KEY_LOGIN);
    return null;
  }

  function option(value, label, checked) {
    var wrap = document.createElement("label");
    wrap.className = "login-option";
    var input = document.createElement("input");
    input.type = "radio";
    input.name = "who";
    input.value = value;
    input.checked = !!checked;
    var span = document.createElement("span");
    span.textContent = label;
    wrap.appendChild(input);
    wrap.appendChild(span);
    els.loginOptions.appendChild(wrap);
  }

  function openLogin() {
    els.loginError.hidden = true;
    els.loginOptions.textContent = "";
    els.login.hidden = false;
    fetch(LOGIN_URL, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { customers: [] }; })
      .catch(function () { return { customers: [] }; })
      .then(function (data) {
        var current = state.login ? state.login.customer_id : (state.chosen ? "" : null);
        var customers = data.customers || [];
        customers.forEach(function (c, i) {
          option(c.id, c.name + "（" + c.id + "）",
                 current === c.id || (current === null && i === 0));
        });
        option("", "匿名访客", current === "" || !customers.length);
        if (!customers.length) {
          var p = document.createElement("p");
          p.className = "hint";
          p.textContent = "开发登录未开启，只能以匿名访客身份咨询。";
          els.loginOptions.appendChild(p);
        }
        var checked = els.loginOptions.querySelector("input:checked");
        if (checked) checked.focus();
      });
  }

  els.loginOpen.addEventListener("click", openLogin);

  els.loginForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var picked = els.loginOptions.querySelector("input:checked");
    var who = picked ? picked.value : "";
    var previous = state.login ? state.login.customer_id : (state.chosen ? "" : null);
    function done(login) {
      state.login = login;
      state.chosen = true;
      saveLogin();
      showIdentity();
      els.login.hidden = true;
      if (previous !== who) {
        els.messages.textContent = "";
        addNote(login ? "已以 " + login.name + "（" + login.customer_id + "）身份登录（开发环境）。"
                      : "您正在以匿名访客身份咨询，查询账户需登录。");
      }
      els.input.focus();
    }
    if (!who) { done(null); return; }
    els.loginError.hidden = true;
    fetch(LOGIN_URL, {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ customer_id: who })
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (body) {
        if (!r.ok) throw new Error(body.error || ("HTTP " + r.status));
        return body;
      });
    }).then(function (body) {
      done({ customer_id: body.customer_id, name: body.name, token: body.token,
             expires_at: Date.now() + body.expires_in * 1000 });
    }).catch(function (err) {
      els.loginError.textContent = "登录失败：" + (err && err.message ? err.message : "网络错误");
      els.loginError.hidden = false;
    });
  });

  // ---- sending -------------------------------------------------------------------------------
  function send(payload, display) {
    var text = String(payload);
    if (!text.trim()) return;
    if (!state.chosen) { openLogin(); return; }
    var item = addUser(display || text);
    state.queue.push({ message: text, item: item });
    markQueued();
    pump();
  }

  function markQueued() {
    state.queue.forEach(function (q, i) {
      q.item.classList.toggle("pending", true);
      q.item.querySelector(".msg-status").textContent =
        i === 0 && state.sending ? "发送中…" : "等待发送";
    });
  }

  function delay(ms) { return new Promise(function (resolve) { setTimeout(resolve, ms); }); }

  function post(entry) {
    var headers = { "Content-Type": "application/json", Accept: "application/json" };
    var body = { message: entry.message, metadata: { client: "webchat" } };
    var url = REST_URL;
    if (state.login) {
      url = APP_URL;
      headers.Authorization = "Bearer " + state.login.token;
    } else {
      body.sender = anonymousSender();
    }
    return fetch(url, { method: "POST", headers: headers, body: JSON.stringify(body) });
  }

  function scheduleRetry(reason, retryAfterMs) {
    state.attempt += 1;
    var backoff = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, state.attempt - 1));
    var wait = Math.max(retryAfterMs || 0, backoff * (0.8 + Math.random() * 0.4));
    showBanner(reason + "，" + Math.ceil(wait / 1000) + " 秒后重试（第 " + state.attempt +
               " 次）。您的消息会在恢复后自动发送。", "warn");
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(function () { state.retryTimer = null; pump(); }, wait);
  }

  function retryNow() {
    if (state.retryTimer) {
      clearTimeout(state.retryTimer);
      state.retryTimer = null;
      pump();
    }
  }
  window.addEventListener("online", function () {
    showBanner("网络已恢复，正在重新连接…", "info");
    retryNow();
  });
  window.addEventListener("offline", function () {
    showBanner("网络连接已断开。您可以继续输入，消息会在网络恢复后自动发送。", "warn");
  });

  function finish(entry, statusText) {
    state.queue.shift();
    entry.item.classList.remove("pending");
    entry.item.querySelector(".msg-status").textContent = statusText || "";
    if (statusText) entry.item.classList.add("failed");
  }

  function pump() {
    if (state.sending || state.retryTimer || !state.queue.length) return;
    var entry = state.queue[0];
    state.sending = true;
    markQueued();
    setTyping(true);
    post(entry).then(function (response) {
      if ([429, 502, 503, 504].indexOf(response.status) >= 0) {  // transient: try again
        var after = parseFloat(response.headers.get("Retry-After") || "0") * 1000;
        return { retry: response.status === 429 ? "发送太频繁" : "服务繁忙", after: after };
      }
      return response.json().catch(function () { return null; }).then(function (body) {
        return { status: response.status, ok: response.ok, body: body };
      });
    }).catch(function () {
      return { retry: navigator.onLine === false ? "网络连接已断开" : "无法连接服务器" };
    }).then(function (result) {
      state.sending = false;
      setTyping(false);
      if (result.retry) {
        markQueued();
        scheduleRetry(result.retry, result.after);
        return;
      }
      if (state.attempt) { state.attempt = 0; showBanner("已重新连接。", "ok");
        setTimeout(function () { if (!state.retryTimer) hideBanner(); }, 2500); }
      if (result.ok && Array.isArray(result.body)) {
        finish(entry);
        result.body.forEach(addBot);
      } else if (result.status === 401 && state.login) {
        finish(entry, "未发送");
        state.login = null;
        state.chosen = false;
        saveLogin();
        showIdentity();
        addNote("登录已过期，请重新选择身份后再发送。");
        state.queue.forEach(function (q) {
          q.item.classList.remove("pending");
          q.item.classList.add("failed");
          q.item.querySelector(".msg-status").textContent = "未发送";
        });
        state.queue = [];
        openLogin();
        return;
      } else {
        var error = result.body && result.body.error ? result.body.error : "HTTP " + result.status;
        finish(entry, "发送失败");
        addNote("消息没有发送成功（" + error + "）。");
      }
      pump();
    });
  }

  // ---- composer ------------------------------------------------------------------------------
  function autoGrow() {
    els.input.style.height = "auto";
    els.input.style.height = Math.min(els.input.scrollHeight, 160) + "px";
  }
  els.input.addEventListener("input", autoGrow);
  els.input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.sendForm.requestSubmit ? els.sendForm.requestSubmit()
        : els.sendForm.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  els.sendForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var text = els.input.value.trim();
    if (!text) return;
    if (text.length > MAX_CHARS) text = text.slice(0, MAX_CHARS);
    els.input.value = "";
    autoGrow();
    send(text);
    els.input.focus();
  });
  els.human.addEventListener("click", function () { send("/request_human", "转人工"); });

  // ---- start ---------------------------------------------------------------------------------
  state.login = restoreLogin();
  state.chosen = !!state.login;
  showIdentity();
  if (!navigator.onLine) {
    showBanner("网络连接已断开。您可以继续输入，消息会在网络恢复后自动发送。", "warn");
  }
  if (state.login) {
    addNote("欢迎回来，" + state.login.name + "。");
  } else {
    openLogin();
  }

  // For tests and debugging.
  window.bankbotChat = { state: state, send: send };
})();
