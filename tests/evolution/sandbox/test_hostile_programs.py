"""Hostile and broken programs through the full sandbox: each ends as its exact failure kind,
and the host (this process, the fork server, the file system, the network) is unharmed."""

from __future__ import annotations

import os
import time

import pytest

from evolution.sandbox import FailureKind, ProgramFailure, SandboxLimits
from evolution.types import WalkerSpec

from .conftest import FAST, NO_CHECK, WALKER, nobody_came, processes_of, program

# (id, program text, limits, expected kind): the id reads as what must happen.
CASES = [
    ("an_infinite_loop_ends_as_a_timeout", program("    while True:\n        pass\n"), FAST, "timeout"),
    ("a_list_of_ten_billion_items_is_a_memory_failure", program("    x = [0] * 10**10\n"), FAST, "memory"),
    (
        "a_growing_list_is_stopped_at_the_memory_limit",
        program("    a = []\n    while True:\n        a.append(' ' * 10**6)\n"),
        FAST,
        "memory",
    ),
    ("a_bytearray_of_a_gigabyte_is_a_memory_failure", program("    b = bytearray(10**9)\n"), FAST, "memory"),
    ("deep_recursion_is_an_exception", program("    return make_walker()\n"), FAST, "exception"),
    (
        "a_print_of_100_mb_is_output_too_large",
        program("    print('x' * 100_000_000)\n"),
        FAST,
        "output_too_large",
    ),
    (
        "printing_in_a_loop_is_output_too_large",
        program("    while True:\n        print('spam')\n"),
        FAST,
        "output_too_large",
    ),
    ("importing_os_is_forbidden", program("    os.system('true')\n", head="import os"), FAST, "forbidden"),
    (
        "importing_subprocess_is_forbidden",
        program("    subprocess.run(['true'])\n", head="import subprocess"),
        FAST,
        "forbidden",
    ),
    (
        "importing_ctypes_is_forbidden",
        program("    ctypes.string_at(0)\n", head="from ctypes import *"),
        FAST,
        "forbidden",
    ),
    (
        "importing_numpy_is_forbidden_by_default",
        program("    np.sign(1)\n", head="import numpy as np"),
        FAST,
        "forbidden",
    ),
    (
        "the_subclasses_escape_is_forbidden",
        program("    ().__class__.__base__.__subclasses__()\n"),
        FAST,
        "forbidden",
    ),
    ("dunder_names_in_strings_are_forbidden", program("    x = '__class__'\n" + WALKER), FAST, "forbidden"),
    ("eval_is_forbidden", program("    eval('1 + 1')\n"), FAST, "forbidden"),
    (
        "exec_and_compile_are_forbidden",
        program("    exec(compile('x = 1', 'f', 'exec'))\n"),
        FAST,
        "forbidden",
    ),
    ("dunder_import_is_forbidden", program("    __import__('os')\n"), FAST, "forbidden"),
    ("globals_is_forbidden", program("    globals()['x'] = 1\n"), FAST, "forbidden"),
    ("getattr_is_forbidden", program("    getattr((), 'x')\n"), FAST, "forbidden"),
    ("open_is_forbidden", program("    open('/etc/passwd').read()\n"), FAST, "forbidden"),
    (
        "a_generator_frame_is_forbidden",
        program("    g = (i for i in [1])\n    g.gi_frame.f_back\n"),
        FAST,
        "forbidden",
    ),
    (
        "a_private_module_attribute_is_forbidden",
        program("    random._os.system('true')\n", head="import random"),
        FAST,
        "forbidden",
    ),
    ("a_full_width_eval_is_seen_as_eval_and_forbidden", program("    ｅｖａｌ('1')\n"), FAST, "forbidden"),
    ("exit_is_forbidden", program("    exit(3)\n"), FAST, "forbidden"),
    ("raising_system_exit_is_an_exception", program("    raise SystemExit(3)\n"), FAST, "exception"),
    (
        "raising_keyboard_interrupt_is_an_exception",
        program("    raise KeyboardInterrupt\n"),
        FAST,
        "exception",
    ),
    (
        "a_base_exception_subclass_is_an_exception",
        program("    raise Boom('bang')\n", head="class Boom(BaseException):\n    pass\n"),
        FAST,
        "exception",
    ),
    (
        "an_exception_with_a_hostile_str_is_an_exception",
        program(
            "    raise Bad()\n",
            head="class Bad(Exception):\n    def __str__(self):\n        raise SystemExit\n",
        ),
        FAST,
        "exception",
    ),
    ("returning_none_is_not_a_walker", program("    return None\n"), FAST, "not_a_walker"),
    (
        "returning_a_dict_is_not_a_walker",
        program("    return {'joints': [[0, 0]], 'muscles': []}\n"),
        FAST,
        "not_a_walker",
    ),
    ("a_program_without_make_walker_fails_as_such", "def build():\n    pass\n", FAST, "no_make_walker"),
    (
        "a_make_walker_that_is_not_callable_fails_as_no_make_walker",
        "make_walker = 3\n",
        FAST,
        "no_make_walker",
    ),
    (
        "zero_joints_is_an_invalid_walker",
        program("    return walker_creator().get_walker()\n"),
        FAST,
        "invalid_walker",
    ),
    (
        "a_100000_joint_walker_is_an_invalid_walker",
        program(
            "    wc = walker_creator()\n    for i in range(100_000):\n        wc.add_joint(i % 40, 0)\n    return wc.get_walker()\n"
        ),
        FAST,
        "invalid_walker",
    ),
    (
        "a_nan_coordinate_is_an_invalid_walker",
        program("    wc = walker_creator()\n    wc.add_joint(float('nan'), 0)\n    return wc.get_walker()\n"),
        FAST,
        "invalid_walker",
    ),
    (
        "an_infinite_coordinate_is_an_invalid_walker",
        program("    wc = walker_creator()\n    wc.add_joint(0, float('inf'))\n    return wc.get_walker()\n"),
        FAST,
        "invalid_walker",
    ),
    ("a_syntax_error_is_a_syntax_failure", "def make_walker(:\n    pass\n", FAST, "syntax"),
    ("bad_indentation_is_a_syntax_failure", "def make_walker():\nreturn 1\n", FAST, "syntax"),
    ("a_null_byte_is_a_syntax_failure", program("    pass\x00\n"), FAST, "syntax"),
    ("a_lone_surrogate_is_a_syntax_failure", program("    x = '\ud800'\n"), FAST, "syntax"),
    ("a_zero_width_space_in_code_is_a_syntax_failure", program("    x\u200b = 1\n"), FAST, "syntax"),
    (
        "a_full_width_underscore_name_is_a_syntax_failure",
        program("    ＿＿import＿＿('os')\n"),
        FAST,
        "syntax",
    ),
    ("a_cyrillic_lookalike_of_eval_is_just_an_unknown_name", program("    еval('1')\n"), FAST, "exception"),
]


