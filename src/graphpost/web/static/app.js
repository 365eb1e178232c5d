/* graphpost's mailbox page: plain JavaScript, no build step, no third-party code.

   It reads the JSON endpoints under /web/api/ (see docs/architecture.md) and listens to
   /web/api/mailboxes/{user}/events (server-sent events) for new mail.

   Stable hooks for browser tests (kept as they are; add, do not rename):
     #mailboxes                       the tenants and users; each user is
       a.mailbox[data-user-id][data-mail]   (.selected when open)
     #folders                         the open mailbox's folders; each is
       a.folder[data-folder][data-well-known][data-unread][data-total]
       with span.unread (the unread count, empty when 0)
     #message-list tbody tr.message[data-message-id][data-read="true|false"]
       [data-has-attachments="true|false"][data-delivery-state="queued|deferred|delivered|
       failed|"]; cells td.from, td.subject (with span.preview), td.time;
       span.attachment-mark, span.delivery-mark
     #more-button                     the next (older) page of the list
     #search-form / #search-box       search across the open mailbox ($search); Escape or an
                                      empty search returns to the folder
     #message-view                    the open message: #message-subject, #message-headers
                                      (dt/dd pairs: From, To, Cc, Bcc, Date, Message-ID),
                                      #attachments li a.attachment[data-attachment-id]
                                      [download], #raw-link, #raw-download, #toggle-headers,
                                      #all-headers, iframe#message-body (sandbox="", src: the
                                      body URL), #load-remote (reloads the body with remote
                                      content allowed; [data-loaded="true"] after)
     #delivery-table tbody tr.recipient[data-recipient][data-state], each followed by
       tr.attempt rows (data-outcome)
     #queue-tab                       opens #queue-view; .queue-state[data-state] filters
                                      (data-state "queued,deferred,failed" is All);
       #queue-list tbody tr.queued-delivery[data-delivery-id][data-state] with
       button.retry and button.delete (queued and deferred only); #queue-more;
       #queue-counts (admins: how many are queued, deferred, failed)
     #live-status[data-state="open|closed"]   the event stream
     body[data-ready="true"]          set once the first mailbox list has loaded
     #error-bar                       the last error, if any
*/
"use strict";

