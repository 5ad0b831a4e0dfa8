/* bankbot agent console (/agent): plain JavaScript, no build step.
 *
 * Talks to the agent API of docs/handoff.md: POST /agent/login gives a token (kept in
 * sessionStorage for this tab), every other call sends "Authorization: Bearer <token>", and
 * live updates come from GET /agent/events?ticket=... (server-sent events; an EventSource
 * cannot send the header and a token in a URL lands in access logs, so each connection first
 * gets a one-time ticket from POST /agent/events/ticket; reconnected with exponential backoff). The queue, the conversation and the supervisor view are re-read from
 * the API when an event says something changed, so a missed event costs nothing but latency.
 */
(function () {
  "use strict";

  var KEY_AUTH = "bankbot.agent";
  var BACKOFF_MIN = 1000;
  var BACKOFF_MAX = 30000;
  var SUPERVISOR_EVERY = 10000;

  var HEARTBEAT_EVERY = 10000;  // ms; bot/server/agent_workspace.py HEARTBEAT_SECONDS
  var RESOLUTIONS = {
    resolved: "已解决", follow_up: "需后续跟进", transferred_offline: "转线下处理",
    no_reply: "客户无回应", cancelled: "客户取消"
  };
  var REASONS = {
    customer_request: "客户要求转人工", complaint: "客户投诉",
    repeated_fallback: "机器人连续未能理解", negative_sentiment: "客户情绪负面",
    action_failed: "业务处理失败", rule: "业务规则", paused: "会话已暂停，等待人工"
  };
  var CHANNELS = { app: "App / 网页（已登录）", rest: "网页（匿名）", wechat: "微信" };
  var STATUSES = {
    waiting: "排队中", assigned: "已分配，待接入", active: "服务中", closed: "已结束",
    leaving: "留言中", ticket: "已转工单"
  };
  var PAYLOADS = { "/request_human": "转人工", "/leave_message": "留言" };

  var $ = function (id) { return document.getElementById(id); };
  var els = {
    sessionBar: $("session-bar"), agentName: $("agent-name"), agentStatus: $("agent-status"),
    agentLoad: $("agent-load"), connection: $("connection"), logout: $("logout"),
    banner: $("banner"),
    loginView: $("login-view"), loginForm: $("login-form"), loginUser: $("login-username"),
    loginPassword: $("login-password"), loginError: $("login-error"),
    loginSubmit: $("login-submit"),
    console: $("console"),
    supervisor: $("supervisor"), supGroups: $("supervisor-groups"),
    supAgents: $("supervisor-agents"), supUpdated: $("supervisor-updated"),
    queueList: $("queue-list"), queueCount: $("queue-count"), queueEmpty: $("queue-empty"),
    mineList: $("mine-list"), mineCount: $("mine-count"), mineEmpty: $("mine-empty"),
    convPlaceholder: $("conv-placeholder"), convBody: $("conv-body"),
    convTitle: $("conv-title"), convStatus: $("conv-status"), convAccept: $("conv-accept"),
    transcript: $("transcript"), cannedList: $("canned-list"),
    replyForm: $("reply-form"), replyInput: $("reply-input"), replySend: $("reply-send"),
    replyError: $("reply-error"),
    transferGroup: $("transfer-group"), transferButton: $("transfer-button"),
    closeResolution: $("close-resolution"), closeButton: $("close-button"),
    contextEmpty: $("context-empty"), contextBody: $("context-body"),
    ctxCustomer: $("ctx-customer"), ctxChannel: $("ctx-channel"), ctxReason: $("ctx-reason"),
    ctxGroup: $("ctx-group"), ctxSentiment: $("ctx-sentiment"), ctxIntents: $("ctx-intents"),
    ctxSlots: $("ctx-slots"), ctxKnowledge: $("ctx-knowledge"),
    suggestForm: $("suggest-form"), suggestInput: $("suggest-input"),
    suggestions: $("suggestions"), notes: $("notes"), noteForm: $("note-form"),
    noteInput: $("note-input")
  };

  // ---- storage (private mode may refuse it: fall back to memory) --------------------------
  var session = (function () {
    try {
      sessionStorage.setItem("bankbot.test", "1");
      sessionStorage.removeItem("bankbot.test");
      return sessionStorage;
    } catch (e) {
      var memory = {};
      return {
        getItem: function (k) { return k in memory ? memory[k] : null; },
        setItem: function (k, v) { memory[k] = String(v); },
        removeItem: function (k) { delete memory[k]; }
      };
    }
  })();

  // ---- state ---------------------------------------------------------------------------------
  var state = {
    auth: null,          // {token, username, role, groups, expires_at}
    me: null,            // GET /agent/me
    config: { groups: [], resolutions: [], canned_replies: [] },
    labels: { intents: {}, slots: {}, reasons: {} },  // from GET /agent/labels (the domain)
    queue: { waiting: [], mine: [] },
    queueAt: 0,          // Date.now() when the queue was read (waited times tick from it)
    current: null,       // the open conversation id
    packet: null,        // its context packet
    status: null,        // its handoff status
    shown: 0,            // transcript messages shown (the next ?after=)
    unread: {},          // conversation id -> customer messages not seen
    events: null, eventsPending: null, eventsAttempt: 0, eventsTimer: null, connected: false,
    timers: [], queueTimer: null, supervisorBusy: false, loading: null
  };

  function isSupervisor() { return !!(state.auth && state.auth.role === "supervisor"); }

  // ---- small helpers -------------------------------------------------------------------------
  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function clock(at) {
    if (!at) return "";
    var d = new Date(at * 1000);
    return [d.getHours(), d.getMinutes(), d.getSeconds()].map(function (n) {
      return ("0" + n).slice(-2);
    }).join(":");
  }

  function duration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    if (seconds < 60) return seconds + "秒";
    var m = Math.floor(seconds / 60);
    if (m < 60) return m + "分" + ("0" + (seconds % 60)).slice(-2) + "秒";
    return Math.floor(m / 60) + "小时" + (m % 60) + "分";
  }

  function customerLabel(customer) {
    customer = customer || {};
    if (customer.name && customer.id) return customer.name + "（" + customer.id + "）";
    if (customer.id) return "客户 " + customer.id;
    return "匿名访客";
  }

  function reasonLabel(item) {
    return item.reason_label || state.labels.reasons[item.reason] || REASONS[item.reason]
      || item.reason || "";
  }

  function payloadLabel(text) {
    if (PAYLOADS[text]) return "〔按钮〕" + PAYLOADS[text];
    var rating = /^\/rate_service\{"rating":\s*"(\d)"\}$/.exec(text);
    if (rating) return "〔评分〕" + rating[1] + "分";
    return "〔按钮〕" + text;
  }

  function showBanner(text, kind) {
    els.banner.textContent = text;
    els.banner.className = "banner" + (kind ? " " + kind : "");
    els.banner.hidden = false;
    clearTimeout(showBanner.timer);
    if (kind === "ok" || kind === "info") {
      showBanner.timer = setTimeout(function () { els.banner.hidden = true; }, 6000);
    }
  }

  function describe(err) {
    if (!err) return "未知错误";
    if (err.status === 409) return "会话状态已变化（" + err.message + "）";
    if (err.status === 403) return "无权操作此会话（" + err.message + "）";
    if (err.status) return err.message;
    return "无法连接服务器，请检查网络";
  }

  // ---- the API -------------------------------------------------------------------------------
  function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (state.auth) headers.Authorization = "Bearer " + state.auth.token;
    var init = { method: method, headers: headers };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var err = new Error(data && data.error ? data.error : "HTTP " + response.status);
          err.status = response.status;
          if (response.status === 401 && state.auth && path !== "/agent/login") {
            expired();
          }
          throw err;
        }
        return data;
      });
    });
  }

  function conv(id, rest) {
    // ":" (customer:C1001, wechat:…) is legal in a path segment and the server matches the id
    // as written, so it is not percent-encoded; anything else unusual is.
    return "/agent/conversations/" + encodeURIComponent(id).replace(/%3A/gi, ":") + (rest || "");
  }

  // ---- login and logout ----------------------------------------------------------------------
  function saveAuth() {
    if (state.auth) session.setItem(KEY_AUTH, JSON.stringify(state.auth));
    else session.removeItem(KEY_AUTH);
  }

  function restoreAuth() {
    try {
      var saved = JSON.parse(session.getItem(KEY_AUTH) || "null");
      if (saved && saved.token && saved.expires_at > Date.now() + 30000) return saved;
    } catch (e) { /* ignore */ }
    session.removeItem(KEY_AUTH);
    return null;
  }

  function showLogin(message) {
    els.console.hidden = true;
    els.sessionBar.hidden = true;
    els.loginView.hidden = false;
    if (message) {
      els.loginError.textContent = message;
      els.loginError.hidden = false;
    }
    document.title = "示例银行 人工客服工作台";
    (els.loginUser.value ? els.loginPassword : els.loginUser).focus();
  }

  els.loginForm.addEventListener("submit", function (event) {
    event.preventDefault();
    askNotificationPermission();  // a user gesture: the browser may ask now
    var username = els.loginUser.value.trim();
    var password = els.loginPassword.value;
    if (!username || !password) {
      els.loginError.textContent = "请输入用户名和密码。";
      els.loginError.hidden = false;
      return;
    }
    els.loginError.hidden = true;
    els.loginSubmit.disabled = true;
    state.auth = null;
    api("POST", "/agent/login", { username: username, password: password })
      .then(function (body) {
        state.auth = {
          token: body.token, username: body.username || username, role: body.role || "agent",
          groups: body.groups || [],
          expires_at: Date.now() + (body.expires_in || 8 * 3600) * 1000
        };
        saveAuth();
        els.loginPassword.value = "";
        startConsole();
      })
      .catch(function (err) {
        els.loginError.textContent = err.status === 401 ? "用户名或密码错误，请重试。"
          : "登录失败：" + describe(err);
        els.loginError.hidden = false;
        els.loginPassword.select();
      })
      .then(function () { els.loginSubmit.disabled = false; });
  });

  function stopConsole() {
    if (state.events) { state.events.close(); state.events = null; }
    state.eventsPending = null;
    clearTimeout(state.eventsTimer);
    clearTimeout(state.queueTimer);
    state.timers.forEach(clearInterval);
    state.timers = [];
    state.current = null;
    state.packet = null;
    state.unread = {};
  }

  function expired() {
    stopConsole();
    state.auth = null;
    saveAuth();
    showLogin("登录已过期，请重新登录。");
  }

  els.logout.addEventListener("click", function () {
    var done = function () {
      stopConsole();
      state.auth = null;
      saveAuth();
      els.loginError.hidden = true;
      showLogin();
    };
    // Going away first, so that the router stops assigning conversations to this agent.
    api("POST", "/agent/status", { status: "away" }).then(done, done);
  });

  // ---- the console ---------------------------------------------------------------------------
  function startConsole() {
    els.loginView.hidden = true;
    els.console.hidden = false;
    els.sessionBar.hidden = false;
    els.agentName.textContent = state.auth.username +
      (isSupervisor() ? "（班长）" : "（客服）");
    els.supervisor.hidden = !isSupervisor();
    closeView();
    Promise.all([refreshMe(), loadConfig(), refreshQueue()]).then(function () {
      connectEvents();
      if (isSupervisor()) refreshSupervisor();
    }, function () { /* 401 handled in api(); other errors shown by each call */ });
    state.timers.push(setInterval(tickWaited, 1000));
    if (isSupervisor()) state.timers.push(setInterval(refreshSupervisor, SUPERVISOR_EVERY));
    // Presence: the server sets an 在线 agent away ~25 s after the beats stop (a closed tab).
    heartbeat();
    state.timers.push(setInterval(heartbeat, HEARTBEAT_EVERY));
  }

  function heartbeat() {
    if (!state.auth) return;
    api("POST", "/agent/heartbeat").catch(function () { /* the next beat retries */ });
  }

  function refreshMe() {
    return api("GET", "/agent/me").then(function (me) {
      state.me = me;
      els.agentStatus.value = me.status === "away" ? "away" : "available";
      els.agentLoad.textContent = "进行中 " + (me.load || 0) + " / " + (me.capacity || 0);
      return me;
    });
  }

  els.agentStatus.addEventListener("change", function () {
    var wanted = els.agentStatus.value;
    api("POST", "/agent/status", { status: wanted }).then(function (me) {
      state.me = me;
      showBanner(wanted === "away" ? "已切换为“离开”，系统不会再为您分配新会话。"
        : "已切换为“在线”，系统会为您分配排队中的会话。", "info");
      refreshMe();
      refreshQueue().catch(function () {});
      refreshSupervisor();
    }).catch(function (err) {
      showBanner("切换状态失败：" + describe(err));
      refreshMe();
    });
  });

  function loadLabels() {
    return api("GET", "/agent/labels").then(function (labels) {
      state.labels = {
        intents: labels.intents || {}, slots: labels.slots || {}, reasons: labels.reasons || {}
      };
    }).catch(function () { /* the codes are shown instead */ });
  }

  function intentLabel(code) { return state.labels.intents[code] || code || "—"; }
  function slotLabel(code) { return state.labels.slots[code] || code; }

  function loadConfig() {
    loadLabels();
    return api("GET", "/agent/config").then(function (config) {
      state.config = {
        groups: config.groups || [], resolutions: config.resolutions || [],
        canned_replies: config.canned_replies || []
      };
      els.cannedList.textContent = "";
      state.config.canned_replies.forEach(function (reply) {
        var button = el("button", "", reply.title);
        button.type = "button";
        button.title = reply.text;
        button.dataset.testid = "canned-reply";
        button.setAttribute("aria-label", "插入快捷回复：" + reply.title);
        button.addEventListener("click", function () { insertReply(reply.text); });
        els.cannedList.appendChild(button);
      });
      els.transferGroup.textContent = "";
      state.config.groups.forEach(function (group) {
        var option = el("option", "", group);
        option.value = group;
        els.transferGroup.appendChild(option);
      });
      els.closeResolution.textContent = "";
      state.config.resolutions.forEach(function (code) {
        var option = el("option", "", RESOLUTIONS[code] || code);
        option.value = code;
        els.closeResolution.appendChild(option);
      });
    });
  }

  // ---- the queue -----------------------------------------------------------------------------
  function scheduleQueueRefresh() {
    if (state.queueTimer) return;
    state.queueTimer = setTimeout(function () {
      state.queueTimer = null;
      refreshQueue();
      refreshMe().catch(function () {});
      if (isSupervisor()) refreshSupervisor();
    }, 200);
  }

  function refreshQueue() {
    return api("GET", "/agent/queue").then(function (queue) {
      state.queue = { waiting: queue.waiting || [], mine: queue.mine || [] };
      announceWaiting(state.queue.waiting);
      state.queueAt = Date.now();
      renderQueue();
      syncCurrentStatus();
      return queue;
    }).catch(function (err) {
      if (err.status !== 401) showBanner("读取队列失败：" + describe(err));
      throw err;
    });
  }

  function toAccept() {
    // Reserved for me by the router (still to accept) first, then the groups' queue.
    return state.queue.mine.filter(function (i) { return i.status === "assigned"; })
      .concat(state.queue.waiting);
  }

  function renderQueue() {
    var pending = toAccept();
    var mine = state.queue.mine.filter(function (i) { return i.status !== "assigned"; });
    els.queueList.textContent = "";
    pending.forEach(function (item) { els.queueList.appendChild(queueItem(item)); });
    els.queueCount.textContent = String(pending.length);
    els.queueEmpty.hidden = pending.length > 0;
    els.mineList.textContent = "";
    mine.forEach(function (item) { els.mineList.appendChild(mineItem(item)); });
    els.mineCount.textContent = String(mine.length);
    els.mineEmpty.hidden = mine.length > 0;
    document.title = (pending.length ? "(" + pending.length + ") " : "") + "示例银行 人工客服工作台";
    tickWaited();
  }

  function itemShell(item, testid) {
    var li = el("li", "item");
    li.dataset.testid = testid;
    li.dataset.conversationId = item.conversation_id;
    li.dataset.status = item.status;
    li.tabIndex = 0;
    li.setAttribute("aria-label", customerLabel(item.customer) + "，" + (STATUSES[item.status] || item.status));
    if (item.conversation_id === state.current) li.classList.add("selected");
    var head = el("div", "item-head");
    head.appendChild(el("span", "item-name", customerLabel(item.customer)));
    var waited = el("span", "item-meta waited");
    waited.dataset.waited = String(item.waited_s || 0);
    waited.dataset.label = testid === "mine-item" ? "进线已 " : "已等待 ";
    head.appendChild(waited);
    li.appendChild(head);
    var meta = el("div", "item-meta");
    meta.appendChild(document.createTextNode(item.group + " · " + reasonLabel(item)));
    if (item.priority > 0) {
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(el("span", "priority", "优先级 " + item.priority));
    }
    li.appendChild(meta);
    if (item.preview) {
      var preview = String(item.preview);
      li.appendChild(el("div", "item-preview", preview.charAt(0) === "/" ? payloadLabel(preview)
        : "“" + preview + "”"));
    }
    var open = function () { openConversation(item.conversation_id); };
    li.addEventListener("click", function (event) {
      if (event.target.closest("button")) return;
      open();
    });
    li.addEventListener("keydown", function (event) {
      if ((event.key === "Enter" || event.key === " ") && event.target === li) {
        event.preventDefault();
        open();
      }
    });
    return li;
  }

  function queueItem(item) {
    var li = itemShell(item, "queue-item");
    var actions = el("div", "item-actions");
    if (item.status === "assigned") {
      li.classList.add("reserved");
      actions.appendChild(el("span", "item-meta", "系统已分配给您"));
    } else if (item.position) {
      actions.appendChild(el("span", "item-meta", "组内第 " + item.position + " 位"));
    }
    var accept = el("button", "primary", "接入");
    accept.type = "button";
    accept.dataset.testid = "accept-button";
    accept.setAttribute("aria-label", "接入 " + customerLabel(item.customer));
    accept.addEventListener("click", function () { acceptConversation(item.conversation_id, accept); });
    actions.appendChild(accept);
    li.appendChild(actions);
    return li;
  }

  function mineItem(item) {
    var li = itemShell(item, "mine-item");
    var unread = state.unread[item.conversation_id] || 0;
    if (unread) {
      li.appendChild(el("span", "unread", unread + " 条新消息"));
    }
    return li;
  }

  function tickWaited() {
    var extra = state.queueAt ? (Date.now() - state.queueAt) / 1000 : 0;
    document.querySelectorAll(".waited").forEach(function (span) {
      span.textContent = (span.dataset.label || "已等待 ") +
        duration(parseFloat(span.dataset.waited) + extra);
    });
  }

  function findItem(id) {
    var all = state.queue.mine.concat(state.queue.waiting);
    for (var i = 0; i < all.length; i++) if (all[i].conversation_id === id) return all[i];
    return null;
  }

  function acceptConversation(id, button) {
    if (button) button.disabled = true;
    return api("POST", conv(id, "/accept")).then(function () {
      showBanner("已接入会话。", "ok");
      return refreshQueue().catch(function () {}).then(function () {
        return openConversation(id);
      });
    }).catch(function (err) {
      if (button) button.disabled = false;
      showBanner("接入失败：" + describe(err));
      refreshQueue().catch(function () {});
    });
  }

  els.convAccept.addEventListener("click", function () {
    if (state.current) acceptConversation(state.current, els.convAccept);
  });

  // ---- the conversation ----------------------------------------------------------------------
  function closeView() {
    state.current = null;
    state.packet = null;
    state.status = null;
    els.convBody.hidden = true;
    els.convPlaceholder.hidden = false;
    els.contextBody.hidden = true;
    els.contextEmpty.hidden = false;
  }

  function openConversation(id) {
    var switching = state.current !== id;
    state.current = id;
    if (switching) {
      state.shown = 0;
      els.transcript.textContent = "";
      els.suggestions.textContent = "";
      els.notes.textContent = "";
      els.replyError.hidden = true;
      els.suggestInput.value = "";
    }
    delete state.unread[id];
    renderQueue();
    els.convPlaceholder.hidden = true;
    els.convBody.hidden = false;
    var item = findItem(id);
    if (item) setStatus(item.status, item.agent);
    var loading = Promise.all([
      api("GET", conv(id, "/context")).then(function (packet) {
        if (state.current !== id) return;
        state.packet = packet;
        renderContext(packet);
        if (packet.status) setStatus(packet.status, packet.agent);
      }),
      refreshTranscript(id)
    ]).catch(function (err) {
      if (state.current === id) showBanner("读取会话失败：" + describe(err));
    });
    state.loading = loading;
    return loading;
  }

  function setStatus(status, agent) {
    state.status = status;
    var label = STATUSES[status] || status || "";
    if (agent && state.auth && agent !== state.auth.username) label += "（" + agent + "）";
    els.convStatus.textContent = label;
    els.convStatus.className = "badge " + (status || "");
    var mine = !agent || !state.auth || agent === state.auth.username;
    var open = status === "waiting" || status === "assigned" || status === "active";
    els.convAccept.hidden = !(status === "waiting" || (status === "assigned" && mine));
    var canReply = (status === "assigned" || status === "active") && mine;
    els.replyInput.disabled = !canReply;
    els.replySend.disabled = !canReply;
    els.replyInput.placeholder = canReply ? "输入回复，Enter 发送，Shift+Enter 换行，“/”搜索快捷回复"
      : status === "waiting" ? "接入会话后才能回复" : "会话不在您的处理中，无法回复";
    els.cannedList.querySelectorAll("button").forEach(function (b) { b.disabled = !canReply; });
    els.transferButton.disabled = !open || (status !== "waiting" && !mine && !isSupervisor());
    els.closeButton.disabled = !((status === "assigned" || status === "active")
                                 && (mine || isSupervisor()));
    els.closeResolution.disabled = els.closeButton.disabled;
  }

  function syncCurrentStatus() {
    if (!state.current) return;
    var item = findItem(state.current);
    if (item && item.status !== state.status) setStatus(item.status, item.agent);
  }

  function refreshTranscript(id) {
    // One read at a time per conversation, so lines are appended once and in order.
    var chain = (refreshTranscript.chain || Promise.resolve()).then(function () {
      if (state.current !== id) return null;
      return api("GET", conv(id, "/messages?after=" + state.shown)).then(function (body) {
        if (state.current !== id) return;
        (body.messages || []).forEach(function (m) {
          els.transcript.appendChild(transcriptLine(m));
          state.shown = typeof m.index === "number" ? m.index + 1 : state.shown + 1;
        });
        els.transcript.scrollTop = els.transcript.scrollHeight;
      });
    });
    refreshTranscript.chain = chain.catch(function () {});
    return chain;
  }

  function transcriptLine(m) {
    var from = m.from === "agent" ? "agent" : m.from === "bot" ? "bot" : "customer";
    var li = el("li", "line line-" + from);
    li.dataset.testid = "transcript-message";
    li.dataset.from = from;
    var who = from === "customer" ? "客户" : from === "bot" ? "机器人"
      : "人工客服" + (m.agent ? " " + m.agent : "");
    li.appendChild(el("span", "who-said", who + (m.at ? " · " + clock(m.at) : "")));
    var text = String(m.text || "");
    li.appendChild(el("div", "text", from === "customer" && text.charAt(0) === "/"
      ? payloadLabel(text) : text));
    if (Array.isArray(m.buttons) && m.buttons.length) {
      li.appendChild(el("span", "buttons", "按钮：" + m.buttons.map(function (b) {
        return b.title || b.payload;
      }).join(" / ")));
    }
    return li;
  }

  function renderContext(packet) {
    els.contextEmpty.hidden = true;
    els.contextBody.hidden = false;
    var customer = packet.customer || {};
    var who = customerLabel(customer);
    var facts = [];
    facts.push(customer.verified ? "已验证身份" : "未验证身份");
    if (customer.age) facts.push(customer.age + "岁");
    if (customer.vip) facts.push("VIP");
    els.ctxCustomer.textContent = who + " · " + facts.join(" · ");
    els.convTitle.textContent = who;
    els.ctxChannel.textContent = CHANNELS[packet.channel] || packet.channel || "未知";
    var reason = packet.reason || {};
    els.ctxReason.textContent = (reason.label || REASONS[reason.code] || reason.code || "") +
      (reason.detail ? "：" + reason.detail : "");
    els.ctxGroup.textContent = (packet.group || "") +
      (packet.priority ? "（优先级 " + packet.priority + "）" : "");
    renderSentiment(packet.sentiment || {});

    els.ctxIntents.textContent = "";
    (packet.intents || []).forEach(function (i) {
      var li = el("li");
      var name = el("span", "intent", intentLabel(i.intent));
      name.title = i.intent;  // the code, for trainers
      li.appendChild(name);
      li.appendChild(document.createTextNode(" "));
      if (typeof i.confidence === "number") {
        li.appendChild(el("span", "conf", "（置信度 " + i.confidence.toFixed(2) + "）"));
      }
      if (i.text) {  // a button press by its title, as in the transcript
        li.appendChild(document.createTextNode(i.text.charAt(0) === "/" ? " " + payloadLabel(i.text)
          : " “" + i.text + "”"));
      }
      els.ctxIntents.appendChild(li);
    });
    if (!(packet.intents || []).length) els.ctxIntents.appendChild(el("li", "empty", "无"));

    els.ctxSlots.textContent = "";
    var slots = packet.slots || {};
    var names = Object.keys(slots);
    names.forEach(function (name) {
      var dt = el("dt", "", slotLabel(name));
      dt.title = name;
      els.ctxSlots.appendChild(dt);
      var value = slots[name];
      els.ctxSlots.appendChild(el("dd", "", typeof value === "string" ? value
        : JSON.stringify(value)));
    });
    if (!names.length) {
      els.ctxSlots.appendChild(el("dt", "", "—"));
      els.ctxSlots.appendChild(el("dd", "empty", "无"));
    }

    els.ctxKnowledge.textContent = "";
    (packet.knowledge_tried || []).forEach(function (k) {
      var li = el("li", "", k.question);
      var extra = [k.category, typeof k.score === "number" ? "相关度 " + k.score.toFixed(2) : null]
        .filter(Boolean).join("，");
      if (extra) li.appendChild(el("span", "conf", "（" + extra + "）"));
      els.ctxKnowledge.appendChild(li);
    });
    if (!(packet.knowledge_tried || []).length) {
      els.ctxKnowledge.appendChild(el("li", "empty", "机器人未检索知识库"));
    }

    renderSuggestions(packet.suggestions || []);
    els.notes.textContent = "";
    (packet.notes || []).forEach(addNote);
  }

  function renderSentiment(sentiment) {
    els.ctxSentiment.textContent = "";
    var trend = Array.isArray(sentiment.trend) ? sentiment.trend : [];
    if (!trend.length) { els.ctxSentiment.textContent = "暂无"; return; }
    var latest = typeof sentiment.latest === "number" ? sentiment.latest : trend[trend.length - 1];
    var word = latest >= 0.75 ? "负面" : latest >= 0.5 ? "偏负面" : "平稳";
    els.ctxSentiment.appendChild(document.createTextNode(word + "，负面概率 "));
    var span = el("span", "trend");
    trend.slice(-8).forEach(function (value, i) {
      if (i) span.appendChild(document.createTextNode(" → "));
      span.appendChild(el("span", value >= 0.5 ? "neg" : "", Number(value).toFixed(2)));
    });
    els.ctxSentiment.appendChild(span);
    if (typeof sentiment.average === "number") {
      els.ctxSentiment.appendChild(document.createTextNode("（平均 " +
        sentiment.average.toFixed(2) + "）"));
    }
  }

  // ---- knowledge suggestions -----------------------------------------------------------------
  var MIN_SUGGESTION_SCORE = 0.3;  // as bot/handoff/packet.py: weaker matches are noise

  function renderSuggestions(list) {
    list = list.filter(function (s) {
      return typeof s.score !== "number" || s.score >= MIN_SUGGESTION_SCORE;
    });
    els.suggestions.textContent = "";
    if (!list.length) {
      els.suggestions.appendChild(el("li", "empty", "没有相关的知识条目。"));
      return;
    }
    list.forEach(function (s) {
      var li = el("li", "suggestion");
      li.dataset.testid = "suggestion";
      li.appendChild(el("div", "q", s.question));
      li.appendChild(el("div", "a", s.answer));
      if (typeof s.score === "number") {
        li.appendChild(el("span", "score", "相关度 " + s.score.toFixed(2) + " "));
      }
      var insert = el("button", "", "插入回复");
      insert.type = "button";
      insert.dataset.testid = "suggestion-insert";
      insert.setAttribute("aria-label", "把“" + s.question + "”的答案插入回复框");
      insert.addEventListener("click", function () { insertReply(s.answer); });
      li.appendChild(insert);
      els.suggestions.appendChild(li);
    });
  }

  function refreshSuggestions(query) {
    var id = state.current;
    if (!id) return Promise.resolve();
    // a search typed by the agent; else the topic of the conversation (its latest customer
    // messages with a topic, button payloads ignored), weak matches hidden by the server
    var path = query ? "/suggestions?q=" + encodeURIComponent(query) : "/topic-suggestions";
    var ticket = (refreshSuggestions.ticket || 0) + 1;
    refreshSuggestions.ticket = ticket;
    return api("GET", conv(id, path)).then(function (body) {
      if (state.current === id && refreshSuggestions.ticket === ticket) {
        renderSuggestions(body.suggestions || []);
      }
    }).catch(function () { /* suggestions are a help, not essential */ });
  }

  var suggestDelay = null;
  els.suggestInput.addEventListener("input", function () {
    clearTimeout(suggestDelay);
    suggestDelay = setTimeout(function () {
      refreshSuggestions(els.suggestInput.value.trim());
    }, 400);
  });
  els.suggestForm.addEventListener("submit", function (event) {
    event.preventDefault();
    clearTimeout(suggestDelay);
    refreshSuggestions(els.suggestInput.value.trim());
  });

  // ---- new chats: a short sound and a desktop notification (when the agent allowed them) ------
  var notified = {};  // handoff ids already announced

  function beep() {
    try {
      var Audio = window.AudioContext || window.webkitAudioContext;
      if (!Audio) return;
      var audio = beep.context || (beep.context = new Audio());
      var tone = audio.createOscillator();
      var gain = audio.createGain();
      tone.frequency.value = 880;
      gain.gain.value = 0.08;
      tone.connect(gain);
      gain.connect(audio.destination);
      tone.start();
      tone.stop(audio.currentTime + 0.18);
    } catch (e) { /* no sound here */ }
  }

  function notifyNewChat(text) {
    state.notifications = (state.notifications || 0) + 1;
    document.body.dataset.notifications = String(state.notifications);
    beep();
    if (window.Notification && Notification.permission === "granted" && document.hidden) {
      try { new Notification("示例银行 人工客服工作台", { body: text, tag: "bankbot-new-chat" }); }
      catch (e) { /* notifications unavailable */ }
    }
  }

  function askNotificationPermission() {
    if (window.Notification && Notification.permission === "default") {
      try { Notification.requestPermission(); } catch (e) { /* ignored */ }
    }
  }

  function announceWaiting(waiting) {
    waiting.forEach(function (item) {
      if (notified[item.id]) return;
      notified[item.id] = true;
      if (announceWaiting.ready) notifyNewChat("新的排队会话：" + customerLabel(item.customer));
    });
    announceWaiting.ready = true;  // what was waiting at login is not "new"
  }

  // ---- replying ------------------------------------------------------------------------------
  function insertReply(text) {
    if (els.replyInput.disabled) return;
    var box = els.replyInput;
    var start = box.selectionStart || 0;
    var end = box.selectionEnd || 0;
    var before = box.value.slice(0, start);
    var after = box.value.slice(end);
    box.value = before + text + after;
    box.focus();
    var caret = before.length + text.length;
    box.setSelectionRange(caret, caret);
  }

  // ---- "/" searches the canned replies: "/稍等" lists those whose title or text has 稍等;
  // ↑/↓ choose, Enter or a click inserts it in place of the "/…", Esc closes ---------------------
  var cannedSearch = document.getElementById("canned-search");
  var cannedHits = [];
  var cannedAt = 0;

  function cannedQuery() {
    var value = els.replyInput.value;
    var caret = els.replyInput.selectionStart || value.length;
    var start = value.lastIndexOf("/", caret - 1);
    if (start < 0 || (start > 0 && !/\s/.test(value.charAt(start - 1)))) return null;
    var query = value.slice(start + 1, caret);
    if (/\s/.test(query)) return null;
    return { start: start, end: caret, query: query.toLowerCase() };
  }

  function closeCannedSearch() {
    cannedSearch.hidden = true;
    cannedSearch.textContent = "";
    cannedHits = [];
  }

  function showCannedSearch() {
    var q = cannedQuery();
    if (!q || els.replyInput.disabled) { closeCannedSearch(); return; }
    cannedHits = state.config.canned_replies.filter(function (r) {
      return !q.query || (r.title + " " + r.text).toLowerCase().indexOf(q.query) >= 0;
    });
    cannedAt = 0;
    cannedSearch.textContent = "";
    if (!cannedHits.length) {
      cannedSearch.appendChild(el("li", "empty", "没有匹配的快捷回复"));
    }
    cannedHits.forEach(function (reply, i) {
      var li = el("li", i === cannedAt ? "active" : "");
      li.setAttribute("role", "option");
      li.dataset.testid = "canned-search-item";
      li.appendChild(el("strong", "", reply.title));
      li.appendChild(el("span", "", " " + reply.text));
      li.addEventListener("mousedown", function (event) {
        event.preventDefault();
        pickCanned(i);
      });
      cannedSearch.appendChild(li);
    });
    cannedSearch.hidden = false;
  }

  function pickCanned(i) {
    var q = cannedQuery();
    var reply = cannedHits[i];
    if (!q || !reply) { closeCannedSearch(); return; }
    var box = els.replyInput;
    box.value = box.value.slice(0, q.start) + reply.text + box.value.slice(q.end);
    var caret = q.start + reply.text.length;
    box.focus();
    box.setSelectionRange(caret, caret);
    closeCannedSearch();
  }

  els.replyInput.addEventListener("input", showCannedSearch);
  els.replyInput.addEventListener("blur", function () { setTimeout(closeCannedSearch, 150); });

  els.replyInput.addEventListener("keydown", function (event) {
    if (!cannedSearch.hidden && cannedHits.length) {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        cannedAt = (cannedAt + (event.key === "ArrowDown" ? 1 : cannedHits.length - 1))
          % cannedHits.length;
        Array.prototype.forEach.call(cannedSearch.children, function (li, i) {
          li.classList.toggle("active", i === cannedAt);
        });
        return;
      }
      if (event.key === "Enter" && !event.isComposing) {
        event.preventDefault();
        pickCanned(cannedAt);
        return;
      }
    }
    if (event.key === "Escape" && !cannedSearch.hidden) {
      event.preventDefault();
      closeCannedSearch();
      return;
    }
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      els.replyForm.requestSubmit ? els.replyForm.requestSubmit()
        : els.replyForm.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });

  els.replyForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var id = state.current;
    var text = els.replyInput.value.trim();
    if (!id || !text || els.replySend.disabled) return;
    els.replySend.disabled = true;
    els.replyError.hidden = true;
    api("POST", conv(id, "/messages"), { text: text }).then(function () {
      if (els.replyInput.value.trim() === text) els.replyInput.value = "";
      if (state.status === "assigned") setStatus("active", state.auth.username);
      return refreshTranscript(id);
    }).catch(function (err) {
      els.replyError.textContent = "发送失败：" + describe(err) + "（内容已保留，可重试）";
      els.replyError.hidden = false;
    }).then(function () {
      if (state.current === id) setStatus(state.status, state.auth.username);
      els.replyInput.focus();
      scheduleQueueRefresh();
    });
  });

  // ---- notes ---------------------------------------------------------------------------------
  function addNote(note) {
    var li = el("li", "");
    li.dataset.testid = "note";
    li.appendChild(el("span", "conf", (note.agent || "") + " " + clock(note.at) + "："));
    li.appendChild(document.createTextNode(note.text || ""));
    els.notes.appendChild(li);
  }

  els.noteForm.addEventListener("submit", function (event) {
    event.preventDefault();
    var id = state.current;
    var text = els.noteInput.value.trim();
    if (!id || !text) return;
    api("POST", conv(id, "/notes"), { text: text }).then(function (body) {
      els.noteInput.value = "";
      if (state.current === id) addNote(body.note || { text: text });
    }).catch(function (err) { showBanner("保存备注失败：" + describe(err)); });
  });

  // ---- transfer and close --------------------------------------------------------------------
  els.transferButton.addEventListener("click", function () {
    var id = state.current;
    var group = els.transferGroup.value;
    if (!id || !group) return;
    els.transferButton.disabled = true;
    api("POST", conv(id, "/transfer"), { group: group }).then(function (body) {
      showBanner("已转接到「" + group + "」。", "ok");
      var item = body.handoff || {};
      if (state.current === id) {
        setStatus(item.status || "waiting", item.agent);
        if (state.packet) { state.packet.group = group; renderContext(state.packet); }
      }
      return refreshQueue();
    }).catch(function (err) {
      showBanner("转接失败：" + describe(err));
      if (state.current === id) setStatus(state.status, null);
    });
  });

  els.closeButton.addEventListener("click", function () {
    var id = state.current;
    var resolution = els.closeResolution.value;
    if (!id || !resolution) return;
    els.closeButton.disabled = true;
    api("POST", conv(id, "/close"), { resolution: resolution }).then(function () {
      showBanner("会话已结束（" + (RESOLUTIONS[resolution] || resolution) +
                 "），已请客户评价本次服务。", "ok");
      if (state.current === id) {
        setStatus("closed", state.auth.username);
        refreshTranscript(id);
      }
      return refreshQueue();
    }).catch(function (err) {
      showBanner("结束会话失败：" + describe(err));
      if (state.current === id) setStatus(state.status, state.auth.username);
    });
  });

  // ---- supervisor view -----------------------------------------------------------------------
  function refreshSupervisor() {
    if (!isSupervisor() || state.supervisorBusy) return;
    state.supervisorBusy = true;
    api("GET", "/agent/supervisor").then(function (view) {
      els.supGroups.textContent = "";
      (view.groups || []).forEach(function (g) {
        var tr = el("tr");
        tr.dataset.testid = "supervisor-group";
        if (g.waiting > 0 && !g.agents_available) tr.className = "alert";
        tr.appendChild(el("td", "", g.name));
        tr.appendChild(el("td", "num", g.waiting));
        tr.appendChild(el("td", "num", g.waiting ? duration(g.longest_wait_s || 0) : "—"));
        tr.appendChild(el("td", "num", g.agents_available));
        els.supGroups.appendChild(tr);
      });
      els.supAgents.textContent = "";
      (view.agents || []).forEach(function (a) {
        var tr = el("tr");
        tr.dataset.testid = "supervisor-agent";
        tr.appendChild(el("td", "", a.username + (a.role === "supervisor" ? "（班长）" : "")));
        tr.appendChild(el("td", "", a.status === "available" ? "在线" : a.status === "away"
          ? "离开" : a.status));
        tr.appendChild(el("td", "num", (a.load || 0) + " / " + (a.capacity || 0)));
        tr.appendChild(el("td", "", (a.groups || []).join("、")));
        els.supAgents.appendChild(tr);
      });
      els.supUpdated.textContent = "更新于 " + clock(Date.now() / 1000) + "（每 10 秒自动刷新）";
    }).catch(function (err) {
      if (err.status !== 401) els.supUpdated.textContent = "刷新失败：" + describe(err);
    }).then(function () { state.supervisorBusy = false; });
  }

  // ---- live events ---------------------------------------------------------------------------
  function setConnection(text, ok) {
    els.connection.textContent = text;
    els.connection.className = "connection " + (ok ? "ok" : "bad");
    state.connected = !!ok;
  }

  function parse(event) {
    try { return JSON.parse(event.data); } catch (e) { return {}; }
  }

  function connectEvents() {
    if (!state.auth) return;
    if (state.events) { state.events.close(); state.events = null; }
    setConnection(state.eventsAttempt ? "正在重新连接…" : "正在连接…", false);
    var attempt = {};  // a newer attempt (or a logout) supersedes this one
    state.eventsPending = attempt;
    api("POST", "/agent/events/ticket").then(function (data) {
      if (state.eventsPending !== attempt || !state.auth) return;
      state.eventsPending = null;
      openEvents("/agent/events?ticket=" + encodeURIComponent(data.ticket));
    }, function () {  // a 401 (expired token) is handled in api()
      if (state.eventsPending !== attempt || !state.auth) return;
      state.eventsPending = null;
      reconnectLater();
    });
  }

  function openEvents(url) {
    var source = new EventSource(url);
    state.events = source;
    source.addEventListener("open", function () {
      if (state.events !== source) return;
      var again = state.eventsAttempt > 0;
      state.eventsAttempt = 0;
      setConnection("实时连接正常", true);
      if (again) {  // catch up with what happened while disconnected
        refreshQueue().catch(function () {});
        if (state.current) refreshTranscript(state.current);
      }
    });
    source.addEventListener("queue", function () { scheduleQueueRefresh(); });
    source.addEventListener("status", function (event) {  // set away by the router
      if (parse(event).status === "away") {
        showBanner("您有会话超时未接入，已被放回队列，状态已切换为“离开”。回到座席后请切换为“在线”。", "info");
      }
      refreshMe().catch(function () {});
      scheduleQueueRefresh();
    });
    source.addEventListener("assigned", function (event) {
      var item = parse(event).handoff || {};
      notifyNewChat("系统为您分配了新会话：" + customerLabel(item.customer));
      showBanner("系统为您分配了新会话：" + customerLabel(item.customer) +
                 (item.group ? "（" + item.group + "）" : "") + "，请接入。", "info");
      scheduleQueueRefresh();
    });
    source.addEventListener("message", function (event) {
      var data = parse(event);
      var id = data.conversation_id;
      var message = data.message || {};
      if (!id) return;
      if (id === state.current) {
        refreshTranscript(id);
        if (message.from === "customer" && message.text && message.text.charAt(0) !== "/") {
          refreshSuggestions("");  // from the conversation's topic, not this one message
        }
      } else if (message.from === "customer") {
        state.unread[id] = (state.unread[id] || 0) + 1;
      }
      scheduleQueueRefresh();  // the preview changed
    });
    source.addEventListener("closed", function (event) {
      var id = parse(event).conversation_id;
      if (id && id === state.current) {
        setStatus("closed", state.auth.username);
        refreshTranscript(id);
      }
      scheduleQueueRefresh();
    });
    source.onerror = function () {
      if (state.events !== source) return;
      source.close();
      state.events = null;
      reconnectLater();
    };
  }

  function reconnectLater() {
    state.eventsAttempt += 1;
    var backoff = Math.min(BACKOFF_MAX, BACKOFF_MIN * Math.pow(2, state.eventsAttempt - 1));
    var wait = backoff * (0.8 + Math.random() * 0.4);
    setConnection("实时连接中断，" + Math.ceil(wait / 1000) + " 秒后重连", false);
    // A refused stream may mean an expired token: /agent/me answers 401 then (see api()).
    refreshMe().catch(function () {});
    clearTimeout(state.eventsTimer);
    state.eventsTimer = setTimeout(function () {
      state.eventsTimer = null;
      if (state.auth) connectEvents();
    }, wait);
  }

  window.addEventListener("online", function () {
    if (state.auth && !state.events && !state.eventsPending) {
      clearTimeout(state.eventsTimer);
      connectEvents();
    }
  });

  // ---- start ---------------------------------------------------------------------------------
  state.auth = restoreAuth();
  if (state.auth) startConsole();
  else showLogin();

  // For tests and debugging.
  window.bankbotAgent = { state: state, refreshQueue: refreshQueue };
})();
