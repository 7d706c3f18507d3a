"""Which accelerator QEMU should use: KVM only when it is really fast, else TCG.

A plain probe (open /dev/kvm, create a VM, `query-kvm`) is fooled by a software-emulated
KVM, which works but runs about 1000x slower than hardware (LAB.md). So we time real work:
a forked child runs a 5-million-iteration `dec ecx; jnz` loop in a KVM vCPU; hardware does
it in milliseconds, emulation cannot meet the deadline. The answer is computed once per
process.
"""

from __future__ import annotations

import ctypes
import fcntl
import logging
import mmap
import os
import signal
import struct
import threading
import time
from dataclasses import dataclass

KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_GET_VCPU_MMAP_SIZE = 0xAE04
KVM_CREATE_VCPU = 0xAE41
KVM_SET_USER_MEMORY_REGION = 0x4020AE46
KVM_RUN = 0xAE80
KVM_GET_REGS = 0x8090AE81
KVM_SET_REGS = 0x4090AE82
KVM_GET_SREGS = 0x8138AE83
KVM_SET_SREGS = 0x4138AE84
KVM_EXIT_HLT = 5
LOOPS = 5_000_000
GUEST_ADDR = 0x1000

log = logging.getLogger(__name__)

# 16-bit real mode at 0x1000: mov ecx, LOOPS; l: dec ecx; jnz l; hlt
_CODE = b"\x66\xb9" + struct.pack("<I", LOOPS) + b"\x66\x49\x75\xfc\xf4"


@dataclass(frozen=True)
class AccelDecision:
    accel: str  # "kvm" or "tcg"
    reason: str
    probe_seconds: float


def _run_loop_in_kvm(device: str) -> int:
    """Child body: 0 if the vCPU ran the loop to its `hlt`, else a small error code."""
    kvm = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    if fcntl.ioctl(kvm, KVM_GET_API_VERSION) != 12:
        return 2
    vm = fcntl.ioctl(kvm, KVM_CREATE_VM, 0)
    mem = mmap.mmap(-1, 0x1000)
    mem[: len(_CODE)] = _CODE
    address = ctypes.addressof(ctypes.c_char.from_buffer(mem))
    region = struct.pack("<IIQQQ", 0, 0, GUEST_ADDR, 0x1000, address)
    fcntl.ioctl(vm, KVM_SET_USER_MEMORY_REGION, region)
    vcpu = fcntl.ioctl(vm, KVM_CREATE_VCPU, 0)
    run_size = fcntl.ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE)
    run = mmap.mmap(vcpu, run_size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    sregs = bytearray(312)
    fcntl.ioctl(vcpu, KVM_GET_SREGS, sregs)
    struct.pack_into("<Q", sregs, 0, 0)  # cs.base
    struct.pack_into("<H", sregs, 12, 0)  # cs.selector
    fcntl.ioctl(vcpu, KVM_SET_SREGS, bytes(sregs))
    regs = bytearray(144)
    struct.pack_into("<QQ", regs, 16 * 8, GUEST_ADDR, 0x2)  # rip, rflags
    fcntl.ioctl(vcpu, KVM_SET_REGS, bytes(regs))
    fcntl.ioctl(vcpu, KVM_RUN, 0)
    exit_reason = struct.unpack_from("<I", run, 8)[0]
    return 0 if exit_reason == KVM_EXIT_HLT else 3


def probe(device: str = "/dev/kvm", deadline: float = 0.5) -> AccelDecision:
    """Time the loop in a forked child; kill it at the deadline. Never raises."""
    start = time.monotonic()
    if not os.path.exists(device):
        return AccelDecision("tcg", f"{device} does not exist", 0.0)
    if not os.access(device, os.R_OK | os.W_OK):
        return AccelDecision("tcg", f"{device} is not accessible", 0.0)
    pid = os.fork()
    if pid == 0:  # child: never return into the caller's code
        code = 1
        try:
            code = _run_loop_in_kvm(device)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        elapsed = time.monotonic() - start
        if done:
            break
        if elapsed > deadline:
            os.kill(pid, signal.SIGKILL)
            # On software-emulated KVM the child can sit in KVM_RUN long after SIGKILL: reap
            # it in the background instead of stalling the agent (and everything waiting on
            # this decision) until the kernel lets it go.
            threading.Thread(
                target=os.waitpid, args=(pid, 0), name="kvm-probe-reaper", daemon=True
            ).start()
            return AccelDecision(
                "tcg",
                f"KVM too slow: {LOOPS} loop iterations not done in {deadline:.1f} s, "
                f"stopped after {elapsed * 1000:.0f} ms (software-emulated KVM?)",
                elapsed,
            )
        time.sleep(0.005)
    code = os.waitstatus_to_exitcode(status)
    if code == 0:
        return AccelDecision("kvm", f"{LOOPS} iterations in {elapsed * 1000:.0f} ms", elapsed)
    return AccelDecision("tcg", f"KVM probe failed (child exit {code})", elapsed)


_lock = threading.Lock()
_decision: AccelDecision | None = None


def decide() -> AccelDecision:
    """The process-wide decision, probed on first use (about 0.5 s when KVM is slow), and
    logged once with its reason and the probe's figures: an operator asking why guests are
    slow finds TCG and why in the agent's log."""
    global _decision
    with _lock:
        if _decision is None:
            forced = os.environ.get("KUMO_ACCEL", "").strip().lower()
            if forced in ("kvm", "tcg"):
                _decision = AccelDecision(forced, "forced by KUMO_ACCEL", 0.0)
            else:
                _decision = probe()
            log.info(
                "accelerator %s: %s (probe took %.0f ms)",
                _decision.accel,
                _decision.reason,
                _decision.probe_seconds * 1000,
            )
        return _decision
