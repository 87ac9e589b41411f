// Browser demo of the notification hub. Plain ES2020, no build step.
// loader.js loads the Socket.IO client, then calls NotificationHubApp.start()
// (or NotificationHubApp.fail(message) when the client could not be loaded).
"use strict";

(function () {
  // The client's defaults: HTTP long-polling first, then the upgrade to WebSocket (works behind
  // proxies that block WebSocket, and is how the original tutorial's page connected).
  const TRANSPORTS = ["polling", "websocket"];

  const NOTIFY_URL = "/notifications/notify";

  const $ = (id) => document.getElementById(id);

  const els = {
    status: $("status"),
    socketId: $("socket-id"),
    log: $("connection-log"),
    drop: $("drop"),
    reconnect: $("reconnect"),
    form: $("send-form"),
    title: $("title"),
    message: $("message"),
    sendError: $("send-error"),
    sendStatus: $("send-status"),
    feed: $("feed"),
    feedEmpty: $("feed-empty"),
  };

  let socket = null;
  // True from the start and after every disconnect until the next `connect`
  // event. On a recovered reconnect the client hands over the missed
  // (buffered) events just before `connect`, while `socket.connected` is
  // already true, so this flag, not `socket.connected`, tells them apart.
  let awaitingConnect = true;
  let replayedSinceDisconnect = 0;
  let hasConnectedBefore = false;
  let droppedByUser = false;

  // ---- status ------------------------------------------------------------

  function setOnline(online, id) {
    els.status.dataset.state = online ? "online" : "offline";
    els.status.textContent = online ? "Online" : "Offline";
    if (online && id) {
      els.socketId.textContent = id;
      els.socketId.hidden = false;
    } else {
      els.socketId.textContent = "";
      els.socketId.hidden = true;
    }
  }

  function logLine(text, kind) {
    els.log.textContent = text;
    if (kind) els.log.dataset.kind = kind;
    else delete els.log.dataset.kind;
  }

  function plural(n, one, many) {
    return n + " " + (n === 1 ? one : many);
  }

  // ---- feed --------------------------------------------------------------

  function pad2(n) {
    return String(n).padStart(2, "0");
  }

  function asText(value) {
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    return "";
  }

  function toDate(timestamp) {
    let ms = timestamp;
    if (typeof ms === "string" && ms.trim() !== "") ms = Number(ms);
    if (typeof ms !== "number" || !Number.isFinite(ms)) return null;
    const date = new Date(ms);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  function renderNotification(notification, offset, replayed) {
    const n = notification && typeof notification === "object" ? notification : {};
    const id = asText(n.id);
    const title = asText(n.title);
    const body = asText(n.body);
    const date = toDate(n.timestamp);
    const offsetText = asText(offset);

    const li = document.createElement("li");
    li.className = "notification";
    li.dataset.id = id;
    li.dataset.offset = offsetText;
    li.dataset.replayed = replayed ? "true" : "false";

    const head = document.createElement("div");
    head.className = "notification-head";

    const titleEl = document.createElement("p");
    titleEl.className = "notification-title";
    titleEl.textContent = title || "(no title)";
    if (!title) titleEl.classList.add("is-missing");
    head.appendChild(titleEl);

    const meta = document.createElement("div");
    meta.className = "notification-meta";
    if (replayed) {
      const badge = document.createElement("span");
      badge.className = "badge badge-replayed";
      badge.textContent = "replayed";
      badge.title = "Missed while disconnected; replayed on reconnect";
      meta.appendChild(badge);
    }
    if (date) {
      const time = document.createElement("time");
      time.className = "notification-time";
      time.dateTime = date.toISOString();
      time.textContent =
        pad2(date.getHours()) + ":" + pad2(date.getMinutes()) + ":" + pad2(date.getSeconds());
      meta.appendChild(time);
    }
    head.appendChild(meta);
    li.appendChild(head);

    const bodyEl = document.createElement("p");
    bodyEl.className = "notification-body";
    bodyEl.textContent = body || "(no message)";
    if (!body) bodyEl.classList.add("is-missing");
    li.appendChild(bodyEl);

    if (offsetText) {
      const offsetEl = document.createElement("p");
      offsetEl.className = "notification-offset";
      offsetEl.textContent = "offset " + offsetText;
      li.appendChild(offsetEl);
    }

    // Newest at the top.
    els.feed.prepend(li);
    els.feedEmpty.hidden = true;
  }

  function onNotification(notification, offset) {
    try {
      const replayed = awaitingConnect && socket.recovered === true;
      if (replayed) replayedSinceDisconnect += 1;
      renderNotification(notification, offset, replayed);
    } catch (err) {
      // Never let a malformed message break the page.
      console.error("could not show notification", notification, offset, err);
    }
  }

  // ---- socket ------------------------------------------------------------

  function willRetry() {
    return Boolean(socket && socket.active && socket.io.reconnection());
  }

  function connectSocket() {
    socket = window.io({ transports: TRANSPORTS });
    window.NotificationHubApp.socket = socket;

    socket.on("connect", () => {
      const recovered = socket.recovered === true;
      const replayed = replayedSinceDisconnect;
      awaitingConnect = false;
      replayedSinceDisconnect = 0;
      droppedByUser = false;
      setOnline(true, socket.id);
      if (!hasConnectedBefore) {
        logLine("Connected.", "ok");
      } else if (recovered) {
        logLine(
          "Reconnected: session recovered, " +
            plural(replayed, "missed message", "missed messages") + " replayed.",
          "ok"
        );
      } else {
        logLine("Reconnected: new session (nothing replayed).", "warn");
      }
      hasConnectedBefore = true;
    });

    socket.on("disconnect", (reason) => {
      awaitingConnect = true;
      replayedSinceDisconnect = 0;
      setOnline(false);
      if (droppedByUser) {
        logLine("Connection dropped. Send some messages, then click Reconnect.", "warn");
      } else {
        logLine("Disconnected (" + reason + ")." +
          (willRetry() ? " Trying to reconnect…" : " Click Reconnect."), "warn");
      }
    });

    socket.on("connect_error", (err) => {
      setOnline(false);
      const msg = err && err.message ? err.message : String(err);
      logLine("Connection error: " + msg + "." +
        (willRetry() ? " Retrying…" : " Click Reconnect to try again."), "error");
    });

    socket.io.on("reconnect_attempt", (attempt) => {
      logLine("Reconnecting (attempt " + attempt + ")…", "warn");
    });

    socket.on("notification", onNotification);
    // The server also sends "hub:offset" right after connecting; the page ignores it.

    logLine("Connecting…");
  }

  function dropConnection() {
    if (!socket) return;
    const wasConnected = socket.connected;
    droppedByUser = true;
    socket.io.reconnection(false);
    try {
      if (socket.io.engine) socket.io.engine.close();
    } catch (err) {
      console.error("could not close the engine", err);
    }
    if (!wasConnected) {
      // No `disconnect` event comes in this case; say what happened here.
      setOnline(false);
      logLine("Connection dropped; automatic reconnection is off until you click Reconnect.", "warn");
    }
  }

  function reconnect() {
    if (!socket) return;
    socket.io.reconnection(true);
    if (socket.connected) {
      logLine("Already connected.", "ok");
      return;
    }
    logLine("Reconnecting…");
    socket.connect();
  }

  // ---- sending -----------------------------------------------------------

  function showSendError(message) {
    els.sendError.textContent = message;
    els.sendStatus.textContent = "";
  }

  async function send(event) {
    if (event) event.preventDefault();
    const title = els.title.value.trim();
    const body = els.message.value;
    const payload = {};
    // Empty fields are omitted so the server's defaults apply.
    if (title) payload.title = title;
    if (body.trim()) payload.body = body;

    let response;
    try {
      response = await fetch(NOTIFY_URL, {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify(payload),
      });
    } catch (err) {
      showSendError("Send failed: network error (" + (err && err.message ? err.message : err) + ").");
      return;
    }

    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }

    if (!response.ok) {
      const reason =
        data && typeof data.error === "string" && data.error
          ? data.error
          : response.statusText || "request failed";
      showSendError("Send failed (HTTP " + response.status + "): " + reason);
      return;
    }

    els.sendError.textContent = "";
    els.sendStatus.textContent =
      "Sent" + (data && typeof data.offset === "string" ? " (offset " + data.offset + ")" : "") + ".";
    els.title.value = "";
    els.message.value = "";
    els.message.focus();
  }

  // ---- wiring ------------------------------------------------------------

  // Sending works over plain HTTP, so it is wired even before (or without)
  // the Socket.IO client.
  els.form.addEventListener("submit", (event) => {
    send(event).catch((err) => showSendError("Send failed: " + (err && err.message ? err.message : err)));
  });
  els.drop.addEventListener("click", dropConnection);
  els.reconnect.addEventListener("click", reconnect);

  let started = false;

  window.NotificationHubApp = {
    socket: null,
    start() {
      if (started) return;
      started = true;
      try {
        connectSocket();
      } catch (err) {
        this.fail("Could not start the Socket.IO client: " + (err && err.message ? err.message : err));
      }
    },
    fail(message) {
      setOnline(false);
      logLine(message, "error");
      els.log.setAttribute("role", "alert");
    },
  };
})();
