"""Read settings from the environment, failing loudly when a value is unusable.

Every reader takes the variable's name and a keyword-only default, and raises
:class:`django.core.exceptions.ImproperlyConfigured` with a message that says
how to fix the value. ``settings.py`` is the only intended caller.

Readers:
    env_str: a string, or the default when unset or empty.
    env_bool: 1/true/yes/on or 0/false/no/off, any case.
    env_list: a comma-separated list, blanks dropped.
    env_choice: one of a fixed set of strings.
    env_int, env_float: a number within optional bounds.
    parse_database_url: ``sqlite://`` and ``postgres://`` URLs -> ``DATABASES`` entry.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_POSTGRES_SCHEMES = frozenset({"postgres", "postgresql", "pgsql"})


def env_str(
    name: str, *, default: str | None, environ: Mapping[str, str] | None = None
) -> str | None:
    """Return the variable ``name``, or ``default`` when it is unset or empty.

    Args:
        name: Environment variable name.
        default: Value used when the variable is unset or empty.
        environ: Mapping to read instead of ``os.environ`` (for tests).

    Returns:
        The stripped value, or ``default``.
    """
    value = (os.environ if environ is None else environ).get(name, "").strip()
    return value or default


def env_bool(name: str, *, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    """Return the variable ``name`` read as a boolean.

    Args:
        name: Environment variable name.
        default: Value used when the variable is unset or empty.
        environ: Mapping to read instead of ``os.environ`` (for tests).

    Returns:
        The boolean value.

    Raises:
        ImproperlyConfigured: The value is not one of the accepted spellings.
    """
    value = env_str(name, default=None, environ=environ)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ImproperlyConfigured(
        f"{name}={value!r} is not a boolean: set it to one of "
        f"{', '.join(sorted(_TRUE))} or {', '.join(sorted(_FALSE))} (any case), "
        f"or unset it to use the default ({str(default).lower()})."
    )


def env_list(
    name: str, *, default: Iterable[str], environ: Mapping[str, str] | None = None
) -> list[str]:
    """Return the variable ``name`` split on commas, blanks dropped.

    Args:
        name: Environment variable name.
        default: Items used when the variable is unset or empty.
        environ: Mapping to read instead of ``os.environ`` (for tests).

    Returns:
        The list of stripped, non-empty items.
    """
    value = env_str(name, default=None, environ=environ)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


def env_choice(
    name: str, *, choices: Iterable[str], default: str, environ: Mapping[str, str] | None = None
) -> str:
    """Return the variable ``name`` upper-cased, checked against ``choices``.

    Args:
        name: Environment variable name.
        choices: Accepted values, upper case.
        default: Value used when the variable is unset or empty.
        environ: Mapping to read instead of ``os.environ`` (for tests).

    Returns:
        One of ``choices``.

    Raises:
        ImproperlyConfigured: The value is not one of ``choices``.
    """
    allowed = list(choices)
    value = (env_str(name, default=default, environ=environ) or default).upper()
    if value not in allowed:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not allowed: set it to one of {', '.join(allowed)}, "
            f"or unset it to use {default}."
        )
    return value


def env_int(
    name: str,
    *,
    default: int,
    minimum: int | None = None,
    maximum: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Return the variable ``name`` read as an integer within ``[minimum, maximum]``.

    Args:
        name: Environment variable name.
        default: Value used when the variable is unset or empty.
        minimum: Smallest accepted value, or ``None`` for no bound.
        maximum: Largest accepted value, or ``None`` for no bound.
        environ: Mapping to read instead of ``os.environ`` (for tests).

    Returns:
        The integer value.

    Raises:
        ImproperlyConfigured: The value is not an integer or is out of bounds.
    """
    return int(_number(name, int, default, minimum, maximum, environ))


