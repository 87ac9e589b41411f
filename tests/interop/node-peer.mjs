// A Node peer, as the original stack runs it: socket.io 4.8 with @socket.io/redis-streams-adapter 0.3,
// connection state recovery on (2 minutes), on the stream given. Written from the adapter's
// documented usage, for the interop tests; `POST /emit` with a JSON body does io.emit("notification", body).
//
//   node node-peer.mjs <port> <redis url> <stream name>

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-streams-adapter";

const [port, redisUrl, streamName] = process.argv.slice(2);
const redis = createClient({ url: redisUrl });
await redis.connect();

const http = createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/emit") {
    res.writeHead(404).end();
    return;
  }
  let body = "";
  req.on("data", (chunk) => (body += chunk));
  req.on("end", () => {
    io.emit("notification", JSON.parse(body));
    res.writeHead(201).end();
  });
});
const io = new Server(http, {
  adapter: createAdapter(redis, { streamName, maxLen: 10_000 }),
  connectionStateRecovery: { maxDisconnectionDuration: 120_000 },
});
http.listen(Number(port), "127.0.0.1", () => console.log(`listening on http://127.0.0.1:${http.address().port}`));
