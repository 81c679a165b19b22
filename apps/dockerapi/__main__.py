"""``python -m apps.dockerapi [--tcp ADDR] [--unix PATH] [--web-url URL]``: serve the Docker API.

Defaults come from the settings BERTH_DOCKER_TCP and BERTH_DOCKER_SOCKET; an
value of "off" (or "") turns that listener off.
"""

import argparse
import asyncio
import logging
import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "berth.settings")
    import django

    django.setup()
    from django.conf import settings

    from apps.dockerapi.server import serve

    parser = argparse.ArgumentParser(prog="python -m apps.dockerapi")
    parser.add_argument(
        "--tcp", default=settings.BERTH_DOCKER_TCP, help='host:port, "off" for none'
    )
    parser.add_argument("--unix", default=settings.BERTH_DOCKER_SOCKET, help='path, "off" for none')
    parser.add_argument(
        "--web-url",
        default="http://127.0.0.1:8000",
        help="where agents reach the control plane's web server (archive transfers); "
        "BERTH_PUBLIC_URL wins when set",
    )
    args = parser.parse_args()
    logging.getLogger("apps.dockerapi").setLevel(settings.LOG_LEVEL)
    web_url = settings.BERTH_PUBLIC_URL or args.web_url
    asyncio.run(serve(_address(args.tcp), _address(args.unix), web_url))


def _address(value: str) -> str | None:
    return None if value.strip().lower() in ("", "off") else value.strip()


if __name__ == "__main__":
    main()
