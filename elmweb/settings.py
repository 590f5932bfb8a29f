"""Django settings for elmweb, read from the environment.

Every knob is an environment variable read through :mod:`elmweb.env`, which
raises ``ImproperlyConfigured`` with a fix when a value is unusable. With no
variables set, everything is embedded: SQLite (WAL) in ``var/db.sqlite3``,
kombu's filesystem broker in ``var/broker/``, the in-memory channel layer.
See README.md ("Configuration") for the list.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from elmweb.env import env_bool, env_choice, env_list, env_str, parse_database_url

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"  # everything the running lab writes; removed by `make clean`
VAR_DIR.mkdir(exist_ok=True)

# --- Core -------------------------------------------------------------------
DEBUG = env_bool("DEBUG", default=True)  # a lab on a laptop by default; deployments set DEBUG=false
SECRET_KEY = env_str("SECRET_KEY", default="dev-only-insecure-key" if DEBUG else None)
if SECRET_KEY is None:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set and DEBUG is off: set SECRET_KEY to a long random string, e.g. "
        "the output of `python -c 'import secrets; print(secrets.token_urlsafe(50))'`."
    )
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "daphne",  # first: its runserver replaces Django's, serving ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "elmweb.runs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "elmweb.urls"
WSGI_APPLICATION = "elmweb.wsgi.application"
ASGI_APPLICATION = "elmweb.asgi.application"

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

# --- Database ---------------------------------------------------------------
# SQLite: WAL lets the web process read while a worker writes; IMMEDIATE takes the
# write lock at BEGIN so concurrent writers wait (timeout, seconds) instead of failing.
SQLITE_OPTIONS: dict[str, Any] = {
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
}


def _database(url: str | None) -> dict[str, Any]:
    """Return the ``default`` database entry for ``DATABASE_URL`` (or the embedded default)."""
    entry = parse_database_url(url or "sqlite:///var/db.sqlite3", base_dir=BASE_DIR)
    if entry["ENGINE"].endswith("sqlite3") and entry["NAME"] != ":memory:":
        name = Path(entry["NAME"])
        name.parent.mkdir(parents=True, exist_ok=True)
        entry["OPTIONS"] = dict(SQLITE_OPTIONS)
        # A file (not the in-memory default) so tests see the same journal mode as runs; one
        # per process, so two test runs on one checkout never share (and break) a database.
        entry["TEST"] = {"NAME": name.with_name(f"test_{os.getpid()}_{name.name}")}
    return entry


DATABASES = {"default": _database(env_str("DATABASE_URL", default=None))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files -----------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("frontend", BASE_DIR / "frontend"),  # ES modules served as they are: /static/frontend/...
]
STATIC_ROOT = VAR_DIR / "static"

# --- Celery (read by elmweb/celery.py, namespace CELERY_) -------------------
BROKER_DIR = VAR_DIR / "broker"
# "localhost" means nothing to the filesystem transport; naming it silences kombu's warning.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", default="filesystem://localhost//")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # One folder is both "in" and "out": producers and workers share it.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "control_folder": str(BROKER_DIR / "control"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "store_processed": False,
        "polling_interval": 0.1,  # seconds between folder scans when idle
    }
    for _folder in ("queue", "control", "processed"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_DEFAULT_QUEUE = "celery"
# One direct exchange and routing key per queue: a Queue without its own key would be bound with
# the default key "celery", and every routed message would land in all four queues.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in ("celery", "llm", "sim", "train")
)
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    # "elmweb.runs.tasks.<name>": {"queue": "llm" | "sim" | "train"}, filled in as tasks land.
}
CELERY_TASK_ACKS_LATE = True  # a step killed mid-flight is redelivered (steps are idempotent)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long tasks: never hoard messages another worker could take
CELERY_TASK_IGNORE_RESULT = True  # the database, not a result backend, holds what tasks produce
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Channels ---------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", default=None)
if REDIS_URL is None:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
elif importlib.util.find_spec("channels_redis") is None:
    raise ImproperlyConfigured(
        "REDIS_URL is set but channels_redis is not installed: run "
        "`.venv/bin/pip install channels-redis`, or unset REDIS_URL to use the in-memory layer."
    )
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }

# --- Logging ----------------------------------------------------------------
LOG_LEVEL = env_choice(
    "LOG_LEVEL", choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], default="INFO"
)
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "console": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "console"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # Drop Django's own console handler (records reach ours through the root) and keep
        # its SQL-query DEBUG records out even when LOG_LEVEL=DEBUG.
        "django": {"handlers": [], "level": "INFO" if LOG_LEVEL == "DEBUG" else LOG_LEVEL},
    },
}