(function () {
  const $ = (sel) => document.querySelector(sel);
  const state = {
    csrf: "",
    user: null,        // the open mailbox's user id
    folder: null,      // the open folder id
    cursor: null,      // the list's next page
    search: null,      // the search text, when searching
    searchSkip: null,
    message: null,     // the open message id
    events: null,
    queueState: "queued,deferred,failed",
    queueCursor: null,
  };

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function showError(message) {
    const bar = $("#error-bar");
    bar.textContent = message;
    bar.hidden = !message;
  }

  async function api(path, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    if (opts.method && opts.method !== "GET") opts.headers["X-CSRF-Token"] = state.csrf;
    const response = await fetch(path, opts);
    if (response.status === 401) {
      window.location.assign("/web/signin");
      throw new Error("not signed in");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const message = (body.error && body.error.message) || response.statusText;
      throw new Error(message);
    }
    return body;
  }

  const enc = encodeURIComponent;

  function who(person) {
    if (!person) return "";
    if (person.name && person.name !== person.address) return `${person.name} <${person.address}>`;
    return person.address || person.name || "";
  }

  function shortTime(iso) {
    if (!iso) return "";
    const when = new Date(iso);
    if (isNaN(when)) return iso;
    const now = new Date();
    if (when.toDateString() === now.toDateString()) {
      return when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    }
    return when.toLocaleDateString();
  }

  // ---------------------------------------------------------------- mailboxes and folders

  async function loadMailboxes() {
    const data = await api("/web/api/mailboxes");
    const root = $("#mailboxes");
    root.replaceChildren();
    for (const tenant of data.value) {
      const list = el("ul", { class: "users" });
      for (const user of tenant.users) {
        list.append(el("li", {}, el("a", {
          class: "mailbox", href: "#", "data-user-id": user.id, "data-mail": user.mail,
          title: user.mail, onclick: (e) => { e.preventDefault(); openMailbox(user.id); },
        }, user.displayName || user.mail)));
      }
      root.append(el("div", { class: "tenant", "data-tenant": tenant.domain },
        el("h3", { text: tenant.domain }), list));
    }
    const first = root.querySelector("a.mailbox");
    if (!state.user && first) await openMailbox(first.dataset.userId);
    else if (state.user) {
      for (const a of root.querySelectorAll("a.mailbox")) {
        a.classList.toggle("selected", a.dataset.userId === state.user);
      }
    }
  }

  async function openMailbox(userId) {
    state.user = userId;
    state.folder = null;
    state.search = null;
    $("#search-box").value = "";
    $("#search-box").disabled = false;
    for (const a of document.querySelectorAll("a.mailbox")) {
      a.classList.toggle("selected", a.dataset.userId === userId);
    }
    closeMessage();
    await loadFolders();
    const inbox = document.querySelector('a.folder[data-well-known="inbox"]') ||
      document.querySelector("a.folder");
    if (inbox) await openFolder(inbox.dataset.folder);
    listen();
  }

  async function loadFolders() {
    const data = await api(`/web/api/mailboxes/${enc(state.user)}/folders`);
    const root = $("#folders");
    root.replaceChildren();
    const list = el("ul", { class: "folder-tree" });
    for (const f of data.value) {
      const item = el("li", { "data-depth": f.depth });
      item.style.paddingLeft = `${f.depth}em`; // CSSOM: allowed by the page's style-src 'self'
      list.append(item);
      item.append(el("a", {
        class: "folder" + (f.id === state.folder ? " selected" : ""), href: "#",
        "data-folder": f.id, "data-well-known": f.wellKnownName || "",
        "data-unread": f.unreadCount, "data-total": f.totalCount,
        onclick: (e) => { e.preventDefault(); openFolder(f.id); },
      }, el("span", { class: "name", text: f.displayName }),
      el("span", { class: "unread", text: f.unreadCount ? String(f.unreadCount) : "" })));
    }
    root.append(list);
  }

  // ---------------------------------------------------------------- the message list

  async function openFolder(folderId) {
    state.folder = folderId;
    state.search = null;
    state.cursor = null;
    for (const a of document.querySelectorAll("a.folder")) {
      a.classList.toggle("selected", a.dataset.folder === folderId);
    }
    showPane("list");
    await loadPage(false);
  }

  async function loadPage(append) {
    let data;
    if (state.search !== null) {
      const skip = append ? state.searchSkip : 0;
      data = await api(`/web/api/mailboxes/${enc(state.user)}/search?q=${enc(state.search)}&skip=${skip}`);
      state.searchSkip = data.nextSkip;
      $("#list-title").textContent = `Search: ${state.search}`;
    } else {
      const cursor = append && state.cursor ? `?cursor=${enc(state.cursor)}` : "";
      data = await api(`/web/api/mailboxes/${enc(state.user)}/folders/${enc(state.folder)}/messages${cursor}`);
      state.cursor = data.nextCursor;
      $("#list-title").textContent = data.folder.displayName;
    }
    const body = $("#message-list tbody");
    if (!append) body.replaceChildren();
    for (const m of data.value) body.append(row(m));
    $("#list-empty").hidden = body.children.length > 0;
    $("#more-button").hidden = state.search !== null ? data.nextSkip == null : !data.nextCursor;
  }

  function row(m) {
    const delivery = m.delivery || "";
    const marks = el("td", { class: "mark" },
      el("span", { class: "attachment-mark", title: m.hasAttachments ? "attachment" : null,
        text: m.hasAttachments ? "📎" : "" }),
      el("span", { class: `delivery-mark ${delivery}`, title: delivery || null,
        text: { delivered: "✓", queued: "…", deferred: "⏳", failed: "✗" }[delivery] || "" }));
    const sender = m.isDraft ? `To: ${(m.to || []).map(who).join(", ")}` : who(m.from);
    return el("tr", {
      class: "message" + (m.isRead ? "" : " unread") + (m.id === state.message ? " selected" : ""),
      "data-message-id": m.id, "data-read": String(m.isRead),
      "data-has-attachments": String(m.hasAttachments), "data-delivery-state": delivery,
      onclick: () => openMessage(m.id),
    }, marks, el("td", { class: "from", text: sender }),
    el("td", { class: "subject" }, el("span", { class: "subject-text", text: m.subject || "(no subject)" }),
      el("span", { class: "preview", text: m.preview ? ` — ${m.preview}` : "" })),
    el("td", { class: "time", title: m.receivedDateTime, text: shortTime(m.receivedDateTime) }));
  }

  async function search(text) {
    if (!state.user) return;
    if (!text) {
      if (state.folder) await openFolder(state.folder);
      return;
    }
    state.search = text;
    state.searchSkip = 0;
    showPane("list");
    await loadPage(false);
  }

  // ---------------------------------------------------------------- one message

  function closeMessage() {
    state.message = null;
    $("#message-view").hidden = true;
    $("#message-body").removeAttribute("src");
  }

  async function openMessage(id) {
    const m = await api(`/web/api/mailboxes/${enc(state.user)}/messages/${enc(id)}`);
    state.message = id;
    for (const tr of document.querySelectorAll("tr.message")) {
      tr.classList.toggle("selected", tr.dataset.messageId === id);
    }
    $("#message-view").hidden = false;
    $("#message-subject").textContent = m.subject || "(no subject)";
    const dl = $("#message-headers");
    dl.replaceChildren();
    const pairs = [
      ["From", who(m.from)],
      ["Sender", m.sender && m.from && m.sender.address !== m.from.address ? who(m.sender) : ""],
      ["To", m.toRecipients.map(who).join(", ")],
      ["Cc", m.ccRecipients.map(who).join(", ")],
      ["Bcc", m.bccRecipients.map(who).join(", ")],
      ["Reply-To", m.replyTo.map(who).join(", ")],
      ["Date", m.isDraft ? "(draft)" : new Date(m.receivedDateTime).toLocaleString()],
      ["Message-ID", m.internetMessageId],
    ];
    for (const [name, value] of pairs) {
      if (!value) continue;
      dl.append(el("dt", { text: name }), el("dd", { "data-header": name.toLowerCase(), text: value }));
    }
    $("#all-headers").textContent = m.headers.map((h) => `${h.name}: ${h.value}`).join("\n");
    $("#all-headers").hidden = true;
    const list = $("#attachments");
    list.replaceChildren();
    for (const a of m.attachments) {
      if (!a.url) {
        list.append(el("li", { text: `${a.name} (link)` }));
        continue;
      }
      list.append(el("li", {}, el("a", {
        class: "attachment" + (a.isInline ? " inline" : ""), href: a.url, download: a.name,
        "data-attachment-id": a.id,
      }, a.name), ` ${a.contentType || ""} · ${a.size} bytes`));
    }
    renderDelivery(m.delivery);
    $("#raw-link").href = m.rawUrl;
    $("#raw-download").href = `${m.rawUrl}?download=1`;
    const remote = $("#load-remote");
    remote.hidden = m.bodyType !== "html";
    remote.dataset.loaded = "false";
    remote.onclick = () => {
      $("#message-body").src = `${m.bodyUrl}?remote=1`;
      remote.dataset.loaded = "true";
    };
    // the page only reads: opening a message here does not mark it read
    $("#message-body").src = m.bodyUrl;
  }

  function renderDelivery(delivery) {
    const box = $("#delivery");
    const body = $("#delivery-table tbody");
    body.replaceChildren();
    box.hidden = !delivery;
    if (!delivery) return;
    for (const r of delivery.recipients) {
      body.append(el("tr", { class: "recipient", "data-recipient": r.recipient, "data-state": r.state },
        el("td", { text: r.recipient }), el("td", { text: r.route }),
        el("td", { class: `state ${r.state}`, text: r.state }), el("td", { text: r.attempts }),
        el("td", { class: "reply", text: r.lastCode ? `${r.lastCode} ${r.lastEnhancedCode || ""} ${r.lastResponse || ""}` : (r.lastResponse || "") })));
      for (const a of r.history) {
        body.append(el("tr", { class: "attempt", "data-outcome": a.outcome },
          el("td", { text: "" }), el("td", { text: new Date(a.at).toLocaleString() }),
          el("td", { text: a.outcome }), el("td", { text: "" }),
          el("td", { class: "reply", text: `${a.code || ""} ${a.enhancedCode || ""} ${a.response || ""}` })));
      }
    }
  }

  // ---------------------------------------------------------------- the outbound queue

  function showPane(which) {
    $("#list-pane").hidden = which !== "list";
    $("#queue-view").hidden = which !== "queue";
    if (which === "queue") $("#message-view").hidden = true;
  }

  async function loadQueue(append) {
    showPane("queue");
    for (const b of document.querySelectorAll(".queue-state")) {
      b.classList.toggle("selected", b.dataset.state === state.queueState);
    }
    const cursor = append && state.queueCursor ? `&cursor=${enc(state.queueCursor)}` : "";
    let data;
    try {
      data = await api(`/web/api/queue?state=${enc(state.queueState)}${cursor}`);
    } catch (err) {
      $("#queue-unavailable").hidden = false;
      throw err;
    }
    $("#queue-unavailable").hidden = true;
    state.queueCursor = data.nextCursor;
    const body = $("#queue-list tbody");
    if (!append) body.replaceChildren();
    if (data.counts) {
      $("#queue-counts").textContent =
        `queued ${data.counts.queued || 0} · deferred ${data.counts.deferred || 0} · failed ${data.counts.failed || 0}`;
    }
    for (const d of data.value) {
      const pending = d.state === "queued" || d.state === "deferred";
      body.append(el("tr", { class: "queued-delivery", "data-delivery-id": d.id, "data-state": d.state },
        el("td", { text: d.recipient }), el("td", { text: d.subject || "" }), el("td", { class: "sender", text: d.fromName ? `${d.fromName} <${d.from}>` : (d.from || "") }),
        el("td", { class: `state ${d.state}`, text: d.state }), el("td", { text: d.attempts }),
        el("td", { class: "reply", text: d.lastCode ? `${d.lastCode} ${d.lastEnhancedCode || ""} ${d.lastResponse || ""}` : (d.lastResponse || "") }),
        el("td", { text: d.nextAttemptDateTime ? new Date(d.nextAttemptDateTime).toLocaleString() : "" }),
        el("td", {},
          pending ? el("button", { type: "button", class: "retry", onclick: () => queueAction(d.id, "retry") }, "Retry now") : null,
          pending ? el("button", { type: "button", class: "delete", onclick: () => queueAction(d.id, "delete") }, "Delete") : null)));
    }
    $("#queue-empty").hidden = body.children.length > 0;
    $("#queue-more").hidden = !data.nextCursor;
  }

  async function queueAction(id, action) {
    if (action === "delete" && !window.confirm("Delete this delivery from the queue?")) return;
    await api(`/web/api/queue/${enc(id)}/${action}`, { method: "POST" });
    await loadQueue(false);
  }

  // ---------------------------------------------------------------- live updates

  function listen() {
    if (state.events) state.events.close();
    const status = $("#live-status");
    status.dataset.state = "closed";
    const source = new EventSource(`/web/api/mailboxes/${enc(state.user)}/events`);
    state.events = source;
    source.addEventListener("ready", () => { status.dataset.state = "open"; });
    source.addEventListener("change", () => { refresh().catch((err) => showError(err.message)); });
    source.onerror = () => { status.dataset.state = "closed"; };
  }

  let refreshing = null;
  async function refresh() {
    if (refreshing) return refreshing;
    refreshing = (async () => {
      await loadFolders();
      // the first page of the folder shown: new mail comes in at the top
      if (state.search === null && state.folder && !$("#list-pane").hidden) {
        const shown = document.querySelectorAll("#message-list tbody tr").length;
        if (shown <= 50) await loadPage(false);
      }
    })();
    try { await refreshing; } finally { refreshing = null; }
  }

  // ---------------------------------------------------------------- start

  async function start() {
    const session = await api("/web/api/session");
    state.csrf = session.csrf;
    if (session.user) {
      $("#whoami").textContent = session.user.displayName;
      $("#signout-csrf").value = session.csrf;
      $("#signout-form").hidden = false;
    } else {
      $("#whoami").textContent = "emulator (open)";
    }
    $("#search-form").addEventListener("submit", (e) => {
      e.preventDefault();
      search($("#search-box").value.trim()).catch((err) => showError(err.message));
    });
    $("#search-box").addEventListener("keydown", (e) => {
      if (e.key === "Escape") {
        $("#search-box").value = "";
        search("").catch((err) => showError(err.message));
      }
    });
    $("#more-button").addEventListener("click", () => loadPage(true).catch((err) => showError(err.message)));
    $("#queue-tab").addEventListener("click", () => loadQueue(false).catch((err) => showError(err.message)));
    $("#queue-more").addEventListener("click", () => loadQueue(true).catch((err) => showError(err.message)));
    for (const b of document.querySelectorAll(".queue-state")) {
      b.addEventListener("click", () => {
        state.queueState = b.dataset.state;
        loadQueue(false).catch((err) => showError(err.message));
      });
    }
    $("#toggle-headers").addEventListener("click", () => { $("#all-headers").hidden = !$("#all-headers").hidden; });
    // #/{user}/{message}: where a message's webLink (/owa/?ItemID=…) sends the browser
    const linked = /^#\/([^/]+)\/([^/]+)$/.exec(window.location.hash);
    if (linked) state.user = decodeURIComponent(linked[1]);
    await loadMailboxes();
    if (linked) {
      await openMailbox(state.user);
      await openMessage(decodeURIComponent(linked[2]));
    }
    document.body.dataset.ready = "true";
  }

  document.addEventListener("DOMContentLoaded", () => {
    start().catch((err) => showError(err.message));
  });
})();
