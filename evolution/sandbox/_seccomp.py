"""Seccomp filters over the system's libseccomp (ctypes; no Python dependency).

Debian installs ``libseccomp2`` everywhere (``apt`` depends on it). Two filters, compiled to
BPF once at server start:

- ``SERVER_DENIED``, loaded by the fork server itself once it is set up, so it binds the
  server and, inherited, every child: no programs run, no sockets, no debugging of other
  processes, no namespaces or mounts, no change to the file system, no file opened for
  writing, no kernel surfaces a walker has no use for.
- ``CHILD_DENIED``, added by each child after it has dropped its privileges: what the server
  still needs but a program must not do: create processes or threads, signal other
  processes, change identity, root directory or limits.

Splitting them keeps the per-child part small: the kernel compiles a filter when it is
loaded, at about 1.6 us an instruction here. Denied calls fail with ``EPERM`` (the program
sees a ``PermissionError``) instead of killing the process, so failures are reported
precisely.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Iterable

SERVER_DENIED = (
    "execve",
    "execveat",
    "socket",
    "socketpair",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "process_madvise",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "personality",
    "memfd_create",
    "memfd_secret",
    "name_to_handle_at",
    "open_by_handle_at",
    "syslog",
    "acct",
    "iopl",
    "ioperm",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "mount_setattr",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsmount",
    "fsconfig",
    "fspick",
    "creat",
    "openat2",
    "mkdir",
    "mkdirat",
    "rmdir",
    "unlink",
    "unlinkat",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "symlink",
    "symlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "chown",
    "fchown",
    "lchown",
    "fchownat",
    "mknod",
    "mknodat",
    "truncate",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "reboot",
    "swapon",
    "swapoff",
    "sethostname",
    "setdomainname",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "quotactl",
)
"""Denied to the fork server and everything it forks."""

CHILD_DENIED = (
    "fork",
    "vfork",
    "clone",
    "clone3",
    "kill",
    "tkill",
    "tgkill",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "pidfd_open",
    "pidfd_send_signal",
    "pidfd_getfd",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    "chroot",
    "setrlimit",
    "seccomp",
)
"""Denied, in addition, to a child about to run a program."""

_ACT_ALLOW = 0x7FFF0000
_ACT_EPERM = 0x00050000 | errno.EPERM
_CMP_NE = 1
_CMP_MASKED_EQ = 7
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_WRITE_FLAGS = (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND)


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


class _Version(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def _libseccomp() -> ctypes.CDLL:
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        from ctypes.util import find_library  # imports subprocess: only when needed

        lib = ctypes.CDLL(find_library("seccomp") or "libseccomp.so", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_version.restype = ctypes.POINTER(_Version)
    return lib


def libseccomp_version() -> str:
    """``"libseccomp X.Y.Z"``.

    Raises:
        OSError: If libseccomp cannot be loaded.
    """
    v = _libseccomp().seccomp_version().contents
    return f"libseccomp {v.major}.{v.minor}.{v.micro}"


class SeccompFilter:
    """A deny-list filter, compiled to BPF and ready to load into a process.

    Args:
        deny: System calls to refuse with ``EPERM`` (names unknown here are skipped).
        deny_writes: Also refuse ``open``/``openat`` with any flag that writes or creates.
        deny_new_limits: Also refuse ``prlimit64`` that sets a limit (reading stays allowed).

    Raises:
        OSError: If libseccomp is missing or refuses a rule.
    """

    def __init__(
        self, *, deny: Iterable[str], deny_writes: bool = False, deny_new_limits: bool = False
    ) -> None:
        self._lib = _libseccomp()
        self._ctx = self._lib.seccomp_init(_ACT_ALLOW)
        if not self._ctx:
            raise OSError("seccomp_init failed")
        try:
            for syscall in deny:
                self._deny(syscall)
            if deny_writes:
                for flag in _WRITE_FLAGS:
                    self._deny("open", _ArgCmp(1, _CMP_MASKED_EQ, flag, flag))
                    self._deny("openat", _ArgCmp(2, _CMP_MASKED_EQ, flag, flag))
            if deny_new_limits:
                self._deny("prlimit64", _ArgCmp(2, _CMP_NE, 0, 0))
            bpf = self._export()
        finally:
            self._lib.seccomp_release(self._ctx)
        self._bpf = ctypes.create_string_buffer(bpf, len(bpf))
        self.instructions = len(bpf) // 8
        self._prog = _SockFprog(self.instructions, ctypes.addressof(self._bpf))
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl

    def _deny(self, syscall: str, *conditions: _ArgCmp) -> None:
        number = self._lib.seccomp_syscall_resolve_name(syscall.encode())
        if number < 0:  # not a system call on this architecture
            return
        array = (_ArgCmp * len(conditions))(*conditions) if conditions else None
        rc = self._lib.seccomp_rule_add_array(self._ctx, _ACT_EPERM, number, len(conditions), array)
        if rc < 0:
            raise OSError(-rc, f"seccomp_rule_add({syscall}) failed: {os.strerror(-rc)}")

    def _export(self) -> bytes:
        fd = os.memfd_create("seccomp-bpf")
        try:
            rc = self._lib.seccomp_export_bpf(self._ctx, fd)
            if rc < 0:
                raise OSError(-rc, f"seccomp_export_bpf failed: {os.strerror(-rc)}")
            return os.pread(fd, os.lseek(fd, 0, os.SEEK_END), 0)
        finally:
            os.close(fd)

    def load(self) -> None:
        """Install the filter in this process (sets no-new-privileges; cannot be undone).

        Raises:
            OSError: If the kernel refuses it.
        """
        ulong = ctypes.c_ulong
        if self._prctl(_PR_SET_NO_NEW_PRIVS, ulong(1), ulong(0), ulong(0), ulong(0)) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        pointer = ctypes.c_void_p(ctypes.addressof(self._prog))
        if self._prctl(_PR_SET_SECCOMP, ulong(_SECCOMP_MODE_FILTER), pointer, ulong(0), ulong(0)) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"prctl(PR_SET_SECCOMP) failed: {os.strerror(err)}")


def server_filter() -> SeccompFilter:
    """The filter the fork server loads on itself."""
    return SeccompFilter(deny=SERVER_DENIED, deny_writes=True)


def child_filter() -> SeccompFilter:
    """The filter each child adds before running its program."""
    return SeccompFilter(deny=CHILD_DENIED, deny_new_limits=True)