@pytest.mark.parametrize(
    ("text", "limits", "kind"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_each_hostile_program_fails_with_its_exact_kind(pool, text, limits, kind):
    result = pool.evaluate(text, limits=limits)

    assert isinstance(result, ProgramFailure), result
    assert result.kind == kind, result
    assert result.message


def test_there_are_at_least_thirty_hostile_programs():
    assert len(CASES) >= 30
    assert {case[3] for case in CASES} >= {kind.value for kind in FailureKind} - {"crashed"}


def test_a_60_second_sleep_ends_at_the_timeout(pool):
    start = time.monotonic()
    result = pool.evaluate(program("    time.sleep(60)\n", head="import time"), limits=NO_CHECK)

    assert result.kind == "timeout"
    assert time.monotonic() - start < NO_CHECK.timeout_s + 1.5


def test_a_killed_program_leaves_no_process_behind(pool):
    text = program("    print(os.getpid(), flush=True)\n    while True:\n        pass\n", head="import os")
    result = pool.evaluate(text, limits=NO_CHECK)

    assert result.kind == "timeout"
    pid = int(result.detail["output"].split()[0])
    assert not os.path.exists(f"/proc/{pid}")


def test_ignoring_every_catchable_signal_still_ends_as_a_timeout(pool):
    head = "import signal"
    body = (
        "    for s in (signal.SIGXCPU, signal.SIGTERM, signal.SIGALRM, signal.SIGINT, signal.SIGHUP):\n"
        "        signal.signal(s, signal.SIG_IGN)\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGXCPU])\n"
        "    while True:\n        pass\n"
    )
    assert pool.evaluate(program(body, head=head), limits=NO_CHECK).kind == "timeout"


def test_a_program_that_closes_its_pipes_and_spins_is_still_timed_out(pool):
    body = "    os.close(1)\n    os.close(2)\n    os.close(3)\n    while True:\n        pass\n"
    assert pool.evaluate(program(body, head="import os"), limits=NO_CHECK).kind == "timeout"


def test_a_fork_bomb_is_contained_and_leaves_no_process(pool):
    text = program("    while True:\n        os.fork()\n", head="import os")
    assert pool.evaluate(text, limits=FAST).kind == "forbidden"

    result = pool.evaluate(text, limits=NO_CHECK)

    assert result.kind == "exception"
    assert result.detail["type"] in {"PermissionError", "BlockingIOError"}
    assert processes_of(65534) == []


def test_threads_cannot_be_started(pool):
    text = program("    threading.Thread(target=print).start()\n", head="import threading")
    result = pool.evaluate(text, limits=NO_CHECK)

    assert result.kind == "exception"
    assert "can't start new thread" in result.message


def test_reading_etc_passwd_into_a_coordinate_fails(pool):
    body = "    wc = walker_creator()\n    wc.add_joint(len(open('/etc/passwd').read()) % 40, 0)\n    return wc.get_walker()\n"
    assert pool.evaluate(program(body), limits=FAST).kind == "forbidden"

    result = pool.evaluate(program(body), limits=NO_CHECK)

    assert result.kind == "exception"
    assert result.detail["type"] in {"OSError", "FileNotFoundError", "PermissionError"}


def test_writing_a_file_fails_and_creates_nothing(pool, host_path):
    text = program(f"    open({str(host_path)!r}, 'w').write('pwned')\n")
    assert pool.evaluate(text, limits=FAST).kind == "forbidden"

    result = pool.evaluate(text, limits=NO_CHECK)

    assert result.kind == "exception"
    assert not host_path.exists()


def test_a_socket_to_a_port_we_listen_on_never_connects(pool, listener):
    port = listener.getsockname()[1]
    text = program(f"    socket.create_connection(('127.0.0.1', {port}), timeout=1)\n", head="import socket")
    assert pool.evaluate(text, limits=FAST).kind == "forbidden"

    result = pool.evaluate(text, limits=NO_CHECK)

    assert result.kind == "exception"
    assert nobody_came(listener)


def test_the_subclasses_escape_cannot_run_a_command(pool, host_path):
    body = (
        "    for cls in ().__class__.__base__.__subclasses__():\n"
        "        if cls.__name__ == '_wrap_close':\n"
        f"            rc = cls.__init__.__globals__['system']('touch {host_path}')\n"
        "            raise RuntimeError(f'system returned {rc}')\n"
    )
    result = pool.evaluate(program(body), limits=NO_CHECK)

    assert result.kind == "exception"
    assert not host_path.exists()


def test_sys_exit_and_os_exit_do_not_escape_into_the_caller(pool):
    exited = pool.evaluate(program("    sys.exit(3)\n", head="import sys"), limits=NO_CHECK)
    vanished = pool.evaluate(program("    os._exit(0)\n", head="import os"), limits=NO_CHECK)

    assert (exited.kind, exited.detail["type"]) == ("exception", "SystemExit")
    assert vanished.kind == "crashed"
    assert "without returning a walker" in vanished.message


def test_a_segfault_is_reported_as_a_crash(pool):
    result = pool.evaluate(program("    ctypes.string_at(0)\n", head="import ctypes"), limits=NO_CHECK)

    assert result.kind == "crashed"
    assert result.detail["signal"] == "SIGSEGV"


def test_a_program_cannot_kill_the_fork_server(pool):
    before = pool.server_pids
    result = pool.evaluate(program("    os.kill(os.getppid(), 9)\n", head="import os"), limits=NO_CHECK)

    assert result.kind == "exception"
    assert pool.server_pids == before
    assert isinstance(pool.evaluate(program(WALKER)), WalkerSpec)


def test_a_program_that_raises_its_own_limits_is_caught_by_the_parent(pool):
    body = "    wc = walker_creator()\n    wc._limits = type(wc._limits)(max_joints=500)\n"
    body += "    for i in range(300):\n        wc.add_joint(i % 40, i // 40)\n    return wc.get_walker()\n"
    assert pool.evaluate(program(body), limits=FAST).kind == "forbidden"

    result = pool.evaluate(program(body), limits=NO_CHECK)

    assert (result.kind, result.detail["rule"]) == ("invalid_walker", "max_joints")


def test_a_forged_walker_is_revalidated_by_the_parent(pool):
    body = "    wc = walker_creator()\n    wc.add_joint(0, 0)\n    spec = wc.get_walker()\n"
    body += "    return type(spec)(((1e9, 0.0), (0.0, 0.0)), ())\n"
    result = pool.evaluate(program(body), limits=FAST)

    assert (result.kind, result.detail["rule"]) == ("invalid_walker", "coordinate_range")


def test_a_huge_result_written_straight_to_the_pipe_is_output_too_large(pool):
    result = pool.evaluate(program("    os.write(3, b'x' * 2_000_000)\n", head="import os"), limits=NO_CHECK)

    assert (result.kind, result.detail["stream"]) == ("output_too_large", "result")


def test_garbage_written_to_the_result_pipe_is_a_crash(pool):
    result = pool.evaluate(
        program("    os.write(3, b'{not json')\n    os._exit(0)\n", head="import os"), limits=NO_CHECK
    )

    assert result.kind == "crashed"


def test_exceptions_report_the_line_in_the_program(pool):
    text = "def helper():\n    return 1 / 0\n\ndef make_walker():\n    wc = walker_creator()\n    return helper()\n"
    result = pool.evaluate(text)

    assert (result.kind, result.line, result.detail["type"]) == ("exception", 2, "ZeroDivisionError")
    assert result.message == "ZeroDivisionError: division by zero"


def test_an_invalid_walker_reports_its_rule_and_the_program_line(pool):
    result = pool.evaluate(program("    wc = walker_creator()\n\n    wc.add_joint(1e9, 0)\n"))

    assert (result.kind, result.line, result.detail["rule"]) == ("invalid_walker", 4, "coordinate_range")


def test_a_syntax_error_reports_its_line(pool):
    result = pool.evaluate("def make_walker():\n    wc = walker_creator()\n    wc.add_joint(0,, 0)\n")

    assert (result.kind, result.line) == ("syntax", 3)


def test_a_forbidden_construct_reports_its_line(pool):
    result = pool.evaluate(program("    wc = walker_creator()\n    x = wc.__dict__\n"))

    assert (result.kind, result.line) == ("forbidden", 3)


def test_an_oversized_program_is_refused_before_it_runs(pool):
    limits = SandboxLimits(max_source_bytes=1000)
    result = pool.evaluate(program("    x = 1\n" * 500), limits=limits)

    assert result.kind == "forbidden"
    assert "1000" in result.message


def test_after_all_attacks_the_server_still_builds_walkers(pool):
    spec = pool.evaluate(program(WALKER))

    assert isinstance(spec, WalkerSpec)
    assert len(spec.joints) == 2
