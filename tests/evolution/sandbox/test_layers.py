"""Each isolation layer stops an attack on its own.

The source check would refuse every attack here before it ran, so these programs run without
it (``check_source=False``), in pools where only the layer under test is on (besides the
process and its resource limits, which are always on).
"""

from __future__ import annotations

import errno
import os

import pytest

from evolution.sandbox import SandboxLimits

from .conftest import NO_CHECK, nobody_came, processes_of, program, running_as_root

root_only = pytest.mark.skipif(not running_as_root(), reason="the layer needs root")


def test_the_process_layer_kills_an_infinite_loop_at_the_wall_clock_deadline(only_layer):
    limits = SandboxLimits(timeout_s=1.0, cpu_s=5.0, check_source=False)
    result = only_layer("none").evaluate(program("    while True:\n        pass\n"), limits=limits)

    assert result.kind == "timeout"
    assert "still running" in result.message


def test_rlimit_cpu_stops_a_busy_program_before_a_longer_deadline(only_layer):
    limits = SandboxLimits(timeout_s=10.0, cpu_s=1.0, check_source=False)
    result = only_layer("none").evaluate(program("    while True:\n        pass\n"), limits=limits)

    assert result.kind == "timeout"
    assert "CPU time" in result.message


def test_rlimit_cpu_still_kills_a_program_that_ignores_sigxcpu(only_layer):
    limits = SandboxLimits(timeout_s=10.0, cpu_s=1.0, check_source=False)
    body = "    signal.signal(signal.SIGXCPU, signal.SIG_IGN)\n    while True:\n        pass\n"
    result = only_layer("none").evaluate(program(body, head="import signal"), limits=limits)

    assert result.kind == "timeout"
    assert "CPU time" in result.message


def test_rlimit_as_turns_a_memory_bomb_into_a_memory_failure(only_layer):
    limits = SandboxLimits(memory_bytes=64 * 2**20, check_source=False, timeout_s=5.0)
    result = only_layer("none").evaluate(program("    hog = bytearray(128 * 2**20)\n"), limits=limits)

    assert result.kind == "memory"


@root_only
def test_the_network_namespace_makes_our_listener_unreachable(only_layer, listener):
    port = listener.getsockname()[1]
    text = program(f"    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n", head="import socket")
    result = only_layer("network_namespace").evaluate(text, limits=NO_CHECK)

    assert result.kind == "exception"
    assert os.strerror(errno.ENETUNREACH) in result.message
    assert nobody_came(listener)


def test_the_fd_lock_leaves_no_descriptor_to_open_a_file_with(only_layer):
    text = program("    open('/etc/passwd').read()\n")
    result = only_layer("fd_lock").evaluate(text, limits=NO_CHECK)

    assert result.kind == "exception"
    assert os.strerror(errno.EMFILE) in result.message


def test_the_fd_lock_leaves_no_descriptor_for_a_socket(only_layer, listener):
    port = listener.getsockname()[1]
    text = program(f"    _socket.socket().connect(('127.0.0.1', {port}))\n", head="import _socket")
    result = only_layer("fd_lock").evaluate(text, limits=NO_CHECK)

    assert result.kind == "exception"
    assert os.strerror(errno.EMFILE) in result.message
    assert nobody_came(listener)


@root_only
def test_the_unprivileged_user_makes_rlimit_nproc_stop_a_fork_bomb(only_layer):
    text = program("    while True:\n        os.fork()\n", head="import os")
    result = only_layer("unprivileged_user").evaluate(text, limits=NO_CHECK)

    assert (result.kind, result.detail["type"]) == ("exception", "BlockingIOError")
    assert processes_of(65534) == []


@root_only
def test_the_unprivileged_user_cannot_write_or_read_roots_files(only_layer, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("root only")
    secret.chmod(0o600)
    target = tmp_path / "written"
    for body in (f"    open({str(target)!r}, 'w')\n", f"    open({str(secret)!r}).read()\n"):
        result = only_layer("unprivileged_user").evaluate(program(body), limits=NO_CHECK)

        assert (result.kind, result.detail["type"]) == ("exception", "PermissionError")
    assert not target.exists()


@root_only
def test_the_chroot_shows_an_empty_file_system(only_layer, host_path):
    pool = only_layer("chroot")
    listing = pool.evaluate(
        program("    raise RuntimeError(os.listdir('/'))\n", head="import os"), limits=NO_CHECK
    )
    passwd = pool.evaluate(program("    open('/etc/passwd').read()\n"), limits=NO_CHECK)
    written = pool.evaluate(program(f"    open({str(host_path)!r}, 'w')\n"), limits=NO_CHECK)

    assert listing.message == "RuntimeError: []"
    assert (passwd.kind, passwd.detail["type"]) == ("exception", "FileNotFoundError")
    assert (written.kind, written.detail["type"]) == ("exception", "FileNotFoundError")
    assert not host_path.exists()


SECCOMP_ATTACKS = {
    "fork": ("    os.fork()\n", "import os"),
    "a_thread": ("    threading.Thread(target=print).start()\n", "import threading"),
    "a_program": ("    os.execv('/bin/true', ['true'])\n", "import os"),
    "a_socket": ("    socket.socket()\n", "import socket"),
    "a_signal_to_the_server": ("    os.kill(os.getppid(), 0)\n", "import os"),
    "a_new_identity": ("    os.setuid(0)\n", "import os"),
    "a_new_root": ("    os.chroot('/')\n", "import os"),
    # lowering a limit is always allowed by the kernel; Python reports EPERM as this ValueError
    "any_new_limit": ("    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))\n", "import resource"),
    "a_new_namespace": (
        "    ctypes.CDLL(None).unshare(0x40000000) == 0 or ctypes.pythonapi.PyErr_SetFromErrno(ctypes.py_object(OSError))\n",
        "import ctypes",
    ),
    "a_directory": ("    os.mkdir('/tmp/elm-sandbox-attack-dir')\n", "import os"),
}


@root_only
@pytest.mark.parametrize("attack", sorted(SECCOMP_ATTACKS), ids=lambda name: f"seccomp_denies_{name}")
def test_seccomp_alone_denies(only_layer, attack):
    body, head = SECCOMP_ATTACKS[attack]
    result = only_layer("seccomp").evaluate(program(body, head=head), limits=NO_CHECK)

    assert result.kind == "exception", result
    denied = (os.strerror(errno.EPERM), "can't start new thread", "not allowed to raise maximum limit")
    assert any(words in result.message for words in denied), result
    assert not os.path.exists("/tmp/elm-sandbox-attack-dir")


@root_only
def test_seccomp_alone_denies_writing_a_file(only_layer, host_path):
    result = only_layer("seccomp").evaluate(program(f"    open({str(host_path)!r}, 'w')\n"), limits=NO_CHECK)

    assert (result.kind, result.detail["type"]) == ("exception", "PermissionError")
    assert not host_path.exists()


@root_only
def test_every_layer_is_active_when_the_server_runs_as_root(pool):
    report = pool.isolation_report()

    assert set(report) == {
        "process",
        "rlimits",
        "network_namespace",
        "unprivileged_user",
        "chroot",
        "fd_lock",
        "seccomp",
        "single_threaded_server",
        "source_check",
    }
    assert all(report.values()), pool.inactive_reasons()


def test_a_disabled_layer_is_reported_off_with_its_reason(only_layer):
    pool = only_layer("none")

    assert pool.isolation_report()["seccomp"] is False
    assert pool.inactive_reasons()["seccomp"] == "disabled by configuration"
