"""Environment parsers, the generated SECRET_KEY, and settings read from the environment."""

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from berth.env import EnvError, env_bool, env_int, env_list, env_str
from berth.secret_key import load_or_create_secret_key

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "on", " y "])
def test_env_bool_true_words(raw):
    assert env_bool("X", False, {"X": raw}) is True


@pytest.mark.parametrize("raw", ["0", "false", "No", "off", "n"])
def test_env_bool_false_words(raw):
    assert env_bool("X", True, {"X": raw}) is False


@pytest.mark.parametrize("environ", [{}, {"X": ""}, {"X": "   "}])
def test_unset_or_blank_means_default(environ):
    assert env_bool("X", True, environ) is True
    assert env_int("X", 7, environ) == 7
    assert env_str("X", "d", environ) == "d"
    assert env_list("X", ["a"], environ) == ["a"]


def test_env_bool_rejects_unknown_word_naming_the_variable():
    with pytest.raises(EnvError, match=r"BERTH_DEBUG='ture' is not a boolean"):
        env_bool("BERTH_DEBUG", False, {"BERTH_DEBUG": "ture"})


def test_env_int_parses_and_checks_bounds():
    assert env_int("N", 1, {"N": " 42 "}) == 42
    with pytest.raises(EnvError, match="N='4x' is not an integer"):
        env_int("N", 1, {"N": "4x"})
    with pytest.raises(EnvError, match="below the minimum 1"):
        env_int("N", 1, {"N": "0"}, minimum=1)
    with pytest.raises(EnvError, match="above the maximum 9"):
        env_int("N", 1, {"N": "10"}, maximum=9)


def test_env_list_splits_and_drops_blanks():
    assert env_list("L", [], {"L": "a, b,,c ,"}) == ["a", "b", "c"]
    assert env_list("L", [], {"L": "a;b"}, separator=";") == ["a", "b"]


def test_env_str_strips():
    assert env_str("S", "d", {"S": "  value "}) == "value"


def test_secret_key_is_generated_once_with_private_mode(tmp_path):
    path = tmp_path / "var" / "secret_key"
    first = load_or_create_secret_key(path)
    assert len(first) >= 50
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_secret_key(path) == first
    assert [p.name for p in path.parent.iterdir()] == ["secret_key"]  # no temp files left


def test_short_secret_key_file_is_refused(tmp_path):
    path = tmp_path / "secret_key"
    path.write_text("short")
    with pytest.raises(Exception, match="shorter than 50"):
        load_or_create_secret_key(path)


PROBE = """
import json
from django.conf import settings
db = settings.DATABASES["default"]
print(json.dumps({
    "debug": settings.DEBUG,
    "engine": db["ENGINE"],
    "db_name": str(db["NAME"]),
    "allowed_hosts": settings.ALLOWED_HOSTS,
    "redis": settings.REDIS_URL,
    "broker": settings.CELERY_BROKER_URL,
    "backend": settings.CELERY_RESULT_BACKEND,
    "layer": settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"],
    "offline_after": settings.BERTH_HOST_OFFLINE_AFTER,
    "beat": settings.CELERY_BEAT_SCHEDULE["hosts.mark_offline"],
    "serializer": settings.CELERY_TASK_SERIALIZER,
    "static_root": str(settings.STATIC_ROOT),
    "secret_len": len(settings.SECRET_KEY),
    "user_model": settings.AUTH_USER_MODEL,
    "login_url": settings.LOGIN_URL,
}))
"""

BERTH_VARS = (
    "BERTH_DEBUG",
    "DEBUG",
    "SECRET_KEY",
    "DATABASE_URL",
    "REDIS_URL",
    "BERTH_ALLOWED_HOSTS",
    "BERTH_HOST_OFFLINE_AFTER",
    "BERTH_VAR_DIR",
)


def load_settings(tmp_path, **env) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in BERTH_VARS}
    clean.update(DJANGO_SETTINGS_MODULE="berth.settings", BERTH_VAR_DIR=str(tmp_path / "var"))
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=clean, capture_output=True, text=True
    )


def test_settings_defaults_are_safe(tmp_path):
    result = load_settings(tmp_path)
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["debug"] is False
    assert values["engine"] == "django.db.backends.sqlite3"
    assert values["db_name"] == str(tmp_path / "var" / "db.sqlite3")
    assert values["allowed_hosts"] == ["127.0.0.1", "localhost"]
    assert values["redis"] == values["broker"] == values["backend"] == "redis://127.0.0.1:6379/0"
    assert values["layer"] == ["redis://127.0.0.1:6379/0"]
    assert values["offline_after"] == 15
    assert values["beat"]["task"] == "hosts.mark_offline"
    assert values["beat"]["schedule"] == 5.0
    assert values["serializer"] == "json"
    assert values["static_root"] == str(tmp_path / "var" / "static")
    assert values["secret_len"] >= 50
    assert values["user_model"] == "accounts.User"
    assert values["login_url"] == "/login/"
    key_file = tmp_path / "var" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_settings_follow_the_environment(tmp_path):
    result = load_settings(
        tmp_path,
        DEBUG="1",
        SECRET_KEY="k" * 60,
        DATABASE_URL="postgres://berth:pw@db.example:5433/berth",
        REDIS_URL="redis://cache:6380/2",
        BERTH_ALLOWED_HOSTS="berth.example, .internal",
        BERTH_HOST_OFFLINE_AFTER="30",
    )
    assert result.returncode == 0, result.stderr
    values = json.loads(result.stdout)
    assert values["debug"] is True
    assert values["engine"] == "django.db.backends.postgresql"
    assert values["db_name"] == "berth"
    assert values["allowed_hosts"] == ["berth.example", ".internal"]
    assert values["broker"] == values["backend"] == "redis://cache:6380/2"
    assert values["offline_after"] == 30
    assert not (tmp_path / "var" / "secret_key").exists()


def test_bad_setting_value_stops_with_a_clear_message(tmp_path):
    result = load_settings(tmp_path, BERTH_HOST_OFFLINE_AFTER="soon")
    assert result.returncode != 0
    assert "BERTH_HOST_OFFLINE_AFTER='soon' is not an integer" in result.stderr


def test_berth_debug_wins_over_debug(tmp_path):
    result = load_settings(tmp_path, BERTH_DEBUG="0", DEBUG="1")
    assert json.loads(result.stdout)["debug"] is False
