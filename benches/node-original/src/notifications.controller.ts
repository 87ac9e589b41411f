import { randomUUID } from "node:crypto";
import { Body, Controller, HttpCode, Post } from "@nestjs/common";
import { Notification, NotificationsGateway } from "./notifications.gateway";

@Controller("notifications")
export class NotificationsController {
  constructor(private readonly gateway: NotificationsGateway) {}

  @Post("notify")
  @HttpCode(201)
  notify(@Body() body: { title?: string; body?: string }): { id: string } {
    const notification: Notification = {
      id: randomUUID(),
      title: body?.title ?? "Notification",
      body: body?.body ?? "Hello",
      timestamp: Date.now(),
    };
    this.gateway.broadcast(notification);
    return { id: notification.id };
  }
}
