// The page's own Socket.IO client: Socket.IO protocol v5 over Engine.IO v4, WebSocket transport
// only, JSON parser only. Written for this project (no third-party code), so the page works from a
// fresh clone with no `npm ci` and no CDN: the hub serves this file from public/ like the page.
//
// It offers the part of `socket.io-client` 4.8's API that public/app.js uses, with the same
// behaviour (socket.io-client's lib/socket.ts and lib/manager.ts, engine.io-client's lib/socket.ts):
//
//   const socket = HubClient.io(url?, {auth, path, reconnection, reconnectionDelay,
//                                      reconnectionDelayMax, randomizationFactor, timeout});
//   socket.on/once/off(event, fn)    "connect", "connect_error" (Error with .data),
//                                    "disconnect" (reason, description), and the hub's events
//   socket.emit(event, ...args[, ack])   socket.timeout(ms).emit(..., (err, ...answer) => …)
//   socket.emitWithAck(event, ...args) / socket.timeout(ms).emitWithAck(...)  → Promise
//   socket.connected, socket.active, socket.recovered, socket.id, socket.connect(), socket.disconnect()
//   socket.io.on("reconnect_attempt" | "reconnect" | "reconnect_error" | "reconnect_failed" |
//                "open" | "close" | "error" | "ping", fn)
//   socket.io.reconnection(bool?)    socket.io.engine.close()    socket.io.engine.transport.name
//
// Wire (docs in /socket.io/ of the socket.io monorepo; README "The page's client"):
//   GET {path}/?EIO=4&transport=websocket (WebSocket), then the server's open packet 0{sid,
//   pingInterval, pingTimeout, ...}; every ping `2` is answered `3`; no ping within
//   pingInterval + pingTimeout closes the connection ("ping timeout").
//   Socket.IO packets travel as Engine.IO messages `4<packet>`: CONNECT `40{auth}` (on a reconnect
//   after a CONNECT answer that gave a pid: `{pid, offset, ...auth}`, connection state recovery),
//   EVENT `42[id]["name",...]`, ACK `43<id>[...]`, DISCONNECT `41`, CONNECT_ERROR `44{message,data}`.
//
// Not supported (the page needs none of it): HTTP long-polling and the upgrade, binary values
// (BINARY_EVENT/BINARY_ACK: a packet carrying them closes the connection as a parse error, and
// emitting an ArrayBuffer throws), the msgpack parser (a hub with HUB_PARSER=msgpack closes the
// connection at the JSON CONNECT; this client then reports a connect_error saying so), several
// namespaces on one connection (each io() call is its own connection), and retries/volatile/onAny.
"use strict";

