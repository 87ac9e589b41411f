import { Logger } from "@nestjs/common";
import {
  OnGatewayConnection,
  OnGatewayDisconnect,
  WebSocketGateway,
  WebSocketServer,
} from "@nestjs/websockets";
import { Server, Socket } from "socket.io";

export interface Notification {
  id: string;
  title: string;
  body: string;
  timestamp: number;
}

@WebSocketGateway({ cors: { origin: "*" } })
export class NotificationsGateway implements OnGatewayConnection, OnGatewayDisconnect {
  private readonly logger = new Logger(NotificationsGateway.name);

  @WebSocketServer()
  server: Server;

  // Debug level only: benchmarks open thousands of connections
  // (and main.ts enables only error/warn logs).
  handleConnection(client: Socket): void {
    this.logger.debug(`connected ${client.id}`);
  }

  handleDisconnect(client: Socket): void {
    this.logger.debug(`disconnected ${client.id}`);
  }

  broadcast(notification: Notification): void {
    this.server.emit("notification", notification);
  }
}
