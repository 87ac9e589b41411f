"""The python-socketio client against the hub: connect over one transport, publish with an
acknowledged `notify` event, receive the notification. Prints what happened as one JSON line.

    python python_client.py <hub url> <polling|websocket>
"""

import json
import sys
import threading

import socketio

url, transport = sys.argv[1], sys.argv[2]
client = socketio.Client(reconnection=False)
received = []
arrived = threading.Event()


@client.on("notification")
def on_notification(notification, offset):
    received.append({"notification": notification, "offset": offset})
    arrived.set()


client.connect(url, transports=[transport], wait_timeout=10)
ack = client.call("notify", {"title": "from python", "body": transport}, timeout=10)
if not arrived.wait(10):
    sys.exit("no notification arrived within 10 s")
print(json.dumps({"transport": client.transport(), "ack": ack, "received": received}))
client.disconnect()
