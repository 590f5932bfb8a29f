"""The caller's side: results, determinism, workers in parallel, threads, restarts, shutdown."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from evolution.sandbox import (
    ProgramFailure,
    SandboxLimits,
    SandboxPool,
    evaluate_program,
    isolation_report,
    program_seed,
)
from evolution.sodarace import build_walker, seeds
from evolution.types import WalkerSpec

from .conftest import FAST, NO_CHECK, WALKER, program

ROOT = Path(__file__).resolve().parents[3]
RANDOM_WALKER = program(
    "    wc = walker_creator()\n    for _ in range(4):\n        wc.add_joint(random.uniform(-10, 10), random.uniform(0, 10))\n"
    "    return wc.get_walker()\n",
    head="import random",
)


@pytest.mark.parametrize("name", sorted(seeds.SEEDS))
def test_every_seed_builds_the_same_walker_in_the_sandbox_as_in_process(pool, name):
    text = seeds.get_seed(name).program

    assert pool.evaluate(text) == build_walker(text)


def test_random_is_seeded_by_the_program_text_so_the_same_text_gives_the_same_walker(pool):
    first, second = pool.evaluate(RANDOM_WALKER), pool.evaluate(RANDOM_WALKER)

    assert isinstance(first, WalkerSpec)
    assert first == second
    assert program_seed(RANDOM_WALKER) == program_seed(RANDOM_WALKER)


def test_an_explicit_seed_changes_the_walker_and_repeats_it(pool):
    a1, a2, b = (pool.evaluate(RANDOM_WALKER, seed=s) for s in (1, 1, 2))

    assert a1 == a2
    assert a1 != b


def test_printed_output_is_captured_with_the_walker(pool):
    run = pool.run(program("    print('hello', 42)\n" + WALKER))

    assert run.ok
    assert run.output == "hello 42\n"
    assert run.wall_s > 0


def test_output_of_a_failed_program_is_in_the_failure_detail(pool):
    result = pool.evaluate(program("    print('before')\n    raise ValueError('no')\n"))

    assert result.kind == "exception"
    assert result.detail["output"] == "before\n"


def test_evaluate_program_uses_a_default_pool_and_never_raises_for_the_program():
    result = evaluate_program(program("    raise RuntimeError('inside')\n"))

    assert isinstance(result, ProgramFailure)
    assert result.message == "RuntimeError: inside"
    assert isolation_report()["process"] is True


def test_a_text_that_is_not_a_string_is_a_caller_error(pool):
    with pytest.raises(TypeError, match="must be a str"):
        pool.evaluate(b"def make_walker(): pass")


def test_two_workers_run_two_programs_at_the_same_time():
    sleeper = program("    time.sleep(0.6)\n" + WALKER, head="import time")
    with SandboxPool(workers=2) as two:
        two.start()
        start = time.monotonic()
        runs = two.run_many([sleeper, sleeper], limits=NO_CHECK)
        elapsed = time.monotonic() - start

    assert all(run.ok for run in runs)
    assert elapsed < 1.1


def test_run_many_keeps_the_order_of_the_programs_and_their_seeds(pool):
    texts = [seeds.get_seed(name).program for name in sorted(seeds.SEEDS)]
    with SandboxPool(workers=2) as two:
        runs = two.run_many(texts + [RANDOM_WALKER], seeds=[None] * len(texts) + [7])

    assert [run.result for run in runs[:-1]] == [build_walker(text) for text in texts]
    assert runs[-1].result == pool.evaluate(RANDOM_WALKER, seed=7)  # same seed, other server


def test_many_threads_can_share_one_pool(pool):
    texts = [seeds.get_seed(name).program for name in sorted(seeds.SEEDS)] * 3
    results: list[object] = [None] * len(texts)

    def work(i: int) -> None:
        results[i] = pool.evaluate(texts[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [build_walker(text) for text in texts]


def test_a_fork_server_that_dies_is_restarted_on_the_next_program():
    with SandboxPool() as own:
        own.start()
        (old,) = own.server_pids
        os.kill(old, signal.SIGKILL)
        time.sleep(0.1)

        result = own.evaluate(program(WALKER))

        assert isinstance(result, WalkerSpec)
        assert own.server_pids[0] not in (None, old)


def test_a_server_that_dies_mid_program_gives_a_crash_not_an_exception():
    with SandboxPool() as own:
        own.start()
        (pid,) = own.server_pids
        killer = threading.Timer(0.3, os.kill, (pid, signal.SIGKILL))
        killer.start()
        result = own.evaluate(program("    while True:\n        pass\n"), limits=FAST)
        killer.join()

        assert result.kind == "crashed"
        assert isinstance(own.evaluate(program(WALKER)), WalkerSpec)


def test_a_closed_pool_stops_its_servers_and_refuses_work():
    own = SandboxPool().start()
    (pid,) = own.server_pids
    own.close()

    assert not os.path.exists(f"/proc/{pid}")
    with pytest.raises(RuntimeError, match="closed"):
        own.evaluate(program(WALKER))


def test_the_server_logs_its_active_layers_when_it_starts(caplog):
    with caplog.at_level(logging.INFO, logger="evolution.sandbox"), SandboxPool() as own:
        own.start()

    assert any("active layers: process, rlimits" in record.getMessage() for record in caplog.records)


def test_the_fork_server_holds_only_the_walker_api_not_the_simulator(pool):
    text = program(
        "    raise RuntimeError(sorted(m for m in sys.modules if m in ('numpy', 'pymunk', 'django')))\n",
        head="import sys",
    )

    assert pool.evaluate(text, limits=NO_CHECK).message == "RuntimeError: []"


def test_bad_pool_arguments_are_refused_with_a_fix():
    with pytest.raises(ValueError, match="at least one worker"):
        SandboxPool(workers=0)
    with pytest.raises(ValueError, match="choose from"):
        SandboxPool(disable=["firewall"])


def test_limits_are_checked_when_made():
    with pytest.raises(ValueError, match="timeout_s"):
        SandboxLimits(timeout_s=0)
    with pytest.raises(ValueError, match="memory_bytes"):
        SandboxLimits(memory_bytes=-1)


def test_numpy_programs_run_when_the_pool_preloads_numpy_and_the_limits_allow_it():
    text = program(
        "    wc = walker_creator()\n    wc.add_joint(float(np.sign(-3.0)), float(np.random.uniform(0, 5)))\n    return wc.get_walker()\n",
        head="import numpy as np",
    )
    limits = SandboxLimits(imports=("math", "random", "numpy"))
    with SandboxPool(preload=["numpy"]) as numpy_pool:
        first, second = numpy_pool.evaluate(text, limits=limits), numpy_pool.evaluate(text, limits=limits)

    assert isinstance(first, WalkerSpec) and first.joints[0][0] == -1.0
    assert first == second  # numpy.random is seeded per program too


def test_allowing_numpy_without_preloading_it_is_a_caller_error(pool):
    with pytest.raises(ValueError, match=r"SandboxPool\(preload=\('numpy',\)\)"):
        pool.evaluate("import numpy", limits=SandboxLimits(imports=("math", "numpy")))


def test_a_forked_caller_starts_its_own_fork_server(pool):
    parent_servers = pool.server_pids
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: use the inherited pool, report, leave at once
        try:
            result = pool.evaluate(program(WALKER))
            os.write(write, f"{isinstance(result, WalkerSpec)} {pool.server_pids[0]}".encode())
        finally:
            os._exit(0)
    os.close(write)
    answer = os.read(read, 100).decode().split()
    os.close(read)
    os.waitpid(pid, 0)

    assert answer[0] == "True"
    assert int(answer[1]) not in parent_servers
    assert pool.server_pids == parent_servers
    assert isinstance(pool.evaluate(program(WALKER)), WalkerSpec)


def test_a_server_started_from_a_short_lived_thread_outlives_the_thread():
    with SandboxPool() as own:
        starter = threading.Thread(target=own.start)
        starter.start()
        starter.join()
        (pid,) = own.server_pids
        time.sleep(0.2)

        assert isinstance(own.evaluate(program(WALKER)), WalkerSpec)
        assert own.server_pids == [pid]


def test_the_fork_server_exits_when_its_caller_dies_without_closing(tmp_path):
    script = tmp_path / "caller.py"
    script.write_text(
        "import os, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from evolution.sandbox import SandboxPool\n"
        "print(SandboxPool().start().server_pids[0], flush=True)\n"
        "os._exit(0)\n"
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=True
    )
    pid = int(out.stdout.split()[0])
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)

    assert not _alive(pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