def env_float(
    name: str,
    *,
    default: float,
    minimum: float | None = None,
    maximum: float | None = None,
    environ: Mapping[str, str] | None = None,
) -> float:
    """Return the variable ``name`` read as a number within ``[minimum, maximum]``.

    Args:
        name: Environment variable name.
        default: Value used when the variable is unset or empty.
        minimum: Smallest accepted value, or ``None`` for no bound.
        maximum: Largest accepted value, or ``None`` for no bound.
        environ: Mapping to read instead of ``os.environ`` (for tests).

    Returns:
        The float value.

    Raises:
        ImproperlyConfigured: The value is not a number or is out of bounds.
    """
    return float(_number(name, float, default, minimum, maximum, environ))


def _number(
    name: str,
    kind: type[int] | type[float],
    default: float,
    minimum: float | None,
    maximum: float | None,
    environ: Mapping[str, str] | None,
) -> float:
    value = env_str(name, default=None, environ=environ)
    if value is None:
        return default
    if minimum is not None and maximum is not None:
        bounds = f" between {minimum} and {maximum}"
    elif minimum is not None or maximum is not None:
        bounds = f" >= {minimum}" if minimum is not None else f" <= {maximum}"
    else:
        bounds = ""
    word = "an integer" if kind is int else "a number"
    try:
        number = kind(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name}={value!r} is not {word}: set it to {word}{bounds}, "
            f"or unset it to use {default}."
        ) from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ImproperlyConfigured(
            f"{name}={value!r} is out of range: set it to {word}{bounds}, "
            f"or unset it to use {default}."
        )
    return number


def parse_database_url(url: str, *, base_dir: Path) -> dict[str, Any]:
    """Turn a database URL into a Django ``DATABASES`` entry.

    Accepted forms::

        sqlite:///relative/path.sqlite3     (relative to base_dir)
        sqlite:////absolute/path.sqlite3
        sqlite:///:memory:
        postgres://user:password@host:5432/name?sslmode=require

    Args:
        url: The URL, usually the ``DATABASE_URL`` variable.
        base_dir: Directory that relative SQLite paths are resolved against.

    Returns:
        A dict with ``ENGINE``, ``NAME`` and, for PostgreSQL, ``USER``,
        ``PASSWORD``, ``HOST``, ``PORT`` and ``OPTIONS`` (from the query string).

    Raises:
        ImproperlyConfigured: The scheme is unknown or a part is missing or invalid.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        return _sqlite_entry(url, parts.netloc, unquote(parts.path), base_dir=base_dir)
    if scheme in _POSTGRES_SCHEMES:
        return _postgres_entry(url, parts)
    raise ImproperlyConfigured(
        f"DATABASE_URL={_redact(url)!r} has an unsupported scheme {parts.scheme!r}: use "
        "sqlite:////absolute/path.sqlite3 or postgres://user:password@host:5432/name, "
        "or unset DATABASE_URL to use var/db.sqlite3."
    )


def _sqlite_entry(url: str, netloc: str, path: str, *, base_dir: Path) -> dict[str, Any]:
    if netloc:
        raise ImproperlyConfigured(
            f"DATABASE_URL={url!r} names a host ({netloc!r}), which SQLite has none of: "
            "write sqlite:///relative/path.sqlite3 (three slashes) or "
            "sqlite:////absolute/path.sqlite3 (four slashes)."
        )
    name = path[1:] if path.startswith("/") else path
    if not name:
        raise ImproperlyConfigured(
            f"DATABASE_URL={url!r} has no file name: write sqlite:////absolute/path.sqlite3."
        )
    if name == ":memory:":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}
    file = Path(name)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": file if file.is_absolute() else base_dir / file,
    }


def _postgres_entry(url: str, parts: SplitResult) -> dict[str, Any]:
    try:
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(
            f"DATABASE_URL={_redact(url)!r} has an invalid port: write host:5432 with a number."
        ) from exc
    name = unquote(parts.path.lstrip("/"))
    if not name or not parts.hostname:
        raise ImproperlyConfigured(
            f"DATABASE_URL={_redact(url)!r} needs a host and a database name: "
            "write postgres://user:password@host:5432/name."
        )
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname,
        "PORT": str(port or ""),
        "OPTIONS": dict(parse_qsl(parts.query)),
    }


def _redact(url: str) -> str:
    """Return ``url`` with its password replaced by ``***``, so errors can quote it."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
