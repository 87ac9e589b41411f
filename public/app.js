// Browser demo of the notification hub. Plain ES2020, no build step.
// loader.js chooses the Socket.IO client (the page's own hub-client.js, or the
// official one with ?client=official), then calls NotificationHubApp.start(io)
// with its `io` (or NotificationHubApp.fail(message) when it could not be loaded).
//
// Two modes, as the hub is configured. Open (no HUB_JWT_SECRET): the page
// connects without credentials and publishes with POST /notifications/notify.
// Token: the hub answers a CONNECT without a valid token with the error
// "unauthorized"; the page then asks for a token (a JWT), keeps it in
// sessionStorage (this tab only; never in the URL, never in localStorage),
// sends it as `auth.token` on every (re)connect, and publishes over its socket
// (`notify` with an acknowledgement), where the hub knows who is publishing.
//
// On open (and after every reconnect that is not a recovered session) the
// page shows the last 20 notifications from GET /notifications (with its token
// when it has one), then live ones; one that arrives both ways shows once.
//
// Either way a send goes to everyone, to one user (`to: "user:<id>"`: every
// page connected with that user's token), or to a room; the page joins and
// leaves rooms with the `join` / `leave` events (acknowledged {ok} or {error}).
"use strict";

(function () {
  // The official client's defaults: HTTP long-polling first, then the upgrade to WebSocket (works
  // behind proxies that block WebSocket, and is how the original tutorial's page connected). The
  // built-in client speaks WebSocket only and takes the list as long as it names "websocket".
  const TRANSPORTS = ["polling", "websocket"];

  const NOTIFY_URL = "/notifications/notify";
  // The history API (README "History"): the newest notifications, newest first.
  const HISTORY_URL = "/notifications";
  // How many the page shows from the history when it connects.
  const HISTORY_COUNT = 20;
  // sessionStorage key of the pasted token.
  const TOKEN_KEY = "realtime-hub.token";
  // How long a `notify` (or `join`, `leave`) over the socket waits for the hub's acknowledgement.
  const SOCKET_SEND_TIMEOUT_MS = 10000;
  // The hub's prefix of a user's own room (README "Rooms and targeted notifications").
  const USER_ROOM_PREFIX = "user:";

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
    identityLine: $("identity-line"),
    identity: $("identity"),
    tokenForm: $("token-form"),
    token: $("token"),
    tokenHint: $("token-hint"),
    tokenError: $("token-error"),
    forgetToken: $("forget-token"),
    toKind: $("to-kind"),
    toName: $("to-name"),
    toHint: $("to-hint"),
    roomForm: $("room-form"),
    room: $("room"),
    roomError: $("room-error"),
    rooms: $("rooms"),
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
  // Set once the hub refused a CONNECT as "unauthorized": it requires a token.
  let tokenRequired = false;
  // The token the current (or last) CONNECT carried; "" for none.
  let sentToken = "";
  // Rooms this page joined, in the order joined. The hub keeps them with the
  // session (a recovered reconnect is still in them); after a fresh session the
  // page joins them again.
  const joinedRooms = [];

  // ---- token -------------------------------------------------------------

  // sessionStorage can be unavailable (storage disabled): the page then works
  // as in open mode, and a pasted token lasts until the page is left.
  let tokenInMemory = "";

  function storedToken() {
    try {
      return window.sessionStorage.getItem(TOKEN_KEY) || "";
    } catch (_) {
      return tokenInMemory;
    }
  }

  function storeToken(token) {
    tokenInMemory = token;
    try {
      if (token) window.sessionStorage.setItem(TOKEN_KEY, token);
      else window.sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // Kept in memory only (see above).
    }
  }

  // Token mode: the hub asked for a token, or one was pasted in this tab.
  function tokenMode() {
    return tokenRequired || storedToken() !== "";
  }

  // The token's `sub`, for display only. This decodes the payload WITHOUT
  // checking the signature: it is not a verification, and nothing here trusts
  // it. The hub verified the token before it accepted the connection; the page
  // merely shows whose token it sent. null when there is no readable `sub`.
  function displayedSubject(token) {
    try {
      const part = token.split(".")[1];
      const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
      const binary = window.atob(base64 + "===".slice((base64.length + 3) % 4));
      const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
      const payload = JSON.parse(new TextDecoder().decode(bytes));
      return typeof payload.sub === "string" && payload.sub ? payload.sub : null;
    } catch (_) {
      return null;
    }
  }

  function showIdentity(token) {
    const sub = token ? displayedSubject(token) : null;
    els.identity.textContent = sub || "";
    els.identityLine.hidden = !sub;
  }

  function showTokenForm(hint) {
    els.tokenHint.textContent = hint;
    els.tokenForm.hidden = false;
  }

  function hideTokenForm() {
    els.tokenForm.hidden = true;
    els.tokenError.textContent = "";
  }

  function updateForgetButton() {
    els.forgetToken.hidden = storedToken() === "";
  }

  // A fresh connection with the current token (or none): the old one, if
  // any, ends first, as it was made with another identity.
  function reconnectWithCurrentToken() {
    // Another identity: the rooms were the last one's.
    joinedRooms.length = 0;
    renderRooms();
    if (!socket) return;
    droppedByUser = false;
    socket.io.reconnection(true);
    if (socket.connected || socket.active) socket.disconnect();
    socket.connect();
  }

  function useToken(event) {
    if (event) event.preventDefault();
    const token = els.token.value.trim();
    if (!/^[\w-]+\.[\w-]+\.[\w-]*$/.test(token)) {
      els.tokenError.textContent =
        "That is not a token: a JWT is three parts separated by dots (header.payload.signature).";
      return;
    }
    // Out of the page's DOM as soon as it is stored.
    els.token.value = "";
    els.tokenError.textContent = "";
    storeToken(token);
    updateForgetButton();
    logLine("Connecting with the token…");
    reconnectWithCurrentToken();
  }

  function forgetToken() {
    storeToken("");
    els.token.value = "";
    showIdentity("");
    updateForgetButton();
    logLine("Token forgotten.");
    reconnectWithCurrentToken();
  }

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

    placeInFeed(li, offsetText);
    els.feedEmpty.hidden = true;
    return li;
  }

  // Offsets and ids of the notifications shown: one that arrives twice (from
  // the history and live, or replayed after the history showed it) shows once.
  const shownOffsets = new Set();
  const shownIds = new Set();

  // Whether a notification was shown already; if not, remembers it as shown.
  function alreadyShown(notification, offset) {
    const id = notification && typeof notification === "object" ? asText(notification.id) : "";
    const offsetText = asText(offset);
    if ((offsetText && shownOffsets.has(offsetText)) || (id && shownIds.has(id))) return true;
    if (offsetText) shownOffsets.add(offsetText);
    if (id) shownIds.add(id);
    return false;
  }

  // A stream id "<ms>-<seq>" as [ms, seq], or null.
  function parseOffset(text) {
    const match = /^(\d+)-(\d+)$/.exec(text || "");
    return match ? [Number(match[1]), Number(match[2])] : null;
  }

  // Newest at the top, by offset: history that arrives after a live
  // notification still goes below it. Without an offset: at the top.
  function placeInFeed(li, offsetText) {
    const mine = parseOffset(offsetText);
    if (mine) {
      for (const other of els.feed.children) {
        const theirs = parseOffset(other.dataset.offset);
        if (theirs && (theirs[0] < mine[0] || (theirs[0] === mine[0] && theirs[1] < mine[1]))) {
          els.feed.insertBefore(li, other);
          return;
        }
      }
      els.feed.appendChild(li);
      return;
    }
    els.feed.prepend(li);
  }

  // The last HISTORY_COUNT notifications this page may see (with its token
  // when it has one), shown below the live ones. Failing quietly: the live
  // feed works without it (e.g. a hub that wants an API key for the history).
  async function loadHistory() {
    const token = storedToken();
    const headers = { Accept: "application/json" };
    if (token) headers.Authorization = "Bearer " + token;
    let page;
    try {
      const response = await fetch(HISTORY_URL + "?limit=" + HISTORY_COUNT, { headers, cache: "no-store" });
      if (!response.ok) {
        if (!els.feed.children.length) {
          els.feedEmpty.textContent = "No notifications yet (history unavailable: HTTP " + response.status + ").";
        }
        return;
      }
      page = await response.json();
    } catch (_) {
      return;
    }
    const items = page && Array.isArray(page.items) ? page.items : [];
    for (const item of items) {
      try {
        if (!item || typeof item !== "object" || alreadyShown(item, item.offset)) continue;
        renderNotification(item, item.offset, false).dataset.history = "true";
      } catch (err) {
        console.error("could not show a notification from the history", item, err);
      }
    }
  }

  function onNotification(notification, offset) {
    try {
      const replayed = awaitingConnect && socket.recovered === true;
      if (alreadyShown(notification, offset)) return;
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

  function connectSocket(io) {
    socket = io({
      transports: TRANSPORTS,
      // A function, so every (re)connect sends the token stored now, not the
      // one there was when the page loaded.
      auth: (send) => {
        sentToken = storedToken();
        send(sentToken ? { token: sentToken } : {});
      },
    });
    window.NotificationHubApp.socket = socket;

    socket.on("connect", () => {
      const recovered = socket.recovered === true;
      const replayed = replayedSinceDisconnect;
      awaitingConnect = false;
      replayedSinceDisconnect = 0;
      droppedByUser = false;
      setOnline(true, socket.id);
      hideTokenForm();
      showIdentity(sentToken);
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
      if (!recovered) {
        rejoinRooms();
        // A new session missed what was sent meanwhile: the history fills
        // the gap (duplicates of what is shown are skipped).
        loadHistory();
      }
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
      if (msg === "unauthorized") {
        // The hub requires a token and the CONNECT had none, or one it refused
        // (expired, badly signed, another audience). The client does not retry
        // a refused CONNECT; the page connects again once a token is pasted.
        tokenRequired = true;
        showIdentity("");
        const refused = sentToken !== "";
        showTokenForm(
          refused
            ? "The hub refused the token (expired or not valid here). Paste a new one."
            : "This hub requires a token (a JWT). Paste yours to connect."
        );
        logLine(refused ? "Connection refused: the token was not accepted." :
          "Connection refused: this hub requires a token.", "error");
        return;
      }
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

  // ---- rooms -------------------------------------------------------------

  function renderRooms() {
    els.rooms.replaceChildren(
      ...joinedRooms.map((room) => {
        const li = document.createElement("li");
        li.className = "room";
        li.dataset.room = room;
        const name = document.createElement("span");
        name.textContent = room;
        const leave = document.createElement("button");
        leave.type = "button";
        leave.className = "button button-secondary";
        leave.textContent = "Leave";
        leave.setAttribute("aria-label", "Leave " + room);
        leave.addEventListener("click", () => leaveRoom(room));
        li.append(name, leave);
        return li;
      })
    );
  }

  // Emits `event` with `room` and calls `done(error)` with the hub's refusal
  // (or a timeout, or "not connected"), `done(null)` when it answered {ok}.
  function roomRequest(event, room, done) {
    if (!socket || !socket.connected) {
      done("not connected");
      return;
    }
    socket.timeout(SOCKET_SEND_TIMEOUT_MS).emit(event, room, (err, ack) => {
      if (err) done("the hub did not answer within " + SOCKET_SEND_TIMEOUT_MS / 1000 + " s");
      else if (ack && ack.ok === true) done(null);
      else done(ack && typeof ack.error === "string" ? ack.error : "unexpected answer");
    });
  }

  function joinRoom(event) {
    if (event) event.preventDefault();
    const room = els.room.value.trim();
    if (!room) {
      els.roomError.textContent = "Type the name of a room to join.";
      return;
    }
    roomRequest("join", room, (error) => {
      if (error) {
        els.roomError.textContent = "Could not join " + room + ": " + error + ".";
        return;
      }
      els.roomError.textContent = "";
      els.room.value = "";
      if (!joinedRooms.includes(room)) joinedRooms.push(room);
      renderRooms();
    });
  }

  function leaveRoom(room) {
    roomRequest("leave", room, (error) => {
      if (error) {
        els.roomError.textContent = "Could not leave " + room + ": " + error + ".";
        return;
      }
      els.roomError.textContent = "";
      joinedRooms.splice(joinedRooms.indexOf(room), 1);
      renderRooms();
    });
  }

  // A fresh session is in no room: join the page's rooms again.
  function rejoinRooms() {
    for (const room of joinedRooms.slice()) {
      roomRequest("join", room, (error) => {
        if (!error) return;
        els.roomError.textContent = "Could not join " + room + " again: " + error + ".";
        joinedRooms.splice(joinedRooms.indexOf(room), 1);
        renderRooms();
      });
    }
  }

  // ---- sending -----------------------------------------------------------

  const TO_HINTS = {
    everyone: "Every connected page gets it.",
    user: "Every page connected with this user's token gets it (the user's id, the token's sub).",
    room: "Every page that joined this room gets it.",
  };

  function onToKind() {
    const kind = els.toKind.value;
    els.toName.hidden = kind === "everyone";
    els.toName.placeholder = kind === "user" ? "user id, e.g. alice" : "room name, e.g. ops";
    els.toHint.textContent = TO_HINTS[kind];
  }

  // The `to` of the notify request, "" for everyone, or null when a name is missing.
  function recipient() {
    const kind = els.toKind.value;
    if (kind === "everyone") return "";
    const name = els.toName.value.trim();
    if (!name) return null;
    return kind === "user" ? USER_ROOM_PREFIX + name : name;
  }

  function showSendError(message) {
    els.sendError.textContent = message;
    els.sendStatus.textContent = "";
  }

  function showSent(offset, to) {
    els.sendError.textContent = "";
    els.sendStatus.textContent = "Sent" + (to ? " to " + to : "") +
      (typeof offset === "string" ? " (offset " + offset + ")" : "") + ".";
    els.title.value = "";
    els.message.value = "";
    els.message.focus();
  }

  // What an acknowledged {"error"} means, for the person at the page.
  const SOCKET_REFUSALS = {
    forbidden: "this token does not allow publishing",
    "rate limited": "too many notifications at once; wait a moment",
  };

  // Token mode: over the socket, as the identity the hub verified.
  function sendOverSocket(payload) {
    const to = payload.to;
    if (!socket || !socket.connected) {
      showSendError("Send failed: not connected.");
      return;
    }
    socket.timeout(SOCKET_SEND_TIMEOUT_MS).emit("notify", payload, (err, ack) => {
      if (err) {
        showSendError("Send failed: the hub did not answer within " + SOCKET_SEND_TIMEOUT_MS / 1000 + " s.");
        return;
      }
      if (ack && typeof ack.error === "string") {
        const why = SOCKET_REFUSALS[ack.error];
        showSendError("Send refused: " + ack.error + (why ? " (" + why + ")." : "."));
        return;
      }
      showSent(ack && ack.offset, to);
    });
  }

  async function send(event) {
    if (event) event.preventDefault();
    const title = els.title.value.trim();
    const body = els.message.value;
    const payload = {};
    // Empty fields are omitted so the server's defaults apply.
    if (title) payload.title = title;
    if (body.trim()) payload.body = body;
    const to = recipient();
    if (to === null) {
      showSendError(els.toKind.value === "user" ? "Type the id of the user to send to." :
        "Type the name of the room to send to.");
      return;
    }
    if (to) payload.to = to;

    if (tokenMode()) {
      sendOverSocket(payload);
      return;
    }

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

    showSent(data && data.offset, to);
  }

  // ---- wiring ------------------------------------------------------------

  // Sending works over plain HTTP, so it is wired even before (or without)
  // the Socket.IO client.
  els.form.addEventListener("submit", (event) => {
    send(event).catch((err) => showSendError("Send failed: " + (err && err.message ? err.message : err)));
  });
  els.drop.addEventListener("click", dropConnection);
  els.reconnect.addEventListener("click", reconnect);
  els.tokenForm.addEventListener("submit", useToken);
  els.forgetToken.addEventListener("click", forgetToken);
  els.toKind.addEventListener("change", onToKind);
  els.roomForm.addEventListener("submit", joinRoom);
  onToKind();
  updateForgetButton();

  let started = false;

  window.NotificationHubApp = {
    socket: null,
    // Which client the page runs with ("built-in" or "official"), for tests and people debugging.
    client: null,
    start(io, client) {
      if (started) return;
      started = true;
      this.client = client || null;
      try {
        connectSocket(io);
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
