"""Settings validators: bad values raise ImproperlyConfigured saying how to fix them."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from elmweb.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    parse_database_url,
)

BASE = Path("/srv/elmweb")
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("value", ["1", "true", "YES", "On"])
def test_env_bool_reads_true_spellings(value: str) -> None:
    assert env_bool("DEBUG", default=False, environ={"DEBUG": value}) is True


@pytest.mark.parametrize("value", ["0", "false", "No", "OFF"])
def test_env_bool_reads_false_spellings(value: str) -> None:
    assert env_bool("DEBUG", default=True, environ={"DEBUG": value}) is False


def test_env_bool_uses_the_default_when_unset_or_empty() -> None:
    assert env_bool("DEBUG", default=True, environ={}) is True
    assert env_bool("DEBUG", default=False, environ={"DEBUG": " "}) is False


def test_env_bool_rejects_a_bad_boolean_and_says_how_to_fix_it() -> None:
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_bool("DEBUG", default=True, environ={"DEBUG": "maybe"})

    message = str(excinfo.value)
    assert "DEBUG='maybe' is not a boolean" in message
    assert "true" in message and "false" in message and "unset it" in message


def test_env_str_and_env_list_strip_and_split() -> None:
    environ = {"SECRET_KEY": "  s3cret ", "ALLOWED_HOSTS": "a.example, ,b.example,"}

    assert env_str("SECRET_KEY", default=None, environ=environ) == "s3cret"
    assert env_list("ALLOWED_HOSTS", default=[], environ=environ) == ["a.example", "b.example"]
    assert env_list("MISSING", default=["x"], environ=environ) == ["x"]


def test_env_choice_rejects_an_unknown_log_level() -> None:
    environ = {"LOG_LEVEL": "loud"}
    with pytest.raises(ImproperlyConfigured, match="LOG_LEVEL='LOUD' is not allowed: set it to"):
        env_choice("LOG_LEVEL", choices=["INFO", "DEBUG"], default="INFO", environ=environ)


def test_it_parses_an_absolute_sqlite_url() -> None:
    entry = parse_database_url("sqlite:////tmp/x/db.sqlite3", base_dir=BASE)

    assert entry == {"ENGINE": "django.db.backends.sqlite3", "NAME": Path("/tmp/x/db.sqlite3")}


def test_it_resolves_a_relative_sqlite_url_against_the_base_dir() -> None:
    entry = parse_database_url("sqlite:///var/db.sqlite3", base_dir=BASE)

    assert entry["NAME"] == BASE / "var" / "db.sqlite3"


def test_it_parses_a_postgres_url_by_hand() -> None:
    url = "postgres://elm:p%40ss@db.example:6543/elmweb?sslmode=require"

    assert parse_database_url(url, base_dir=BASE) == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "elmweb",
        "USER": "elm",
        "PASSWORD": "p@ss",
        "HOST": "db.example",
        "PORT": "6543",
        "OPTIONS": {"sslmode": "require"},
    }


def test_it_rejects_an_unknown_database_scheme_and_hides_the_password() -> None:
    with pytest.raises(ImproperlyConfigured) as excinfo:
        parse_database_url("mysql://root:hunter2@localhost/elm", base_dir=BASE)

    message = str(excinfo.value)
    assert "unsupported scheme 'mysql'" in message
    assert "postgres://user:password@host:5432/name" in message
    assert "hunter2" not in message


def test_it_rejects_a_sqlite_url_with_a_host_and_suggests_four_slashes() -> None:
    with pytest.raises(ImproperlyConfigured, match="four slashes"):
        parse_database_url("sqlite://tmp/db.sqlite3", base_dir=BASE)


def test_it_rejects_a_postgres_url_without_a_database_name() -> None:
    with pytest.raises(ImproperlyConfigured, match="needs a host and a database name"):
        parse_database_url("postgres://elm@db.example:5432/", base_dir=BASE)


def test_it_rejects_a_postgres_url_with_a_bad_port() -> None:
    with pytest.raises(ImproperlyConfigured, match="invalid port"):
        parse_database_url("postgres://elm@db.example:port/elmweb", base_dir=BASE)


def _import_settings(**env: str) -> subprocess.CompletedProcess[str]:
    """Import elmweb.settings in a fresh interpreter with ``env`` added to the environment."""
    return subprocess.run(
        [sys.executable, "-c", "import elmweb.settings"],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_settings_refuse_to_start_without_secret_key_when_debug_is_off() -> None:
    result = _import_settings(DEBUG="false", SECRET_KEY="")

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set and DEBUG is off" in result.stderr


def test_settings_refuse_a_bad_database_url() -> None:
    result = _import_settings(DATABASE_URL="mongodb://localhost/elm")

    assert result.returncode != 0
    assert "unsupported scheme 'mongodb'" in result.stderr


@pytest.mark.skipif(importlib.util.find_spec("channels_redis") is not None, reason="installed")
def test_settings_ask_to_install_channels_redis_when_redis_url_is_set() -> None:
    result = _import_settings(REDIS_URL="redis://localhost:6379/0")

    assert result.returncode != 0
    assert "pip install channels-redis" in result.stderr


def test_env_int_and_env_float_read_numbers_within_bounds() -> None:
    environ = {"EVAL_WORKERS": " 4 ", "RUN_STALE_AFTER_S": "2.5"}

    assert env_int("EVAL_WORKERS", default=0, minimum=0, environ=environ) == 4
    assert env_float("RUN_STALE_AFTER_S", default=60.0, minimum=1.0, environ=environ) == 2.5
    assert env_int("MISSING", default=7, environ=environ) == 7


def test_env_int_rejects_a_word_and_says_what_to_write() -> None:
    with pytest.raises(ImproperlyConfigured, match="EVAL_WORKERS='two' is not an integer: set it to an integer >= 0"):
        env_int("EVAL_WORKERS", default=0, minimum=0, environ={"EVAL_WORKERS": "two"})


def test_env_float_rejects_a_value_out_of_range() -> None:
    with pytest.raises(ImproperlyConfigured, match="out of range: set it to a number between 1.0 and 10.0"):
        env_float("X", default=2.0, minimum=1.0, maximum=10.0, environ={"X": "0.5"})


def test_settings_refuse_a_stale_delay_below_one_second() -> None:
    result = _import_settings(RUN_STALE_AFTER_S="0.1")

    assert result.returncode != 0
    assert "RUN_STALE_AFTER_S='0.1' is out of range" in result.stderr
