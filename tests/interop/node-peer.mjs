// A Node peer, as the original stack runs it: socket.io 4.8 with @socket.io/redis-streams-adapter 0.3,
// connection state recovery on (2 minutes, middlewares run on recovered sockets too), on the stream
// given. Written from the adapter's documented usage, for the interop tests.
//
//   node node-peer.mjs <port> <redis url> <stream name>
//   (redis+cluster://h:p[,h:p…]: node-redis's cluster client on those seed nodes, as the adapter supports)
//
// A middleware sets `socket.data.seen` (and `socket.data.user` from the CONNECT auth), as an app's
// authentication would; a fresh socket joins the room named by `auth.room`.
//   POST /emit            body → io.emit("notification", body)
//   POST /emit?to=R       io.to(R); ?except=R: io.except(R); ?volatile=1: io.volatile;
//                         ?binary=1: the body as a Buffer
//   POST /disconnect?to=R io.in(R).disconnectSockets() (every socket without `to`); &close=1: (true)
//   GET  /sockets         [{id, recovered, data, rooms}] of the connected sockets

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createClient, createCluster } from "redis";
import { createAdapter } from "@socket.io/redis-streams-adapter";

const [port, redisUrl, streamName] = process.argv.slice(2);
const redis = redisUrl.startsWith("redis+cluster://")
  ? createCluster({
      rootNodes: redisUrl
        .slice("redis+cluster://".length)
        .split(",")
        .map((host) => ({ url: `redis://${host}` })),
    })
  : createClient({ url: redisUrl });
await redis.connect();

const http = createServer((req, res) => {
  const url = new URL(req.url, "http://peer");
  if (req.method === "GET" && url.pathname === "/sockets") {
    const sockets = [...io.of("/").sockets.values()].map((s) => ({
      id: s.id,
      recovered: s.recovered,
      data: s.data,
      rooms: [...s.rooms],
    }));
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(sockets));
    return;
  }
  if (req.method === "POST" && url.pathname === "/disconnect") {
    // io.in(R).disconnectSockets(close): ?to=R (every socket without it), ?close=1
    const target = url.searchParams.has("to") ? io.in(url.searchParams.get("to")) : io;
    target.disconnectSockets(url.searchParams.has("close"));
    res.writeHead(201).end();
    return;
  }
  if (req.method !== "POST" || url.pathname !== "/emit") {
    res.writeHead(404).end();
    return;
  }
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    let target = io;
    if (url.searchParams.has("to")) target = target.to(url.searchParams.get("to"));
    if (url.searchParams.has("except")) target = target.except(url.searchParams.get("except"));
    if (url.searchParams.has("volatile")) target = target.volatile;
    const payload = url.searchParams.has("binary") ? Buffer.from(body) : JSON.parse(body);
    target.emit("notification", payload);
    res.writeHead(201).end();
  });
});
const io = new Server(http, {
  adapter: createAdapter(redis, { streamName, maxLen: 10_000 }),
  connectionStateRecovery: { maxDisconnectionDuration: 120_000, skipMiddlewares: false },
});
io.use((socket, next) => {
  socket.data.seen = true;
  if (socket.handshake.auth.user) socket.data.user = socket.handshake.auth.user;
  next();
});
io.on("connection", (socket) => {
  if (!socket.recovered && socket.handshake.auth.room) socket.join(socket.handshake.auth.room);
});
http.listen(Number(port), "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${http.address().port}`));
