from django.urls import path

from apps.containers.consumers import ContainerEventsConsumer

websocket_urlpatterns = [
    path("ws/events/", ContainerEventsConsumer.as_asgi()),
]
