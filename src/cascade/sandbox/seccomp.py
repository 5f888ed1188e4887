"""seccomp-BPF filters for sandboxed jobs, built here and installed inside the job.

A filter is a classic-BPF program the kernel runs on every system call of the process
and of everything it starts later; once installed it can never be removed or loosened
(only more filters can be stacked), so no code in the job, native or Python, can switch
it off. The programs are built here as bytes (``struct sock_filter[]``) and handed to the
job, whose trusted start-up code installs them with ``prctl(PR_SET_SECCOMP)`` before any
untrusted code runs (``install`` below does that through ctypes).

Two filters:

- ``job_filter()``: the whole job in ``landlock`` mode. No sockets (``socket`` fails with
  EPERM; ``socketpair`` stays, it reaches nothing), no tracing or reading other processes'
  memory (``ptrace``, ``process_vm_*``, ``pidfd_getfd``, ``kcmp``), no new namespaces or
  mounts, no ``setsid`` (so every process of the job stays in its session, where the
  runner finds and kills it), no io_uring (its operations bypass seccomp), no BPF, perf,
  keyrings, kernel modules, handle-based opens, reboot, swap or accounting.
- ``candidate_filter()``: one code-verifier test process, stacked on the above (or on
  bwrap): additionally no new processes (``fork``, ``vfork``, ``clone`` without
  ``CLONE_THREAD``; ``clone3`` answers ENOSYS so the C library falls back to ``clone``
  for threads) and no ``execve``. One process means the per-process memory limit is the
  test's whole memory, and nothing the candidate starts outlives its test.

Only x86_64 and aarch64 are known; on other architectures ``job_filter`` returns None and
the strong fallback mode is not offered. A system call made under a foreign ABI (x32,
or 32-bit calls on x86_64) kills the process.
"""

from __future__ import annotations

import errno
import functools
import os
import platform
import struct

# BPF opcodes (linux/bpf_common.h) and seccomp return values (linux/seccomp.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
_RET_ALLOW = 0x7FFF0000
_RET_KILL_PROCESS = 0x80000000
_RET_ERRNO = 0x00050000
_OFFSET_NR, _OFFSET_ARCH, _OFFSET_ARG0 = 0, 4, 16  # struct seccomp_data
_CLONE_THREAD = 0x00010000
_X32_SYSCALL_BIT = 0x40000000

# System call numbers from the kernel's asm/unistd_64.h (x86_64) and asm-generic/unistd.h
# (aarch64). aarch64 has no fork/vfork: it creates processes through clone/clone3 only.
_ARCHES = {
    "x86_64": (0xC000003E, {
        "socket": 41, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "perf_event_open": 298, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 250, "add_key": 248,
        "request_key": 249, "mount": 165, "umount2": 166, "pivot_root": 155, "unshare": 272,
        "setns": 308, "chroot": 161, "setsid": 112, "kcmp": 312, "open_by_handle_at": 304,
        "name_to_handle_at": 303, "pidfd_getfd": 438, "fsopen": 430, "fsconfig": 431,
        "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
        "init_module": 175, "finit_module": 313, "delete_module": 176, "kexec_load": 246,
        "kexec_file_load": 320, "reboot": 169, "swapon": 167, "swapoff": 168, "acct": 163,
        "quotactl": 179, "syslog": 103, "personality": 135,
        "fork": 57, "vfork": 58, "clone": 56, "clone3": 435, "execve": 59, "execveat": 322,
    }),
    "aarch64": (0xC00000B7, {
        "socket": 198, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "perf_event_open": 241, "bpf": 280, "userfaultfd": 282, "io_uring_setup": 425,
        "io_uring_enter": 426, "io_uring_register": 427, "keyctl": 219, "add_key": 217,
        "request_key": 218, "mount": 40, "umount2": 39, "pivot_root": 41, "unshare": 97,
        "setns": 268, "chroot": 51, "setsid": 157, "kcmp": 272, "open_by_handle_at": 265,
        "name_to_handle_at": 264, "pidfd_getfd": 438, "fsopen": 430, "fsconfig": 431,
        "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
        "init_module": 105, "finit_module": 273, "delete_module": 106, "kexec_load": 104,
        "kexec_file_load": 294, "reboot": 142, "swapon": 224, "swapoff": 225, "acct": 89,
        "quotactl": 60, "syslog": 116, "personality": 92,
        "clone": 220, "clone3": 435, "execve": 221, "execveat": 281,
    }),
}

