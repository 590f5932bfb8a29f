"""Layers 2-4 (and seccomp): what the fork server sets up once, and what each child does.

Order in the child matters: a new session (so the server can kill the whole group), an
empty root directory, descriptors reduced to four, resource limits, an unprivileged identity
(as root), death with the server, then the child's seccomp filter, which also forbids undoing
any of it.
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import tempfile
from typing import Any

from evolution.sandbox._seccomp import SeccompFilter, child_filter, libseccomp_version, server_filter

OPTIONAL_LAYERS = ("network_namespace", "unprivileged_user", "chroot", "fd_lock", "seccomp")
"""Layers that depend on the machine; ``process`` and ``rlimits`` are always on."""
RESULT_FD = 3
"""The child's result pipe; 0 is /dev/null, 1 and 2 the captured output."""
NOBODY = 65534
_CLONE_NEWNET = 0x40000000
_PR_SET_PDEATHSIG = 1


class Lockdown:
    """The fork server's share of the isolation, and the steps each child applies to itself.

    Creates an empty directory and deletes it at once, keeping only a descriptor: a child
    that starts there (chrooted as root) sees nothing, and not even root can create a file
    in a deleted directory. Nothing is left behind on disk, whatever ends the server.

    Args:
        disabled: Optional layers to leave off (tests prove each layer on its own this way).

    Attributes:
        layers: Which layers are available: ``True`` or a short description when active,
            ``False`` when not; ``reasons`` says why one is off.
    """

    def __init__(self, *, disabled: frozenset[str] = frozenset()) -> None:
        unknown = disabled - set(OPTIONAL_LAYERS)
        if unknown:
            raise ValueError(f"unknown sandbox layers {sorted(unknown)}; choose from {OPTIONAL_LAYERS}")
        self.root = os.geteuid() == 0
        self.server_pid = os.getpid()
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl
        self._pdeathsig = (_PR_SET_PDEATHSIG, *(ctypes.c_ulong(v) for v in (9, 0, 0, 0)))
        # Limits every child gets, set once here and inherited. Not RLIMIT_FSIZE (the server's
        # stderr may be a log file) nor RLIMIT_NPROC (it would bind a non-root server).
        for which in (resource.RLIMIT_CORE, resource.RLIMIT_MEMLOCK):
            resource.setrlimit(which, (0, 0))
        empty = tempfile.mkdtemp(prefix="elm-sandbox-")
        os.chmod(empty, 0o555)  # readable, so a program sees an empty / rather than an error
        self.empty_fd = os.open(empty, os.O_RDONLY | os.O_DIRECTORY)
        os.rmdir(empty)
        self.devnull = os.open(os.devnull, os.O_RDWR)
        self._server_filter: SeccompFilter | None = None
        self._child_filter: SeccompFilter | None = None
        self.layers: dict[str, bool | str] = {"process": True, "rlimits": True}
        self.reasons: dict[str, str] = {}
        for layer in OPTIONAL_LAYERS:
            self.layers[layer] = False
            if layer in disabled:
                self.reasons[layer] = "disabled by configuration"
                continue
            try:
                self.layers[layer] = getattr(self, f"_prepare_{layer}")()
            except OSError as exc:
                self.reasons[layer] = str(exc)

    def _prepare_network_namespace(self) -> str:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) != 0:  # os.unshare is Python 3.12+
            err = ctypes.get_errno()
            raise OSError(err, f"unshare(CLONE_NEWNET) failed: {os.strerror(err)} (needs root)")
        return "fresh network namespace, no interface up"

    def _prepare_unprivileged_user(self) -> str:
        if not self.root:
            raise OSError(f"the server is not root (uid {os.geteuid()}): programs run as that uid")
        return f"uid/gid {NOBODY} (nobody), no groups"

    def _prepare_chroot(self) -> str:
        if not self.root:
            raise OSError("chroot needs root; programs start in a deleted empty directory instead")
        return "a deleted empty directory as /"

    def _prepare_fd_lock(self) -> str:
        return f"only descriptors 0-{RESULT_FD} open, RLIMIT_NOFILE={RESULT_FD + 1}"

    def _prepare_seccomp(self) -> str:
        self._server_filter, self._child_filter = server_filter(), child_filter()
        return (
            f"{libseccomp_version()}: server filter {self._server_filter.instructions} + child filter "
            f"{self._child_filter.instructions} BPF instructions"
        )

    def seal_server(self) -> None:
        """Load the server's seccomp filter on the calling server (once its setup is done).

        Raises:
            OSError: If the kernel refuses it.
        """
        if self._server_filter is not None:
            self._server_filter.load()

    def apply(self, *, out_fd: int, result_fd: int, limits: dict[str, Any], baseline_vm: int) -> None:
        """Lock the calling (freshly forked) child down. Never call it in the server.

        Leaves descriptors 0 (/dev/null), 1 and 2 (output) and 3 (result).

        Raises:
            OSError: If an active layer cannot be applied; the child must then exit
                without running the program.
        """
        os.setsid()
        os.fchdir(self.empty_fd)
        if self.layers["chroot"]:
            os.chroot(".")
            os.chdir("/")
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.dup2(self.devnull, 0)
        os.dup2(result_fd, RESULT_FD)
        os.closerange(RESULT_FD + 1, 1 << 20)
        cpu = max(1, math.ceil(float(limits["cpu_s"])))
        memory = baseline_vm + int(limits["memory_bytes"])
        resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
        resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))  # binds once the uid is not root
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        if self.layers["fd_lock"]:
            resource.setrlimit(resource.RLIMIT_NOFILE, (RESULT_FD + 1, RESULT_FD + 1))
        if self.layers["unprivileged_user"]:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
        # After the uid change, which clears it: die if the server dies, whatever happens.
        if self._prctl(*self._pdeathsig) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != self.server_pid:
            raise OSError("the fork server is gone")
        if self._child_filter is not None:
            self._child_filter.load()


def address_space_bytes() -> int:
    """Return this process's current virtual memory size (the base of ``RLIMIT_AS``)."""
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
