// A Node peer instrumented with the admin UI's server side, as its README shows: socket.io 4.8 with
// @socket.io/redis-streams-adapter 0.3 on the stream given, and `instrument(io, …)` of
// @socket.io/admin-ui 0.5 with basic authentication, production mode and a fixed server id.
//
//   node admin-peer.mjs <port> <redis url> <stream name> <server id> <username> <bcrypt hash>

import { createServer } from "node:http";
import { Server } from "socket.io";
import { createClient } from "redis";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { instrument } from "@socket.io/admin-ui";

const [port, redisUrl, streamName, serverId, username, password] = process.argv.slice(2);
const redis = createClient({ url: redisUrl });
await redis.connect();

const http = createServer();
const io = new Server(http, {
  adapter: createAdapter(redis, { streamName, maxLen: 10_000 }),
  connectionStateRecovery: { maxDisconnectionDuration: 120_000 },
});
instrument(io, { auth: { type: "basic", username, password }, mode: "production", serverId });
http.listen(Number(port), "127.0.0.1");
