"""Start a fork server holding only what it needs: run by path, never imported.

Forking costs in proportion to the address space, and ``evolution.sodarace``'s package
``__init__`` imports the simulator (pymunk, numpy: 100 MB of mappings), ``evolution.sandbox``'s
the caller's side (threads, subprocess, hashlib). Programs need only the walker API
(``_limits``, ``_walker``, ``_program`` and ``evolution.types``), so this entry point registers
bare ``evolution.sodarace`` and ``evolution.sandbox`` packages before anything imports them:
fork, exit and wait then take about 0.7 ms instead of 1.8 ms. If the walker API ever needs the
rest of its package, the server falls back to the full import (slower forks, same isolation).

Usage (what ``SandboxPool`` runs): ``python -s evolution/sandbox/_boot.py --parent-pid N ...``
"""

import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[0] = str(ROOT)  # not this directory: its private modules are not top-level modules


def _bare_package(name: str) -> types.ModuleType:
    package = types.ModuleType(name, "Only the modules the sandbox fork server imports.")
    package.__path__ = [str(ROOT.joinpath(*name.split(".")))]
    sys.modules[name] = package
    return package


def _lean_imports() -> bool:
    import evolution

    evolution.sandbox = _bare_package("evolution.sandbox")
    sodarace = _bare_package("evolution.sodarace")
    try:
        import evolution.sodarace._program  # noqa: F401 - the walker API, without the simulator
    except ImportError:
        for name in [
            n for n in sys.modules if n == "evolution.sodarace" or n.startswith("evolution.sodarace.")
        ]:
            del sys.modules[name]
        return False
    evolution.sodarace = sodarace
    return True


if __name__ == "__main__":
    lean = _lean_imports()
    from evolution.sandbox._server import main

    raise SystemExit(main(sys.argv[1:], lean=lean))