JOB_DENIED = (
    "socket", "ptrace", "process_vm_readv", "process_vm_writev", "perf_event_open", "bpf",
    "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "keyctl", "add_key",
    "request_key", "mount", "umount2", "pivot_root", "unshare", "setns", "chroot", "setsid", "kcmp",
    "open_by_handle_at", "name_to_handle_at", "pidfd_getfd", "fsopen", "fsconfig", "fsmount",
    "fspick", "move_mount", "open_tree", "mount_setattr", "init_module", "finit_module",
    "delete_module", "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "acct",
    "quotactl", "syslog", "personality",
)
CANDIDATE_DENIED = JOB_DENIED + ("fork", "vfork", "execve", "execveat")


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _arch() -> tuple[str, int, dict[str, int]] | None:
    machine = platform.machine().lower()
    name = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    if name not in _ARCHES:
        return None
    audit_arch, numbers = _ARCHES[name]
    return name, audit_arch, numbers


def _program(denied: tuple[str, ...], *, threads_only: bool) -> bytes | None:
    found = _arch()
    if found is None:
        return None
    name, audit_arch, numbers = found
    eperm = _RET_ERRNO | errno.EPERM
    prog = [
        _insn(_LD_W_ABS, _OFFSET_ARCH),
        _insn(_JEQ_K, audit_arch, 1, 0),
        _insn(_RET_K, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _OFFSET_NR),
    ]
    if name == "x86_64":
        prog += [_insn(_JGE_K, _X32_SYSCALL_BIT, 0, 1), _insn(_RET_K, _RET_KILL_PROCESS)]
    for syscall in denied:
        if syscall in numbers:
            prog += [_insn(_JEQ_K, numbers[syscall], 0, 1), _insn(_RET_K, eperm)]
    if threads_only:
        # clone3 passes its flags in memory, which BPF cannot read: ENOSYS makes the C
        # library retry with clone, whose flags are an argument.
        prog += [_insn(_JEQ_K, numbers["clone3"], 0, 1), _insn(_RET_K, _RET_ERRNO | errno.ENOSYS)]
        prog += [
            _insn(_JEQ_K, numbers["clone"], 0, 4),
            _insn(_LD_W_ABS, _OFFSET_ARG0),  # the low 32 bits of the flags
            _insn(_JSET_K, _CLONE_THREAD, 0, 1),
            _insn(_RET_K, _RET_ALLOW),
            _insn(_RET_K, eperm),
        ]
    prog.append(_insn(_RET_K, _RET_ALLOW))
    return b"".join(prog)


@functools.lru_cache(maxsize=1)
def job_filter() -> bytes | None:
    """The filter for a whole ``landlock``-mode job, or None on an unknown architecture."""
    return _program(JOB_DENIED, threads_only=False)


@functools.lru_cache(maxsize=1)
def candidate_filter() -> bytes | None:
    """The filter for one code-verifier test process (see the module docstring)."""
    return _program(CANDIDATE_DENIED, threads_only=True)


# The installer, as source: the job's start-up code (stdlib only, not the project) runs it.
INSTALL_SOURCE = '''
def _seccomp_installer():
    """Return install(program_bytes) -> None (raises OSError); needs ctypes."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)

    class _Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    def install(program):
        buffer = ctypes.create_string_buffer(program, len(program))
        fprog = _Fprog(len(program) // 8, ctypes.addressof(buffer))
        # PR_SET_NO_NEW_PRIVS (38): required to install a filter without privileges.
        if libc.prctl(38, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        # PR_SET_SECCOMP (22), SECCOMP_MODE_FILTER (2).
        if libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")

    return install
'''


def install(program: bytes) -> None:
    """Install ``program`` on the calling thread's process (tests and probes only)."""
    namespace: dict = {}
    exec(INSTALL_SOURCE, namespace)
    namespace["_seccomp_installer"]()(program)


def seccomp_status() -> str:
    """The ``Seccomp:`` line of /proc/self/status (0 none, 2 filter), or 'unknown'."""
    try:
        for line in open(f"/proc/{os.getpid()}/status", encoding="ascii"):
            if line.startswith("Seccomp:"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"
