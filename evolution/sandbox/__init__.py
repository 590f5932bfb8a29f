"""Sandbox: run untrusted walker program text, get a ``WalkerSpec`` or a typed failure.

API index:
    evaluate_program: text -> validated ``WalkerSpec`` or ``ProgramFailure`` (never raises
        for what the program does).
    run_program, ProgramRun: the same, with what the program printed and its timings.
    SandboxPool: fork servers, ``workers`` programs at a time; thread-safe; ``run_many``.
    default_pool: the process's shared one-worker pool, started on first use.
    isolation_report: which isolation layers are active on this machine.
    SandboxLimits, DEFAULT_SANDBOX_LIMITS, ALLOWED_IMPORTS: time, memory, output, imports.
    ProgramFailure, FailureKind: why a program produced no walker.
    source_problems: the source check (layer 5) on its own.
    program_seed: the default per-program seed of ``random``.
    SandboxUnavailable: raised only when no fork server can be started at all.

Isolation, in layers (each proven by an attack in ``tests/evolution/sandbox``):
    1. process: each program runs in a fresh child forked from a single-threaded fork server
       (started from a clean interpreter, holding only the walker API), in its own process
       group, killed and reaped when it answers or overruns;
    2. rlimits: address space, CPU seconds, file size 0, no new processes, no core, no
       locked memory; a wall-clock deadline after which the server kills the whole group;
    3. network_namespace: the server, hence every child, lives in a fresh network namespace;
    4. unprivileged_user, chroot, fd_lock: as root the child drops to nobody, chrooted into
       a deleted empty directory; it keeps only its output and result pipes
       (RLIMIT_NOFILE=4);
    5. seccomp (libseccomp via ctypes): the server denies itself exec, sockets, debugging,
       namespaces and every write to the file system; each child also denies itself
       processes, threads, signals to others, new identity, root or limits. And the source
       check refuses dunders, private attributes, ``eval``/``exec``/``open``/
       ``__import__``/``getattr`` and imports beyond ``math`` and ``random``.
The server parses and compiles the text but never executes it; the child answers in JSON,
and nothing a child produced is ever unpickled.
"""

from evolution.sandbox._evaluate import default_pool, evaluate_program, isolation_report, run_program
from evolution.sandbox._failure import FailureKind, ProgramFailure
from evolution.sandbox._handle import SandboxUnavailable
from evolution.sandbox._limits import ALLOWED_IMPORTS, DEFAULT_SANDBOX_LIMITS, SandboxLimits
from evolution.sandbox._outcome import ProgramRun
from evolution.sandbox._pool import SandboxPool, program_seed
from evolution.sandbox._source_check import source_problems

__all__ = [
    "ALLOWED_IMPORTS",
    "DEFAULT_SANDBOX_LIMITS",
    "FailureKind",
    "ProgramFailure",
    "ProgramRun",
    "SandboxLimits",
    "SandboxPool",
    "SandboxUnavailable",
    "default_pool",
    "evaluate_program",
    "isolation_report",
    "program_seed",
    "run_program",
    "source_problems",
]
