"""Django settings for Berth.

Everything that differs between a laptop and a server is read from the
environment through the typed readers in ``berth.env``; the defaults are the
safe ones (DEBUG off, local hosts only, a private generated SECRET_KEY).
"""

from __future__ import annotations

from pathlib import Path

import dj_database_url

from berth.env import env_bool, env_int, env_list, env_str
from berth.secret_key import load_or_create_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("BERTH_VAR_DIR", str(BASE_DIR / "var"))).resolve()

DEBUG = env_bool("BERTH_DEBUG", env_bool("DEBUG", False))
SECRET_KEY = env_str("SECRET_KEY", "") or load_or_create_secret_key(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("BERTH_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("BERTH_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files, served locally (no CDN)
    "channels",
    "apps.accounts",
    "apps.teams",
    "apps.hosts",
    "apps.images",
    "apps.operations",
    "apps.containers",
    "apps.volumes",
    "apps.networks",
    "apps.dashboard",
    "apps.audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "apps.audit.context.AuditContextMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "berth.urls"
WSGI_APPLICATION = "berth.wsgi.application"
ASGI_APPLICATION = "berth.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _database() -> dict:
    """PostgreSQL (or anything dj-database-url knows) via DATABASE_URL, else local SQLite.

    The SQLite defaults matter because the web process and the Celery worker
    write concurrently: WAL plus IMMEDIATE transactions and a busy timeout turn
    "database is locked" errors into short waits.
    """
    # Connections are kept (seconds): the Docker API and the workers make many short
    # queries from the same threads, and opening one costs more than most queries.
    conn_max_age = env_int("BERTH_DB_CONN_MAX_AGE", 60)
    url = env_str("DATABASE_URL", "")
    if url:
        return dj_database_url.parse(url, conn_max_age=conn_max_age)
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": VAR_DIR / "db.sqlite3",
        "CONN_MAX_AGE": conn_max_age,
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        },
    }


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["apps.accounts.throttle.ThrottledModelBackend"]
# Failed password logins per username within the window before it is locked
# (per client address: four times as many).
BERTH_LOGIN_MAX_FAILURES = env_int("BERTH_LOGIN_MAX_FAILURES", 5, minimum=1)
BERTH_LOGIN_WINDOW = env_int("BERTH_LOGIN_WINDOW", 900, minimum=1)
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("BERTH_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns on every start otherwise
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Serve straight from the source folders too, so a fresh checkout works
# without a collectstatic step.
WHITENOISE_USE_FINDERS = True

# HTTPS hardening is opt-in because the default install listens on localhost
# over plain HTTP; behind a TLS proxy set BERTH_HTTPS=1.
BERTH_HTTPS = env_bool("BERTH_HTTPS", False)
SECURE_SSL_REDIRECT = BERTH_HTTPS
SESSION_COOKIE_SECURE = BERTH_HTTPS
CSRF_COOKIE_SECURE = BERTH_HTTPS
SECURE_HSTS_SECONDS = env_int("BERTH_HSTS_SECONDS", 31536000 if BERTH_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = BERTH_HTTPS
SECURE_HSTS_PRELOAD = False
if BERTH_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"

REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_RESULT_EXPIRES = 3600
CELERY_BEAT_SCHEDULE = {
    "hosts.mark_offline": {
        "task": "hosts.mark_offline",
        "schedule": 5.0,
        "options": {"queue": "control", "expires": 5.0},
    },
    "operations.cleanup_transfers": {
        "task": "operations.cleanup_transfers",
        "schedule": 600.0,
        "options": {"queue": "control", "expires": 600.0},
    },
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    },
}

BERTH_HOST_OFFLINE_AFTER = env_int("BERTH_HOST_OFFLINE_AFTER", 15, minimum=1)
BERTH_LOGS_TIMEOUT = env_int("BERTH_LOGS_TIMEOUT", 10, minimum=1)
# Seconds the API waits for an agent's answer to container update and stats.
BERTH_CONTAINER_RPC_TIMEOUT = env_int("BERTH_CONTAINER_RPC_TIMEOUT", 10, minimum=1)
# Seconds the API waits for an agent's answer to image tag/remove/inspect/prune.
BERTH_IMAGE_RPC_TIMEOUT = env_int("BERTH_IMAGE_RPC_TIMEOUT", 60, minimum=1)
# Seconds the API waits for an agent to copy files in or out, export, or commit a container.
BERTH_COPY_TIMEOUT = env_int("BERTH_COPY_TIMEOUT", 600, minimum=1)
# Base URL agents use to reach this control plane for archive transfers
# (e.g. "http://10.0.0.5:8000"); empty: the URL the API request came in on.
BERTH_PUBLIC_URL = env_str("BERTH_PUBLIC_URL", "").rstrip("/")
# The broker URL joining agents are given (the Redis address as hosts see it, without
# user or password; each host gets its own ACL user); empty: REDIS_URL's address.
BERTH_AGENT_BROKER_URL = env_str("BERTH_AGENT_BROKER_URL", "")
# The Docker Engine API (apps/dockerapi): a root-only unix socket acting as a site admin,
# and TCP where each request carries a Berth API token; "off" turns a listener off.
BERTH_DOCKER_SOCKET = env_str("BERTH_DOCKER_SOCKET", "/run/berth/docker.sock")
BERTH_DOCKER_TCP = env_str("BERTH_DOCKER_TCP", "127.0.0.1:2375")
# Largest request body accepted (image archives for load/import, saved archives).
BERTH_MAX_UPLOAD_BYTES = env_int("BERTH_MAX_UPLOAD_BYTES", 20 * 2**30, minimum=1)
# Seconds an archive transfer is kept on disk (uploads and saved archives).
BERTH_TRANSFER_TTL = env_int("BERTH_TRANSFER_TTL", 6 * 3600, minimum=60)
BERTH_TRANSFER_DIR = VAR_DIR / "transfers"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "berth.api.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "berth.api.exception_handler",
    "DEFAULT_METADATA_CLASS": "berth.drf.Metadata",
    "DEFAULT_FILTER_BACKENDS": ["berth.drf.Ordering"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Berth API",
    "DESCRIPTION": "Run containers on a fleet of hosts, per team.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

LOG_LEVEL = env_str("BERTH_LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stderr"], "level": LOG_LEVEL},
}