(function () {
  // Engine.IO packet types (protocol v4).
  const EIO_OPEN = "0";
  const EIO_CLOSE = "1";
  const EIO_PING = "2";
  const EIO_PONG = "3";
  const EIO_MESSAGE = "4";
  const EIO_NOOP = "6";

  // Socket.IO packet types (protocol v5).
  const CONNECT = 0;
  const DISCONNECT = 1;
  const EVENT = 2;
  const ACK = 3;
  const CONNECT_ERROR = 4;
  const BINARY_EVENT = 5;
  const BINARY_ACK = 6;

  // Names the application may not emit (socket.io-client refuses them too; the server would
  // close the connection on them).
  const RESERVED_EVENTS = new Set([
    "connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener",
  ]);

  // socket.io-client's Manager defaults.
  const DEFAULTS = {
    path: "/socket.io",
    reconnection: true,
    reconnectionAttempts: Infinity,
    reconnectionDelay: 1000,
    reconnectionDelayMax: 5000,
    randomizationFactor: 0.5,
    timeout: 20000,
  };

  // What the page shows when a hub closes the connection at the CONNECT without answering it:
  // that is how a hub with HUB_PARSER=msgpack (like a Node server with the msgpack parser) meets
  // a JSON client.
  const CLOSED_AT_CONNECT =
    "the hub closed the connection without answering CONNECT (a hub started with " +
    "HUB_PARSER=msgpack does so: this client speaks the JSON parser only)";

  // ---- events --------------------------------------------------------------

  /** A minimal event emitter: listeners called in order, `once` removed before its call. */
  class Emitter {
    constructor() {
      this._listeners = new Map();
    }
    on(event, fn) {
      if (!this._listeners.has(event)) this._listeners.set(event, []);
      this._listeners.get(event).push(fn);
      return this;
    }
    once(event, fn) {
      const wrapper = (...args) => {
        this.off(event, wrapper);
        fn.apply(this, args);
      };
      wrapper.fn = fn;
      return this.on(event, wrapper);
    }
    off(event, fn) {
      if (event === undefined) {
        this._listeners.clear();
        return this;
      }
      const list = this._listeners.get(event);
      if (!list) return this;
      if (fn === undefined) {
        this._listeners.delete(event);
        return this;
      }
      const i = list.findIndex((l) => l === fn || l.fn === fn);
      if (i >= 0) list.splice(i, 1);
      return this;
    }
    listeners(event) {
      return (this._listeners.get(event) || []).slice();
    }
    hasListeners(event) {
      return this.listeners(event).length > 0;
    }
    // Named emitReserved as in socket.io-client: on a Socket, `emit` sends to the server.
    emitReserved(event, ...args) {
      for (const fn of this.listeners(event)) fn.apply(this, args);
      return this;
    }
  }

  /** Subscribes `fn` to `event` of `emitter`; returns the function that unsubscribes it. */
  function subscribe(emitter, event, fn) {
    emitter.on(event, fn);
    return () => emitter.off(event, fn);
  }

  // ---- Socket.IO packets (JSON parser) ---------------------------------------

  function hasBinary(value, depth = 0) {
    if (depth > 100 || value === null || typeof value !== "object") return false;
    if (value instanceof ArrayBuffer || ArrayBuffer.isView(value) ||
        (typeof Blob !== "undefined" && value instanceof Blob)) {
      return true;
    }
    if (typeof value.toJSON === "function" && !Array.isArray(value)) return false;
    return Object.values(value).some((v) => hasBinary(v, depth + 1));
  }

  /** `<type>[<nsp>,][<ack id>][<JSON>]`: the text of one Socket.IO packet. */
  function encodePacket(packet) {
    if (hasBinary(packet.data)) {
      throw new Error("binary values are not supported by this client (JSON parser only)");
    }
    let text = String(packet.type);
    if (packet.nsp && packet.nsp !== "/") text += packet.nsp + ",";
    if (packet.id !== undefined) text += String(packet.id);
    if (packet.data !== undefined) text += JSON.stringify(packet.data);
    return text;
  }

  function isPlainObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  /**
   * One Socket.IO packet from the text of an Engine.IO message: {type, nsp, id?, data?}. Throws
   * an Error on anything socket.io-parser's decoder refuses, and on binary packets.
   */
  function decodePacket(text) {
    let i = 0;
    const type = Number(text.charAt(0));
    if (!/^[0-6]$/.test(text.charAt(0))) throw new Error("unknown packet type " + text.charAt(0));
    i += 1;
    if (type === BINARY_EVENT || type === BINARY_ACK) {
      throw new Error("binary packets are not supported by this client (JSON parser only)");
    }
    let nsp = "/";
    if (text.charAt(i) === "/") {
      const comma = text.indexOf(",", i);
      const end = comma === -1 ? text.length : comma;
      nsp = text.slice(i, end);
      i = comma === -1 ? text.length : comma + 1;
    }
    let id;
    const digits = /^\d+/.exec(text.slice(i));
    if (digits) {
      id = Number(digits[0]);
      if (!Number.isSafeInteger(id)) throw new Error("invalid ack id");
      i += digits[0].length;
    }
    const packet = { type, nsp };
    if (id !== undefined) packet.id = id;
    if (i < text.length) {
      let data;
      try {
        data = JSON.parse(text.slice(i));
      } catch (_) {
        throw new Error("invalid payload");
      }
      packet.data = data;
    }
    // Without a payload every type is taken (as socket.io-parser takes `42`); the socket then
    // sees a CONNECT answer without sid (a connect_error) or an event without a name.
    if (!("data" in packet)) return packet;
    const data = packet.data;
    const valid = {
      [CONNECT]: () => isPlainObject(data),
      [DISCONNECT]: () => data === undefined,
      [CONNECT_ERROR]: () => typeof data === "string" || isPlainObject(data),
      [EVENT]: () => Array.isArray(data) && (typeof data[0] === "number" ||
        (typeof data[0] === "string" && !RESERVED_EVENTS.has(data[0]))),
      [ACK]: () => Array.isArray(data),
    }[type];
    if (!valid()) throw new Error("invalid payload");
    return packet;
  }

  // ---- Engine.IO over WebSocket ----------------------------------------------

  /**
   * One Engine.IO connection over WebSocket. Events: "open" (after the server's open packet),
   * "data" (text of a message packet), "ping", "error" (Error; only before "open"),
   * "close" (reason, description; only after "open").
   */
  class Engine extends Emitter {
    constructor(url) {
      super();
      this.readyState = "opening";
      this.transport = { name: "websocket" };
      this.id = null;
      this._pingTimer = null;
      this._ws = new WebSocket(url);
      this._ws.binaryType = "arraybuffer";
      this._ws.onmessage = (event) => this._onMessage(event.data);
      this._ws.onerror = () => {
        // A browser tells a script nothing about why: say where. After the handshake it is a
        // "transport error", as engine.io-client names it.
        if (this.readyState === "opening") this._fail(new Error("websocket error (" + url + ")"));
        else this._onClose("transport error", new Error("websocket error"));
      };
      this._ws.onclose = (event) => {
        if (this.readyState === "opening") {
          this._fail(new Error("websocket closed before the handshake (code " + event.code + ")"));
        } else {
          this._onClose("transport close", event);
        }
      };
    }

    _fail(err) {
      this.readyState = "closed";
      this._detach();
      this.emitReserved("error", err);
    }

    _onMessage(data) {
      if (typeof data !== "string") {
        // A binary frame is a binary Socket.IO attachment (or msgpack): not spoken here.
        this._onClose("parse error", new Error("binary frame: binary packets are not supported"));
        return;
      }
      const type = data.charAt(0);
      const payload = data.slice(1);
      if (this.readyState === "opening") {
        if (type !== EIO_OPEN) {
          this._fail(new Error("the first packet was not the open packet"));
          return;
        }
        let open;
        try {
          open = JSON.parse(payload);
        } catch (_) {
          open = null;
        }
        if (!isPlainObject(open) || typeof open.sid !== "string" ||
            !Number.isFinite(open.pingInterval) || !Number.isFinite(open.pingTimeout)) {
          this._fail(new Error("invalid open packet"));
          return;
        }
        this.id = open.sid;
        this._pingInterval = open.pingInterval;
        this._pingTimeout = open.pingTimeout;
        this.readyState = "open";
        this._armPingTimer();
        this.emitReserved("open");
        return;
      }
      if (this.readyState !== "open") return;
      switch (type) {
        case EIO_PING:
          // Only a ping resets the timer, as in engine.io-client.
          this._armPingTimer();
          this._send(EIO_PONG);
          this.emitReserved("ping");
          break;
        case EIO_MESSAGE:
          this.emitReserved("data", payload);
          break;
        case EIO_CLOSE:
          this._onClose("transport close");
          break;
        case EIO_NOOP:
          break;
        default:
          this._onClose("parse error", new Error("unknown Engine.IO packet type " + type));
      }
    }

    _armPingTimer() {
      clearTimeout(this._pingTimer);
      this._pingTimer = setTimeout(() => this._onClose("ping timeout"),
        this._pingInterval + this._pingTimeout);
    }

    _send(text) {
      if (this._ws.readyState === WebSocket.OPEN) this._ws.send(text);
    }

    /** Sends the text of one Socket.IO packet as an Engine.IO message. */
    write(text) {
      if (this.readyState === "open") this._send(EIO_MESSAGE + text);
    }

    /** Closes the connection ("forced close"), as engine.io-client's `close()`. */
    close() {
      if (this.readyState === "opening") {
        this.readyState = "closed";
        this._detach();
        return this;
      }
      this._onClose("forced close");
      return this;
    }

    _detach() {
      clearTimeout(this._pingTimer);
      this._ws.onmessage = this._ws.onerror = this._ws.onclose = null;
      try {
        this._ws.close();
      } catch (_) {
        // Already closed.
      }
    }

    _onClose(reason, description) {
      if (this.readyState !== "open") return;
      this.readyState = "closed";
      this._detach();
      this.emitReserved("close", reason, description);
    }
  }

  // ---- Manager: the connection and its reconnection --------------------------

  /** Exponential backoff with jitter, as socket.io-client's (backo2). */
  class Backoff {
    constructor(min, max, jitter) {
      this.min = min;
      this.max = max;
      this.jitter = jitter > 0 && jitter <= 1 ? jitter : 0;
      this.attempts = 0;
    }
    duration() {
      let ms = this.min * Math.pow(2, this.attempts++);
      if (this.jitter) {
        const deviation = Math.floor(Math.random() * this.jitter * ms);
        ms = Math.random() < 0.5 ? ms - deviation : ms + deviation;
      }
      return Math.min(ms, this.max) | 0;
    }
    reset() {
      this.attempts = 0;
    }
  }

  class Manager extends Emitter {
    constructor(uri, opts) {
      super();
      this.uri = uri;
      this.opts = opts;
      this._reconnection = opts.reconnection !== false;
      this._reconnectionAttempts = opts.reconnectionAttempts;
      this.backoff = new Backoff(opts.reconnectionDelay, opts.reconnectionDelayMax,
        opts.randomizationFactor);
      this._timeout = opts.timeout;
      this._readyState = "closed";
      this._reconnecting = false;
      this.skipReconnect = false;
      this.engine = null;
      this.nsps = {};
      this.subs = [];
    }

    /** Getter (no argument) or setter; switching it off also stops a pending retry. */
    reconnection(v) {
      if (!arguments.length) return this._reconnection;
      this._reconnection = Boolean(v);
      if (!v) this.skipReconnect = true;
      return this;
    }

    _maybeReconnectOnOpen() {
      // Only the first failed attempt starts the loop; later ones come from reconnect().
      if (!this._reconnecting && this._reconnection && this.backoff.attempts === 0) this.reconnect();
    }

    /** Opens a new Engine.IO connection; `fn(err?)` when it opened or failed. */
    open(fn) {
      if (this._readyState.indexOf("open") !== -1) return this;
      const engine = new Engine(this.uri);
      this.engine = engine;
      this._readyState = "opening";
      this.skipReconnect = false;
      const onError = (err) => {
        this._cleanup();
        this._readyState = "closed";
        this.emitReserved("error", err);
        if (fn) fn(err);
        else this._maybeReconnectOnOpen();
      };
      const openSub = subscribe(engine, "open", () => {
        this._onopen();
        if (fn) fn();
      });
      const errorSub = subscribe(engine, "error", onError);
      if (this._timeout !== false) {
        const timer = setTimeout(() => {
          openSub();
          onError(new Error("timeout"));
          engine.close();
        }, this._timeout);
        this.subs.push(() => clearTimeout(timer));
      }
      this.subs.push(openSub, errorSub);
      return this;
    }

    connect(fn) {
      return this.open(fn);
    }

    _onopen() {
      this._cleanup();
      this._readyState = "open";
      this.emitReserved("open");
      const engine = this.engine;
      this.subs.push(
        subscribe(engine, "ping", () => this.emitReserved("ping")),
        subscribe(engine, "data", (data) => this._ondata(data)),
        subscribe(engine, "close", (reason, description) => this._onclose(reason, description)),
      );
    }

    _ondata(text) {
      let packet;
      try {
        packet = decodePacket(text);
      } catch (err) {
        this._onclose("parse error", err);
        return;
      }
      // Outside the try: an exception in an application's listener is its own, not a parse error.
      this.emitReserved("packet", packet);
    }

    socket(nsp, opts) {
      let socket = this.nsps[nsp];
      if (!socket) {
        socket = new Socket(this, nsp, opts);
        this.nsps[nsp] = socket;
      } else if (!socket.active) {
        socket.connect();
      }
      return socket;
    }

    /** A socket left: the connection closes once no socket of it is active. */
    _destroy() {
      for (const nsp of Object.keys(this.nsps)) {
        if (this.nsps[nsp].active) return;
      }
      this._close();
    }

    _packet(packet) {
      if (this.engine) this.engine.write(encodePacket(packet));
    }

    _cleanup() {
      this.subs.forEach((unsubscribe) => unsubscribe());
      this.subs.length = 0;
    }

    _close() {
      this.skipReconnect = true;
      this._reconnecting = false;
      this._onclose("forced close");
    }

    disconnect() {
      return this._close();
    }

    _onclose(reason, description) {
      this._cleanup();
      if (this.engine) this.engine.close();
      this.backoff.reset();
      this._readyState = "closed";
      this.emitReserved("close", reason, description);
      if (this._reconnection && !this.skipReconnect) this.reconnect();
    }

    reconnect() {
      if (this._reconnecting || this.skipReconnect) return this;
      if (this.backoff.attempts >= this._reconnectionAttempts) {
        this.backoff.reset();
        this.emitReserved("reconnect_failed");
        this._reconnecting = false;
        return this;
      }
      const delay = this.backoff.duration();
      this._reconnecting = true;
      const timer = setTimeout(() => {
        if (this.skipReconnect) return;
        this.emitReserved("reconnect_attempt", this.backoff.attempts);
        // A listener may have stopped it.
        if (this.skipReconnect) return;
        this.open((err) => {
          if (err) {
            this._reconnecting = false;
            this.reconnect();
            this.emitReserved("reconnect_error", err);
          } else {
            const attempt = this.backoff.attempts;
            this._reconnecting = false;
            this.backoff.reset();
            this.emitReserved("reconnect", attempt);
          }
        });
      }, delay);
      this.subs.push(() => clearTimeout(timer));
      return this;
    }
  }

  // ---- Socket: one namespace ------------------------------------------------

  class Socket extends Emitter {
    constructor(io, nsp, opts) {
      super();
      this.io = io;
      this.nsp = nsp;
      this.connected = false;
      this.recovered = false;
      this.id = undefined;
      this.auth = opts.auth;
      this.receiveBuffer = [];
      this.sendBuffer = [];
      this.ids = 0;
      this.acks = {};
      this.flags = {};
      this.subs = undefined;
      // Connection state recovery: the pid of the last CONNECT answer and the offset of the last
      // event received with it.
      this._pid = undefined;
      this._lastOffset = undefined;
      this._awaitingConnectAnswer = false;
      this.open();
    }

    get disconnected() {
      return !this.connected;
    }

    /** True while the socket wants to be connected (it reconnects); false after disconnect(). */
    get active() {
      return Boolean(this.subs);
    }

    _subEvents() {
      if (this.subs) return;
      const io = this.io;
      this.subs = [
        subscribe(io, "open", () => this._onopen()),
        subscribe(io, "packet", (packet) => this._onpacket(packet)),
        subscribe(io, "error", (err) => this._onerror(err)),
        subscribe(io, "close", (reason, description) => this._onclose(reason, description)),
      ];
    }

    connect() {
      if (this.connected) return this;
      this._subEvents();
      if (!this.io._reconnecting) this.io.open();
      if (this.io._readyState === "open") this._onopen();
      return this;
    }

    open() {
      return this.connect();
    }

    /**
     * Sends an event. A function as the last argument is the acknowledgement callback: called with
     * the server's answer, or (after timeout(ms)) with (Error "operation has timed out") or
     * (null, ...answer). Sent at once when connected, else buffered until the next connect.
     */
    emit(event, ...args) {
      if (RESERVED_EVENTS.has(event)) throw new Error('"' + event + '" is a reserved event name');
      const data = [event, ...args];
      const packet = { type: EVENT, data };
      if (typeof data[data.length - 1] === "function") {
        const id = this.ids++;
        this._registerAckCallback(id, data.pop());
        packet.id = id;
      }
      if (this.connected) this._packet(packet);
      else this.sendBuffer.push(packet);
      this.flags = {};
      return this;
    }

    send(...args) {
      return this.emit("message", ...args);
    }

    _registerAckCallback(id, ack) {
      const timeout = this.flags.timeout;
      if (timeout === undefined) {
        this.acks[id] = ack;
        return;
      }
      const timer = setTimeout(() => {
        delete this.acks[id];
        this.sendBuffer = this.sendBuffer.filter((packet) => packet.id !== id);
        ack.call(this, new Error("operation has timed out"));
      }, timeout);
      const fn = (...args) => {
        clearTimeout(timer);
        ack.apply(this, args);
      };
      fn.withError = true;
      this.acks[id] = fn;
    }

    /** A Promise of the acknowledgement's (first) value; rejected on timeout or disconnect. */
    emitWithAck(event, ...args) {
      return new Promise((resolve, reject) => {
        const fn = (err, answer) => (err ? reject(err) : resolve(answer));
        fn.withError = true;
        this.emit(event, ...args, fn);
      });
    }

    /** The next emit's acknowledgement waits at most `ms` milliseconds. */
    timeout(ms) {
      this.flags.timeout = ms;
      return this;
    }

    _packet(packet) {
      packet.nsp = this.nsp;
      this.io._packet(packet);
    }

    _onopen() {
      const send = (data) => this._sendConnectPacket(data);
      if (typeof this.auth === "function") this.auth(send);
      else send(this.auth);
    }

    _sendConnectPacket(data) {
      this._awaitingConnectAnswer = true;
      this._packet({
        type: CONNECT,
        data: this._pid ? Object.assign({ pid: this._pid, offset: this._lastOffset }, data) : data,
      });
    }

    _onerror(err) {
      if (!this.connected) this.emitReserved("connect_error", err);
    }

    _onclose(reason, description) {
      const wasConnected = this.connected;
      const closedAtConnect = !wasConnected && this._awaitingConnectAnswer && reason === "transport close";
      this.connected = false;
      this._awaitingConnectAnswer = false;
      this.id = undefined;
      if (closedAtConnect) {
        // Not in socket.io-client (it reports "disconnect" "transport close" here): the page can
        // say why it does not connect, instead of retrying in silence.
        this.emitReserved("connect_error", new Error(CLOSED_AT_CONNECT));
      } else {
        this.emitReserved("disconnect", reason, description);
      }
      this._clearAcks();
    }

    /** Acks with an error-aware callback get "socket has been disconnected" (unless still buffered). */
    _clearAcks() {
      for (const id of Object.keys(this.acks)) {
        if (this.sendBuffer.some((packet) => String(packet.id) === id)) continue;
        const ack = this.acks[id];
        delete this.acks[id];
        if (ack.withError) ack.call(this, new Error("socket has been disconnected"));
      }
    }

    _onpacket(packet) {
      if (packet.nsp !== this.nsp) return;
      switch (packet.type) {
        case CONNECT:
          this._awaitingConnectAnswer = false;
          if (packet.data && typeof packet.data.sid === "string" && packet.data.sid) {
            this._onconnect(packet.data.sid, packet.data.pid);
          } else {
            this.emitReserved("connect_error", new Error("the CONNECT answer carries no sid"));
          }
          break;
        case EVENT:
          this._onevent(packet);
          break;
        case ACK:
          this._onack(packet);
          break;
        case DISCONNECT:
          this._destroy();
          this._onclose("io server disconnect");
          break;
        case CONNECT_ERROR: {
          // A refused CONNECT (middleware): the socket is not retried, as in socket.io-client.
          this._awaitingConnectAnswer = false;
          this._destroy();
          const data = packet.data;
          const err = new Error(typeof data === "string" ? data : String(data.message));
          if (isPlainObject(data)) err.data = data.data;
          this.emitReserved("connect_error", err);
          break;
        }
      }
    }

    _onevent(packet) {
      const args = packet.data || [];
      if (packet.id !== undefined) args.push(this._ack(packet.id));
      // Before the CONNECT answer (a recovered session's missed events come first) they wait,
      // and are handed over just before "connect".
      if (this.connected) this._emitEvent(args);
      else this.receiveBuffer.push(args);
    }

    _emitEvent(args) {
      this.emitReserved(...args);
      // The offset of connection state recovery is the last argument of every event sent with
      // one; socket.io-client takes any last string argument once a pid is known, and so do we.
      if (this._pid && args.length && typeof args[args.length - 1] === "string") {
        this._lastOffset = args[args.length - 1];
      }
    }

    _ack(id) {
      let sent = false;
      return (...args) => {
        if (sent) return;
        sent = true;
        this._packet({ type: ACK, id, data: args });
      };
    }

    _onack(packet) {
      const ack = this.acks[packet.id];
      if (typeof ack !== "function") return;
      delete this.acks[packet.id];
      const args = packet.data;
      if (ack.withError) args.unshift(null);
      ack.apply(this, args);
    }

    _onconnect(id, pid) {
      this.id = id;
      this.recovered = Boolean(pid) && this._pid === pid;
      this._pid = pid;
      this.connected = true;
      const received = this.receiveBuffer;
      this.receiveBuffer = [];
      received.forEach((args) => this._emitEvent(args));
      const toSend = this.sendBuffer;
      this.sendBuffer = [];
      toSend.forEach((packet) => this._packet(packet));
      this.emitReserved("connect");
    }

    _destroy() {
      if (this.subs) {
        this.subs.forEach((unsubscribe) => unsubscribe());
        this.subs = undefined;
      }
      this.io._destroy(this);
    }

    /** Leaves the server (DISCONNECT when connected) and stops reconnecting. */
    disconnect() {
      if (this.connected) this._packet({ type: DISCONNECT });
      this._destroy();
      if (this.connected) this._onclose("io client disconnect");
      return this;
    }

    close() {
      return this.disconnect();
    }
  }

  /**
   * A socket on the namespace named by `url`'s path ("/" when none) of the hub at `url` (this
   * page's origin when omitted). Options as socket.io-client's (see the top of this file); a
   * `transports` list must include "websocket", the one transport spoken here.
   */
  function io(url, opts) {
    if (url !== null && typeof url === "object") {
      opts = url;
      url = undefined;
    }
    opts = Object.assign({}, DEFAULTS, opts || {});
    if (Array.isArray(opts.transports) && !opts.transports.includes("websocket")) {
      throw new Error("this client speaks the WebSocket transport only");
    }
    const target = new URL(url === undefined ? window.location.href : url, window.location.href);
    const scheme = target.protocol === "https:" || target.protocol === "wss:" ? "wss:" : "ws:";
    const path = opts.path.replace(/\/$/, "") + "/";
    const engineUrl = scheme + "//" + target.host + path + "?EIO=4&transport=websocket";
    const nsp = url === undefined || target.pathname === "" ? "/" : target.pathname;
    return new Manager(engineUrl, opts).socket(nsp, opts);
  }

  window.HubClient = { io, protocol: 5, decodePacket, encodePacket };
})();
