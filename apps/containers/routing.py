from django.urls import path

from apps.containers.consumers import ContainerEventsConsumer, ExecTerminalConsumer

websocket_urlpatterns = [
    path("ws/events/", ContainerEventsConsumer.as_asgi()),
    path("ws/execs/<str:exec_id>/", ExecTerminalConsumer.as_asgi()),
]
