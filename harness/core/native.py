"""The C helper that forms the CPU hot path: its context, shared with the hooks."""

from __future__ import annotations

import ctypes

from unicorn import arm_const
from unicorn.unicorn_py3 import unicorn as _ucmod

from harness.nativelib import library

__all__ = ["NativeContext", "library", "new_context"]


# Order matches the enum in native.c.
REG_ORDER = (
    arm_const.UC_ARM_REG_R0, arm_const.UC_ARM_REG_R1, arm_const.UC_ARM_REG_R2,
    arm_const.UC_ARM_REG_R3, arm_const.UC_ARM_REG_R12, arm_const.UC_ARM_REG_LR,
    arm_const.UC_ARM_REG_PC, arm_const.UC_ARM_REG_XPSR, arm_const.UC_ARM_REG_SP,
    arm_const.UC_ARM_REG_IPSR, arm_const.UC_ARM_REG_CONTROL, arm_const.UC_ARM_REG_PSP,
    arm_const.UC_ARM_REG_MSP, arm_const.UC_ARM_REG_PRIMASK, arm_const.UC_ARM_REG_BASEPRI,
    arm_const.UC_ARM_REG_FAULTMASK, arm_const.UC_ARM_REG_S0, arm_const.UC_ARM_REG_FPSCR,
)  # fmt: skip
assert arm_const.UC_ARM_REG_S15 == arm_const.UC_ARM_REG_S0 + 15  # native.c indexes S0 + i

STOP_DEADLINE, STOP_TRAP, STOP_RETURN, STOP_MASK = 1, 2, 4, 8
STOP_FAULT, STOP_REQUEST, STOP_SLEEP, STOP_NVIC = 16, 32, 64, 256
NEVER = 2**64 - 1  # no event
# harness_advance's results
ADV_TARGET, ADV_EVENT, ADV_TAKE, ADV_STOP, ADV_HELD = 0, 1, 2, 3, 4
FAULT_NONE, FAULT_BAD_EXC_RETURN, FAULT_UNSTACKING, FAULT_STACKING, FAULT_NOCP = 0, 1, 2, 3, 4
FAULT_UNALIGNED, FAULT_TOO_MANY_CHECKS = 5, 6
ALIGN_SET_SIZE = 16384
DECODE_CACHE_SIZE = 4096


class DecodedBlock(ctypes.Structure):
    _fields_ = [
        ("address", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("generation", ctypes.c_uint32),
        ("instructions", ctypes.c_uint32),
        ("fp", ctypes.c_uint32),
        ("last", ctypes.c_uint16),
    ]

GPR_ORDER = (*(getattr(arm_const, f"UC_ARM_REG_R{n}") for n in range(13)),
             arm_const.UC_ARM_REG_SP, arm_const.UC_ARM_REG_LR)  # fmt: skip
MAX_CODE_REGIONS = 4


class NativeContext(ctypes.Structure):
    """Mirror of `harness_ctx` in native.c; shared memory between Python and the hooks."""

    _fields_ = [
        ("cycles", ctypes.c_uint64),
        ("deadline", ctypes.c_uint64),
        ("stop_reasons", ctypes.c_uint32),
        ("trap_intno", ctypes.c_uint32),
        ("trap_pc", ctypes.c_uint32),
        ("fault_kind", ctypes.c_uint32),
        ("fault_addr", ctypes.c_uint32),
        ("fault_exc_return", ctypes.c_uint32),
        ("last_block", ctypes.c_uint32),
        ("sleep_pc", ctypes.c_uint32),
        ("active_depth", ctypes.c_uint32),
        ("returned_count", ctypes.c_uint32),
        ("stop_on_return", ctypes.c_uint32),
        ("stop_request", ctypes.c_uint32),
        ("stopping", ctypes.c_uint32),
        ("watch_masks", ctypes.c_uint32),
        ("watched_primask", ctypes.c_uint32),
        ("watched_basepri", ctypes.c_uint32),
        ("watched_faultmask", ctypes.c_uint32),
        ("fpu", ctypes.c_uint32),
        ("fp_enabled", ctypes.c_uint32),
        ("fpcar", ctypes.c_uint32),
        ("retranslate_begin", ctypes.c_uint32),
        ("retranslate_end", ctypes.c_uint32),
        ("checked_count", ctypes.c_uint32),
        ("checked", ctypes.c_uint32 * ALIGN_SET_SIZE),
        ("code_generation", ctypes.c_uint32),
        ("decoded", DecodedBlock * (DECODE_CACHE_SIZE + 1)),
        ("gpr", ctypes.c_int * len(GPR_ORDER)),
        ("n_code", ctypes.c_uint32),
        ("code_is_flash", ctypes.c_uint32 * MAX_CODE_REGIONS),
        ("code_base", ctypes.c_uint32 * MAX_CODE_REGIONS),
        ("code_size", ctypes.c_uint32 * MAX_CODE_REGIONS),
        ("code_host", ctypes.c_void_p * MAX_CODE_REGIONS),
        ("regs", ctypes.c_int * len(REG_ORDER)),
        ("reg_read", ctypes.c_void_p),
        ("reg_write", ctypes.c_void_p),
        ("mem_read", ctypes.c_void_p),
        ("mem_write", ctypes.c_void_p),
        ("emu_stop", ctypes.c_void_p),
        ("hook_add", ctypes.c_void_p),
        ("emu_start", ctypes.c_void_p),
        ("ctl", ctypes.c_void_p),
        ("seq", ctypes.c_uint64),
        ("py_next_cycle", ctypes.c_uint64),
        ("py_next_seq", ctypes.c_uint64),
        ("native_next_cycle", ctypes.c_uint64),
        ("native_next_seq", ctypes.c_uint64),
        ("idle_cycles", ctypes.c_uint64),
        ("sleeping", ctypes.c_uint32),
        ("run_error", ctypes.c_int32),
        ("scs", ctypes.c_void_p),
        ("held", ctypes.c_uint32),
    ]


def _fn(name: str) -> int:
    addr = ctypes.cast(getattr(_ucmod.uclib, name), ctypes.c_void_p).value
    assert addr is not None
    return addr


def new_context() -> NativeContext:
    lib = library()
    assert lib.harness_sizeof_ctx() == ctypes.sizeof(NativeContext), "NativeContext != native.c"
    ctx = NativeContext()
    for i, reg in enumerate(REG_ORDER):
        ctx.regs[i] = reg
    ctx.reg_read = _fn("uc_reg_read")
    ctx.reg_write = _fn("uc_reg_write")
    ctx.mem_read = _fn("uc_mem_read")
    ctx.mem_write = _fn("uc_mem_write")
    ctx.emu_stop = _fn("uc_emu_stop")
    ctx.hook_add = _fn("uc_hook_add")
    ctx.emu_start = _fn("uc_emu_start")
    ctx.ctl = _fn("uc_ctl")
    for i, reg in enumerate(GPR_ORDER):
        ctx.gpr[i] = reg
    ctx.deadline = ctx.py_next_cycle = ctx.native_next_cycle = NEVER
    ctx.code_generation = 1  # the zeroed cache entries belong to no generation
    return ctx
