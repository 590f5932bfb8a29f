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

from elmweb.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_str,
    parse_database_url,
)

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
    "elmweb.training",
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
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "index"
LOGOUT_REDIRECT_URL = "index"
# A rejected CSRF check answers JSON under /api/ (and Django's page elsewhere).
CSRF_FAILURE_VIEW = "elmweb.runs.api.csrf_failure"
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
# Models trained in the lab (stage 2): one folder per job, model-<id>/{dataset.jsonl, model/}.
MODELS_DIR = Path(env_str("MODELS_DIR", default=str(VAR_DIR / "models")))

# --- Celery (read by elmweb/celery.py, namespace CELERY_) -------------------
# The filesystem broker's folders; BROKER_DIR lets tests (and second labs) use their own.
BROKER_DIR = Path(env_str("BROKER_DIR", default=str(VAR_DIR / "broker")))
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
# Redis redelivers a message that no worker acked within this many seconds to another worker.
# Tasks ack late (below), when they end, so it must be longer than the longest task, or a second
# worker starts a training job (up to 24 h of training plus its evaluation) or a step while the
# first still runs it. Nothing waits on it: a killed worker's step comes back through the
# watchdog (RUN_STALE_AFTER_S) and its training job is marked failed (TRAIN_STALE_AFTER_S); a
# worker stopped cleanly hands its unacked messages back at once.
BROKER_VISIBILITY_TIMEOUT_S = env_float("BROKER_VISIBILITY_TIMEOUT_S", default=48 * 3600.0, minimum=1.0)
if CELERY_BROKER_URL.startswith(("redis://", "rediss://", "sentinel://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": BROKER_VISIBILITY_TIMEOUT_S,
        # A broker that vanishes without closing the connection (failover, NAT): publishes fail
        # after this many seconds instead of hanging a request or a step forever.
        "socket_timeout": 30.0,
        "socket_connect_timeout": 10.0,
    }
    # With Redis, a worker that loses the broker connection cannot ack the tasks it is running
    # any more. Let them finish rather than cancel them (Celery 6.0 will cancel by default): what
    # they write is claimed in the database, so the redelivered copy finds nothing left to do.
    CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
CELERY_TASK_DEFAULT_QUEUE = "celery"
# One direct exchange and routing key per queue: a Queue without its own key would be bound with
# the default key "celery", and every routed message would land in all four queues.
CELERY_TASK_QUEUES = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in ("celery", "llm", "sim", "train")
)
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    # A GP step mutates and evaluates in the task (CPU-bound): `sim`. Steps of runs whose
    # operator is a language model are sent to `llm` explicitly (elmweb.runs.engine.step_queue).
    "elmweb.runs.tasks.step_run": {"queue": "sim"},
    "elmweb.runs.tasks.evaluate_chunk": {"queue": "sim"},
    "elmweb.runs.tasks.record_traces": {"queue": "sim"},
    "elmweb.training.tasks.train_model": {"queue": "train"},
}
# These three hold for every broker and matter most with Redis and several worker pools:
CELERY_TASK_ACKS_LATE = True  # a step killed mid-flight is redelivered (steps are idempotent)
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # a killed pool child's step goes back to the queue
CELERY_WORKER_PREFETCH_MULTIPLIER = 1  # long tasks: never hoard messages another worker could take
CELERY_TASK_IGNORE_RESULT = True  # the database, not a result backend, holds what tasks produce
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Runs (elmweb.runs) -----------------------------------------------------
# A running run whose step shows no sign of life (claim, heartbeat, enqueue) for this long is
# re-enqueued by the watchdog; a worker killed mid-batch costs at most this delay.
RUN_STALE_AFTER_S = env_float("RUN_STALE_AFTER_S", default=60.0, minimum=1.0)
# How often a step in flight refreshes its run's heartbeat (well under RUN_STALE_AFTER_S).
RUN_HEARTBEAT_S = min(5.0, RUN_STALE_AFTER_S / 3)
# How often each worker's watchdog looks for stale runs.
WATCHDOG_INTERVAL_S = env_float("WATCHDOG_INTERVAL_S", default=10.0, minimum=0.1)
# Training jobs (elmweb.training): their task touches the job's row every TRAIN_HEARTBEAT_S; the
# watchdog marks a job failed when its row is older than TRAIN_STALE_AFTER_S (its worker died).
TRAIN_STALE_AFTER_S = env_float("TRAIN_STALE_AFTER_S", default=180.0, minimum=1.0)
TRAIN_HEARTBEAT_S = min(30.0, TRAIN_STALE_AFTER_S / 4)
# Processes a step evaluates its batch with (0: in the worker's own process), as the CLI's
# --workers (default 2).
EVAL_WORKERS = env_int("EVAL_WORKERS", default=2, minimum=0, maximum=256)
# Which runs evaluate apart: their step (on `llm`) only writes the children, and `sim` workers
# evaluate them in `evaluate_chunk` tasks of EVAL_CHUNK_SIZE children each, so the process holding
# the model never simulates. LLM: runs of language-model operators; ALL: GP runs too (a GP step
# then mutates on `sim` and spreads the evaluation of a large batch over every `sim` worker).
EVALUATE_APART = env_choice("EVALUATE_APART", choices=("LLM", "ALL"), default="LLM")
EVAL_CHUNK_SIZE = env_int("EVAL_CHUNK_SIZE", default=16, minimum=1, maximum=100_000)
# A step runs batches of one run back to back for up to this long before queueing the next
# step (saves a broker trip per batch; runs take turns on the workers at this granularity).
STEP_CHUNK_S = env_float("STEP_CHUNK_S", default=10.0, minimum=0.0)
# A batch that takes longer than this fails its run with a message (Celery soft time limit).
STEP_TIME_LIMIT_S = env_float("STEP_TIME_LIMIT_S", default=1800.0, minimum=1.0)
if "visibility_timeout" in CELERY_BROKER_TRANSPORT_OPTIONS and BROKER_VISIBILITY_TIMEOUT_S <= STEP_TIME_LIMIT_S + 60:
    raise ImproperlyConfigured(
        f"BROKER_VISIBILITY_TIMEOUT_S={BROKER_VISIBILITY_TIMEOUT_S:g} is not above a step's hard time limit "
        f"(STEP_TIME_LIMIT_S + 60 = {STEP_TIME_LIMIT_S + 60:g}): Redis would hand running steps to a second "
        "worker. Raise BROKER_VISIBILITY_TIMEOUT_S (and keep it above the longest training job), or unset it."
    )
# How often the ASGI process looks for new run events (embedded default, no Redis).
EVENTS_POLL_S = env_float("EVENTS_POLL_S", default=0.1, minimum=0.01)

# --- Channels ---------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", default=None)
# Without Redis the workers cannot reach the web process's in-memory layer, so the ASGI
# process tails the RunEvent table; with Redis, workers notify the run's group themselves.
EVENTS_TAIL_TABLE = REDIS_URL is None
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
