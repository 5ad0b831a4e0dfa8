/* bankbot web chat: plain JavaScript, no build step.
 *
 * Anonymous visitors talk to the REST channel (/webhooks/rest/webhook) with a random sender id
 * kept in sessionStorage (and localStorage, for a returning visitor). A customer picked in the
 * development login talks to the app channel (/webhooks/app/webhook) with
 * "Authorization: Bearer <JWT>" from POST /dev/login.
 * Messages go out one at a time from a queue; on a network error (or 429/503) the head of the
 * queue is retried with exponential backoff while a banner says so. Every message carries a
 * metadata.message_id that stays the same across retries, so the server can skip a message it
 * has already processed.
 * Messages that do not answer a request (a human agent's replies, the rating request) and the
 * customer's place in the human-agent queue arrive on a server-sent event stream
 * (/webhooks/app/events; a logged-in customer opens it with a one-time ticket from
 * POST /webhooks/app/events/ticket, never with the token in the URL); after a reload the
 * transcript comes back from /webhooks/app/history.
 */
(function () {
  "use strict";

  var REST_URL = "/webhooks/rest/webhook";
  var APP_URL = "/webhooks/app/webhook";
  var LOGIN_URL = "/dev/login";
  var EVENTS_URL = "/webhooks/app/events";
  var WELCOME_URL = "/webhooks/app/welcome";
  var PREFERENCES_URL = "/webhooks/app/preferences";
  var HISTORY_URL = "/webhooks/app/history";
  var KEY_SENDER = "bankbot.sender";
  var KEY_ANONYMOUS = "bankbot.anonymous";
  var KEY_LARGE = "bankbot.largeText";
  var KEY_LOGIN = "bankbot.login";
  var MAX_CHARS = 2000;
  var BACKOFF_MIN = 1000;
  var BACKOFF_MAX = 30000;
  var ECHO_MS = 20000;  // a message seen on both the stream and a response, within this time

  var $ = function (id) { return document.getElementById(id); };
  var els = {
    messages: $("messages"), typing: $("typing"), banner: $("banner"), input: $("input"),
    sendForm: $("send-form"), human: $("human"), large: $("large-text"),
    identity: $("identity"), login: $("login"), loginForm: $("login-form"),
    loginOptions: $("login-options"), loginError: $("login-error"),
    loginOpen: $("login-open"), chat: $("chat"), handoff: $("handoff-status")
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
    // This tab's conversation (a reload continues it); a new tab continues the visitor's last.
    var id = session.getItem(KEY_SENDER) || local.getItem(KEY_SENDER);
    if (!id) id = "web-" + randomId();
    session.setItem(KEY_SENDER, id);
    local.setItem(KEY_SENDER, id);
    return id;
  }

  // ---- state ---------------------------------------------------------------------------------
  var state = {
    login: null,        // {customer_id, name, token, expires_at} or null (anonymous)
    chosen: false,      // an identity was picked (anonymous counts)
    queue: [],          // messages waiting to be sent, in order
    sending: false,
    attempt: 0,
    retryTimer: null,
    stream: null,       // the EventSource of the live stream
    streamKey: "",      // whom it was opened for
    streamPending: false,  // a ticket for it is being fetched
    streamAttempt: 0,
    streamTimer: null,
    held: [],           // stream messages that arrived while a request was under way
    echoes: [],         // recently shown messages: {key, source, at} (see deliver())
    handoffTimer: null
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

  // The time of a message (HH:MM), from its timestamp in seconds (history) or now.
  function addTime(li, at) {
    var d = at ? new Date(at * 1000) : new Date();
    var time = document.createElement("time");
    time.className = "msg-time";
    time.dateTime = d.toISOString();
    time.textContent = ("0" + d.getHours()).slice(-2) + ":" + ("0" + d.getMinutes()).slice(-2);
    li.appendChild(time);
  }

  // Text with its http(s) links clickable (built as nodes: nothing of the text is HTML).
  var LINK = /https?:\/\/[^\s<>"'，。；！？、）)]+/g;
  function fillText(node, text) {
    var last = 0;
    text.replace(LINK, function (url, offset) {
      if (offset > last) node.appendChild(document.createTextNode(text.slice(last, offset)));
      var a = document.createElement("a");
      a.href = url;
      a.textContent = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      node.appendChild(a);
      last = offset + url.length;
      return url;
    });
    if (last < text.length) node.appendChild(document.createTextNode(text.slice(last)));
  }

  function safeUrl(url) {
    return typeof url === "string" && /^https?:\/\//.test(url) ? url : null;
  }

  // A custom payload {type: "account_card", title, rows: [{label, value, main}], note, links}
  // (the balance responses of domain.yml) drawn as a card; other channels send the text.
  function addCard(li, card, text) {
    var box = document.createElement("div");
    box.className = "card";
    box.dataset.testid = "account-card";
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", text || String(card.title || ""));
    if (card.title) {
      var title = document.createElement("div");
      title.className = "card-title";
      title.textContent = String(card.title);
      box.appendChild(title);
    }
    var rows = Array.isArray(card.rows) ? card.rows : [];
    var list = document.createElement("dl");
    rows.forEach(function (row) {
      if (!row || row.value === undefined || row.value === null || row.value === "") return;
      var dt = document.createElement("dt");
      dt.textContent = String(row.label || "");
      var dd = document.createElement("dd");
      dd.textContent = String(row.value);
      if (row.main) dd.className = "card-main";
      list.appendChild(dt);
      list.appendChild(dd);
    });
    box.appendChild(list);
    if (card.note) {
      var note = document.createElement("div");
      note.className = "card-note";
      note.textContent = String(card.note);
      box.appendChild(note);
    }
    (Array.isArray(card.links) ? card.links : []).forEach(function (link) {
      var url = link && safeUrl(link.url);
      if (!url) return;
      var a = document.createElement("a");
      a.className = "card-link";
      a.href = url;
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = String(link.title || url);
      box.appendChild(a);
    });
    li.appendChild(box);
  }

  function isCard(custom) {
    return !!(custom && typeof custom === "object" && custom.type === "account_card");
  }

  // Once the customer writes or presses something, the chips of earlier messages are history:
  // an abandoned flow's choices cannot be pressed later.
  function retireChips() {
    els.messages.querySelectorAll(".chip:not(:disabled)").forEach(function (chip) {
      if (chip.tagName === "BUTTON") chip.disabled = true;
    });
  }

  function addUser(text, at) {
    var li = addItem("user", "我");
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text;
    li.appendChild(bubble);
    addTime(li, at);
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

  function fromAgent(message) {
    var custom = message.custom;
    return !!(message.from === "agent" || (custom && typeof custom === "object"
                                           && custom.from === "agent"));
  }

  function agentName(message) {
    var custom = message.custom;
    var id = message.agent || (custom && typeof custom === "object" ? custom.agent : null);
    return id ? "人工客服（工号 " + id + "）" : "人工客服";
  }

  function addBot(message, options) {
    var agent = fromAgent(message);
    var li = addItem("bot", agent ? agentName(message) : "客服");
    if (agent) {
      li.classList.add("msg-agent");
      var tag = document.createElement("span");
      tag.className = "msg-from";
      tag.setAttribute("aria-hidden", "true");
      tag.textContent = agentName(message);
      li.appendChild(tag);
    }
    var card = isCard(message.custom) && !agent;
    if (card) addCard(li, message.custom, message.text);
    if (message.text && !card) {
      var bubble = document.createElement("div");
      bubble.className = "bubble";
      fillText(bubble, String(message.text));
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
        if (options && options.inactive) {  // a restored message: its buttons are history
          var past = document.createElement("span");
          past.className = "chip chip-past";
          past.textContent = title;
          group.appendChild(past);
          return;
        }
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
    if (!message.text && !message.image && !buttons.length && message.custom && !agent && !card) {
      var pre = document.createElement("div");
      pre.className = "bubble";
      pre.textContent = typeof message.custom === "string" ? message.custom
        : JSON.stringify(message.custom);
      li.appendChild(pre);
    }
    addTime(li, message.at);
    scrollToEnd();
    return li;
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
    if (state.chosen && !state.login) session.setItem(KEY_ANONYMOUS, "1");
    else session.removeItem(KEY_ANONYMOUS);
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
        state.echoes = [];
        showHandoff(null);
        addNote(login ? "已以 " + login.name + "（" + login.customer_id + "）身份登录（开发环境）。"
                      : "您正在以匿名访客身份咨询，查询账户需登录。");
      }
      if (previous !== who) { welcome(); offerLargeText(); }
      connectStream();
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
    retireChips();
    var item = addUser(display || text);
    // The id stays the same when the message is retried: the server skips one it has seen.
    state.queue.push({ message: text, item: item, id: randomId() });
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
    var body = { message: entry.message,
                 metadata: { client: "webchat", message_id: entry.id } };
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
    if (state.chosen && !state.stream) { state.streamKey = ""; connectStream(); }
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
        flushHeld();
        scheduleRetry(result.retry, result.after);
        return;
      }
      if (state.attempt) { state.attempt = 0; showBanner("已重新连接。", "ok");
        setTimeout(function () { if (!state.retryTimer) hideBanner(); }, 2500); }
      if (result.ok && Array.isArray(result.body)) {
        finish(entry);
        result.body.forEach(function (m) { deliver(m, "response"); });
        flushHeld();
      } else if (result.status === 401 && state.login) {
        finish(entry, "未发送");
        flushHeld();
        state.login = null;
        state.chosen = false;
        saveLogin();
        showIdentity();
        closeStream();
        showHandoff(null);
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
        flushHeld();
        finish(entry, "发送失败");
        addNote("消息没有发送成功（" + error + "）。");
      }
      pump();
    });
  }

  // ---- messages from two sources --------------------------------------------------------------
  // A message can arrive twice: in the answer to the customer's request and on the live stream
  // (the server publishes there what it sends while a human agent is involved, e.g. the queue
  // notice). Stream messages that arrive while a request is under way wait in state.held, so
  // that the answer's messages come first; a message shown from one source is not shown again
  // when the other source delivers it within ECHO_MS.
  function messageKey(m) {
    var buttons = Array.isArray(m.buttons) ? m.buttons.map(function (b) {
      return [b.title || "", b.payload || ""];
    }) : [];
    return JSON.stringify([m.text || "", m.image || "", buttons]);
  }

  function deliver(message, source) {
    var key = messageKey(message);
    var now = Date.now();
    state.echoes = state.echoes.filter(function (e) { return now - e.at < ECHO_MS; });
    if (source === "response") {
      for (var i = 0; i < state.held.length; i++) {
        if (messageKey(state.held[i]) === key) {  // both copies: show it once, here
          var streamed = state.held.splice(i, 1)[0];
          addBot(fromAgent(streamed) ? streamed : message);
          return;
        }
      }
    }
    for (var j = 0; j < state.echoes.length; j++) {
      if (state.echoes[j].key === key && state.echoes[j].source !== source) {
        state.echoes.splice(j, 1);  // the other copy of a message already shown
        return;
      }
    }
    state.echoes.push({ key: key, source: source, at: now });
    addBot(message);
  }

  function flushHeld() {
    var held = state.held;
    state.held = [];
    held.forEach(function (m) { deliver(m, "stream"); });
  }

  // ---- the human-agent queue status line -------------------------------------------------------
  function showHandoff(update) {
    var box = els.handoff;
    if (!box) return;
    clearTimeout(state.handoffTimer);
    box.textContent = "";
    box.className = "handoff-status";
    var status = update && update.status;
    if (status === "waiting") {
      var position = Math.max(1, Number(update.position) || 1);
      var minutes = Math.max(1, Math.round((Number(update.eta_seconds) || 0) / 60));
      var line = document.createElement("span");
      line.textContent = "您前面还有" + (position - 1) + "位客户，预计等待约" + minutes + "分钟";
      box.appendChild(line);
      if (update.can_leave_message) {
        var leave = document.createElement("button");
        leave.type = "button";
        leave.className = "chip";
        leave.textContent = "留言";
        leave.setAttribute("aria-label", "不再等待，给客服留言");
        leave.addEventListener("click", function () { send("/leave_message", "留言"); });
        box.appendChild(leave);
      }
      box.classList.add("handoff-waiting");
    } else if (status === "active") {
      box.textContent = "人工客服已接入";
      box.classList.add("handoff-active");
    } else if (status === "closed") {
      box.textContent = "人工服务已结束";
      state.handoffTimer = setTimeout(function () { showHandoff(null); }, 5000);
    } else {
      box.hidden = true;
      return;
    }
    box.hidden = false;
  }

  // ---- the live stream (server-sent events) -----------------------------------------------------
  // Who the stream is for; a logged-in customer's token never goes into a URL: the page trades
  // it (Authorization header) for a one-time ticket valid 30 s, and opens the stream with that.
  function streamKey() {
    return state.login ? "customer:" + state.login.customer_id : "sender:" + anonymousSender();
  }

  function streamUrl() {
    if (!state.login) {
      return Promise.resolve(EVENTS_URL + "?sender=" + encodeURIComponent(anonymousSender()));
    }
    return fetch(EVENTS_URL + "/ticket", {
      method: "POST",
      headers: { Authorization: "Bearer " + state.login.token, Accept: "application/json" }
    }).then(function (r) {
      if (!r.ok) throw new Error("ticket " + r.status);
      return r.json();
    }).then(function (body) {
      return EVENTS_URL + "?ticket=" + encodeURIComponent(body.ticket);
    });
  }

  function closeStream() {
    if (state.stream) state.stream.close();
    state.stream = null;
    state.streamKey = "";
    clearTimeout(state.streamTimer);
    state.streamTimer = null;
  }

  function parseEvent(event) {
    try {
      var data = JSON.parse(event.data);
      return data && typeof data === "object" ? data : null;
    } catch (e) { return null; }
  }

  function connectStream() {
    if (!state.chosen || typeof window.EventSource !== "function") return;
    var key = streamKey();
    // already listening (or getting a ticket) for this identity
    if (state.streamKey === key && (state.stream || state.streamPending)) return;
    closeStream();
    state.streamKey = key;
    state.streamPending = true;
    streamUrl().then(function (url) {
      state.streamPending = false;
      if (state.streamKey !== key || state.stream) return;  // the identity changed meanwhile
      openStream(url);
    }, function () {
      state.streamPending = false;
      if (state.streamKey !== key) return;
      retryStream();
    });
  }

  function retryStream() {
    if (state.login && state.login.expires_at <= Date.now()) return;  // a send will say so
    state.streamAttempt += 1;
    var backoff = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, state.streamAttempt - 1));
    clearTimeout(state.streamTimer);
    state.streamTimer = setTimeout(function () {
      state.streamTimer = null;
      state.streamKey = "";
      connectStream();
    }, backoff * (0.8 + Math.random() * 0.4));
  }

  function openStream(url) {
    var source = new EventSource(url);
    state.stream = source;
    source.addEventListener("open", function () {
      if (state.stream !== source) return;
      var again = state.streamAttempt > 0;
      state.streamAttempt = 0;
      if (again) catchUp();
    });
    source.addEventListener("message", function (event) {
      var data = state.stream === source && parseEvent(event);
      if (!data) return;
      if (state.sending) state.held.push(data);
      else deliver(data, "stream");
    });
    source.addEventListener("queue", function (event) {
      var data = state.stream === source && parseEvent(event);
      if (data) showHandoff(data);
    });
    source.onerror = function () {
      if (state.stream !== source) return;
      // Reconnect ourselves, with the same backoff as sending (1 s, 2 s … 30 s, ±20 %).
      source.close();
      state.stream = null;
      retryStream();  // a new ticket each time
    };
  }

  // ---- the transcript after a reload, and what a broken stream missed ---------------------------
  function fetchHistory() {
    var url = HISTORY_URL;
    var headers = { Accept: "application/json" };
    if (state.login) headers.Authorization = "Bearer " + state.login.token;
    else url += "?sender=" + encodeURIComponent(anonymousSender());
    return fetch(url, { headers: headers })
      .then(function (r) { return r.ok ? r.json() : null; })
      .catch(function () { return null; })
      .then(function (body) {
        return body && Array.isArray(body.messages) ? body.messages : [];
      });
  }

  function catchUp() {
    // After the stream reconnects: what the bot or an agent said since the customer last wrote
    // (the history's tail) that the page does not show among its recent messages.
    fetchHistory().then(function (messages) {
      var last = -1;
      messages.forEach(function (m, i) { if (m.from === "customer") last = i; });
      var shown = Array.prototype.slice.call(els.messages.querySelectorAll(".msg-bot .bubble"))
        .slice(-30).map(function (b) { return b.textContent; });
      messages.slice(last + 1).forEach(function (m) {
        var at = shown.indexOf(String(m.text || ""));
        if (at >= 0) { shown.splice(at, 1); return; }
        if (state.sending) state.held.push(m);
        else deliver(m, "stream");
      });
    });
  }

  // An older customer (the server says so from the profile) is offered large text once per tab.
  function offerLargeText() {
    if (!state.login || document.documentElement.classList.contains("large-text")) return;
    if (session.getItem("bankbot.large_offered") === "1") return;
    fetch(PREFERENCES_URL, { headers: { Authorization: "Bearer " + state.login.token,
                                        Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : {}; })
      .catch(function () { return {}; })
      .then(function (prefs) {
        if (!prefs.large_text || document.documentElement.classList.contains("large-text")) return;
        session.setItem("bankbot.large_offered", "1");
        var li = addNote("字太小？可以开启大字模式。");
        li.dataset.testid = "large-text-offer";
        var button = document.createElement("button");
        button.type = "button";
        button.className = "chip";
        button.textContent = "开启大字模式";
        button.addEventListener("click", function () {
          setLarge(true);
          button.disabled = true;
        });
        li.appendChild(button);
      });
  }

  // An empty conversation starts with the welcome and 猜你想问 (the most asked topics).
  function welcome() {
    return fetch(WELCOME_URL, { headers: { Accept: "application/json" } })
      .then(function (r) { return r.ok ? r.json() : { messages: [] }; })
      .catch(function () { return { messages: [] }; })
      .then(function (body) {
        (body.messages || []).forEach(function (m) {
          var li = addBot(m);
          if (li) li.dataset.testid = "welcome";
        });
      });
  }

  function restoreHistory() {
    return fetchHistory().then(function (messages) {
      if (!messages.length) return welcome();
      // The earlier conversation goes above whatever the page shows already.
      var shown = Array.prototype.slice.call(els.messages.children);
      shown.forEach(function (node) { els.messages.removeChild(node); });
      messages.forEach(function (m, i) {
        if (m.from === "customer") {
          addUser(String(m.text || ""), m.at).classList.add("restored");
        } else {  // only the last message's buttons can still be pressed
          addBot(m, { inactive: i !== messages.length - 1 });
        }
      });
      addNote("以上是之前的对话记录");
      shown.forEach(function (node) { els.messages.appendChild(node); });
      scrollToEnd();
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
  state.chosen = !!state.login || session.getItem(KEY_ANONYMOUS) === "1";
  showIdentity();
  if (!navigator.onLine) {
    showBanner("网络连接已断开。您可以继续输入，消息会在网络恢复后自动发送。", "warn");
  }
  if (state.chosen) {
    addNote(state.login ? "欢迎回来，" + state.login.name + "。"
                        : "欢迎回来，您正在以匿名访客身份咨询。");
    restoreHistory().then(connectStream);
  } else {
    openLogin();
  }

  // For tests and debugging.
  window.bankbotChat = { state: state, send: send, connectStream: connectStream };
})();
