"""ASGI entry point: HTTP goes to Django, WebSockets to the events consumer.

Django is set up before the consumer modules are imported, because they
import models. HTTP bodies over BERTH_MAX_UPLOAD_BYTES are refused before
Django spools them (berth/bodylimit.py).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "berth.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from apps.containers.routing import websocket_urlpatterns  # noqa: E402
from apps.dashboard.routing import websocket_urlpatterns as dashboard_websockets  # noqa: E402
from berth.bodylimit import BodySizeLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodySizeLimit(django_asgi_app),
        # The origin check stops other sites from riding a user's session cookie.
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns + dashboard_websockets))
        ),
    }
)
