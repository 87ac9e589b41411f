import { INestApplicationContext } from "@nestjs/common";
import { IoAdapter } from "@nestjs/platform-socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { createClient } from "redis";
import { Server, ServerOptions } from "socket.io";

export class RedisIoAdapter extends IoAdapter {
  private redisClient: ReturnType<typeof createClient>;

  constructor(app: INestApplicationContext) {
    super(app);
  }

  async connectToRedis(): Promise<void> {
    const url = process.env.REDIS_URL;
    if (!url) {
      console.error("REDIS_URL is required (e.g. REDIS_URL=redis://127.0.0.1:6379)");
      process.exit(1);
    }
    this.redisClient = createClient({ url });
    this.redisClient.on("error", (err) => console.error("redis error:", err));
    await this.redisClient.connect();
  }

  createIOServer(port: number, options?: ServerOptions): Server {
    const server: Server = super.createIOServer(port, {
      ...options,
      connectionStateRecovery: {
        maxDisconnectionDuration: 2 * 60 * 1000,
        skipMiddlewares: true,
      },
    });
    server.adapter(
      createAdapter(this.redisClient, {
        streamName: process.env.STREAM_KEY ?? "socket.io",
        maxLen: 10000,
      }),
    );
    return server;
  }
}
