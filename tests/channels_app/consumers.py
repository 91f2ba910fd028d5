"""The guide's chat consumer, exactly as the guide writes it (seeds/002, "WebSocket
Consumer"), plus a JSON and a sync consumer doing the same through the same layer."""

# fmt: off
# consumers.py
import json

from asgiref.sync import async_to_sync
from channels.generic.websocket import (
    AsyncWebsocketConsumer,
    JsonWebsocketConsumer,
    WebsocketConsumer,
)


class ChatConsumer(AsyncWebsocketConsumer):
    async def connect(self):
        self.room_name = self.scope['url_route']['kwargs']['room_name']
        self.room_group_name = f'chat_{self.room_name}'

        # Join room group
        await self.channel_layer.group_add(
            self.room_group_name,
            self.channel_name
        )

        await self.accept()

    async def disconnect(self, close_code):
        # Leave room group
        await self.channel_layer.group_discard(
            self.room_group_name,
            self.channel_name
        )

    async def receive(self, text_data):
        data = json.loads(text_data)
        message = data['message']

        # Send to room group
        await self.channel_layer.group_send(
            self.room_group_name,
            {
                'type': 'chat_message',
                'message': message,
                'sender': self.scope['user'].username,
            }
        )

    async def chat_message(self, event):
        # Send message to WebSocket
        await self.send(text_data=json.dumps({
            'message': event['message'],
            'sender': event['sender'],
        }))


class JsonChatConsumer(JsonWebsocketConsumer):
    """The same room through JsonWebsocketConsumer (a sync consumer: async_to_sync)."""

    def connect(self):
        self.group = f"json_{self.scope['url_route']['kwargs']['room_name']}"
        async_to_sync(self.channel_layer.group_add)(self.group, self.channel_name)
        self.accept()

    def disconnect(self, close_code):
        async_to_sync(self.channel_layer.group_discard)(self.group, self.channel_name)

    def receive_json(self, content):
        async_to_sync(self.channel_layer.group_send)(
            self.group, {"type": "chat.message", "message": content["message"]}
        )

    def chat_message(self, event):
        self.send_json({"message": event["message"]})


class EchoToChannelConsumer(WebsocketConsumer):
    """A sync consumer that sends to a named channel and answers with what arrives."""

    def connect(self):
        self.accept()

    def receive(self, text_data=None, bytes_data=None):
        async_to_sync(self.channel_layer.send)(
            self.channel_name, {"type": "echo.back", "text": text_data}
        )

    def echo_back(self, event):
        self.send(text_data=event["text"])
