/*
 * The emulator's hot path, in C because Unicorn calls it on every translated block.
 *
 * Unicorn 2.1.4 neither counts instructions cheaply nor performs Cortex-M exception entry
 * and return (see the shared notes). Done from Python, a block hook costs ~1 us and an
 * interrupt ~140 us. Here:
 *   - a block hook adds the block's instruction count to the virtual clock and stops the
 *     run when the clock reaches the scheduler's next deadline. A stop requested in a
 *     block hook takes effect before that block runs (Unicorn checks for it after calling
 *     the hook), so a block is counted only when it is going to run;
 *   - an interrupt hook completes exception returns (EXC_RETURN) and reports every other
 *     trap (SVC, BKPT, UDF, faults) to Python;
 *   - harness_exc_entry() pushes the exception frame for an exception the NVIC has chosen:
 *     8 words, or 26 with the FP context (S0-S15, FPSCR) when the core has an
 *     FPU and CONTROL.FPCA is set. The FP context is stacked eagerly (never lazily);
 *   - the block hook, which decodes every block it counts, finds FP instructions in blocks
 *     about to run while the FPU is absent or disabled (CPACR): a precise NOCP fault;
 *   - alignment: ARMv7-M faults (UsageFault UNALIGNED) on LDM/STM, LDRD/STRD, exclusives and
 *     VLDR/VSTR/VLDM/VSTM at an address that is not word-aligned, whatever CCR.UNALIGN_TRP
 *     says; Unicorn 2.1.4 (QEMU 5.0) performs them. The block hook finds such instructions
 *     the first time their block runs, puts a code hook on each (then has the block
 *     translated again, so the hook is in it), and the hook checks the base register;
 *   - with the native exception path (the default; HARNESS_NATIVE=0 keeps it in Python), the
 *     NVIC's and SysTick's state and the machine's run loop (harness_advance): SysTick fires,
 *     the NVIC decides, exceptions are entered and retired and sleep is skipped without
 *     Python, exactly as the Python models (core/nvic.py, core/systick.py, Machine's loop),
 *     which stay the reference.
 * Unicorn's API is reached through function pointers passed in the context, so the helper
 * links against nothing and is built with the bundled zig toolchain.
 */
#include <stddef.h>
#include <stdint.h>

typedef struct uc_struct uc_engine;
typedef int (*uc_reg_fn)(uc_engine *, int, void *);
typedef int (*uc_mem_fn)(uc_engine *, uint64_t, void *, size_t);
typedef int (*uc_stop_fn)(uc_engine *);
typedef int (*uc_hook_add_fn)(uc_engine *, size_t *, int, void *, void *, uint64_t, uint64_t, ...);
typedef int (*uc_emu_start_fn)(uc_engine *, uint64_t, uint64_t, uint64_t, size_t);
typedef int (*uc_ctl_fn)(uc_engine *, int, ...);

/* Order must match REG_ORDER in native.py. */
enum { R0, R1, R2, R3, R12, LR, PC, XPSR, SP, IPSR, CONTROL, PSP, MSP, PRIMASK, BASEPRI,
       FAULTMASK, S0, FPSCR, NREGS }; /* S1-S15 follow S0 in Unicorn's numbering */

/* Stop reasons (bit mask), mirrored in native.py. */
enum { STOP_DEADLINE = 1, STOP_TRAP = 2, STOP_RETURN = 4, STOP_MASK = 8, STOP_FAULT = 16,
       STOP_REQUEST = 32, STOP_SLEEP = 64, STOP_RETRANSLATE = 128, STOP_NVIC = 256 };

/* Fault kinds detected here, mirrored in native.py. */
enum { FAULT_NONE, FAULT_BAD_EXC_RETURN, FAULT_UNSTACKING, FAULT_STACKING, FAULT_NOCP,
       FAULT_UNALIGNED, FAULT_TOO_MANY_CHECKS };

#define CONTROL_SPSEL 2u
#define CONTROL_FPCA 4u
/* Unicorn's core (a v8-M model in secure state) keeps SFPA beside FPCA; an FP context is
 * live only when both are set, else its next FP instruction starts a new one (FPSCR reset). */
#define CONTROL_FP_ACTIVE 0xCu
#define BASIC_FRAME 0x20u
#define FP_FRAME 0x68u

#define MAX_CODE_REGIONS 4
#define UC_HOOK_INTR 1
#define UC_HOOK_CODE 4
#define UC_HOOK_BLOCK 8
#define UC_CTL_TB_REMOVE_CACHE_W2 ((1 << 30) | (2 << 26) | 9) /* UC_CTL_WRITE(REMOVE_CACHE, 2) */
#define ALIGN_SET_SIZE 16384 /* instructions with an alignment check (open addressing) */
#define DECODE_CACHE_SIZE 4096 /* decoded flash blocks, direct-mapped by address */

typedef struct {
    uint64_t cycles;         /* virtual cycles executed (1 per instruction) */
    uint64_t deadline;       /* stop the run once cycles >= deadline */
    uint32_t stop_reasons;
    uint32_t trap_intno;
    uint32_t trap_pc;
    uint32_t fault_kind;
    uint32_t fault_addr;
    uint32_t fault_exc_return;
    uint32_t last_block;     /* start of the last block entered: where a bad return came from */
    uint32_t sleep_pc;       /* end of the last block if it ends in WFI/WFE, else 0 */
    uint32_t active_depth;   /* active exceptions, kept with the Python NVIC */
    uint32_t returned_count; /* exception returns since Python last looked */
    uint32_t stop_on_return; /* something is pending: let Python look after each return */
    uint32_t stop_request;   /* set from MMIO callbacks, where uc_emu_stop would replay the access */
    uint32_t stopping;       /* a stop is on its way: blocks entered until then do not run */
    uint32_t watch_masks;    /* something is pending but masked: stop when a mask changes */
    uint32_t watched_primask, watched_basepri, watched_faultmask;
    uint32_t fpu;            /* the core has an FPU: extended frames, EXC_RETURN 0xFFFFFFEx */
    uint32_t fp_enabled;     /* CPACR grants CP10 and CP11: FP instructions may run */
    uint32_t fpcar;          /* FPCAR: where the last extended frame put S0 */
    uint32_t retranslate_begin, retranslate_end; /* a block to translate again, with hooks */
    uint32_t checked_count;  /* instructions in checked[] */
    uint32_t checked[ALIGN_SET_SIZE]; /* addresses that carry an alignment hook */
    uint32_t code_generation; /* bumped from Python whenever flash contents change */
    struct {
        uint32_t address, size, generation, instructions, fp;
        uint16_t last;
    } decoded[DECODE_CACHE_SIZE + 1]; /* flash blocks; the last is scratch for RAM */
    int gpr[15];             /* Unicorn's ids of r0-r12, sp, lr */
    uint32_t n_code;
    uint32_t code_is_flash[MAX_CODE_REGIONS];
    uint32_t code_base[MAX_CODE_REGIONS];
    uint32_t code_size[MAX_CODE_REGIONS];
    const uint8_t *code_host[MAX_CODE_REGIONS];
    int regs[NREGS];
    uc_reg_fn reg_read, reg_write;
    uc_mem_fn mem_read, mem_write;
    uc_stop_fn emu_stop;
    uc_hook_add_fn hook_add;
    uc_emu_start_fn emu_start;
    uc_ctl_fn ctl;
    /* The scheduler's sequence counter: events at the same cycle run in the order they were
     * scheduled, whether Python's or native ones (ordered by (cycle, seq)). */
    uint64_t seq;
    uint64_t py_next_cycle, py_next_seq;         /* Python's earliest event; NEVER if none */
    uint64_t native_next_cycle, native_next_seq; /* the earliest native event; NEVER if none */
    uint64_t idle_cycles;    /* cycles skipped asleep */
    uint32_t sleeping;       /* the core sleeps in WFI/WFE */
    int32_t run_error;       /* Unicorn's error from the last run of harness_advance */
    struct scs_state *scs;   /* NVIC and SysTick in C; NULL while Python models them */
    uint32_t held;           /* off, halted, resetting, stalled or its watch is stale: the
                              * network's native lockstep leaves this machine to Python */
} harness_ctx;

#define NEVER UINT64_MAX

/* The system control space in C (NVIC and SysTick), for the native exception path. The
 * Python models (core/nvic.py, core/systick.py) stay the reference: NativeNvic and
 * NativeSysTick read and write this state, and tests/test_scs_native.py holds both to the
 * same results. Exception numbers index `pending` and `prio`; IRQ numbers `enabled`/`lines`. */
#define SCS_EXCEPTIONS 256
#define SCS_WORDS (SCS_EXCEPTIONS / 32)
#define FIRST_IRQ 16
#define THREAD_PRIORITY 256
typedef struct scs_state {
    uint32_t enabled[SCS_WORDS], pending[SCS_WORDS], lines[SCS_WORDS];
    int32_t prio[SCS_EXCEPTIONS];
    uint32_t active[SCS_EXCEPTIONS]; /* nesting order, innermost last */
    uint32_t n_active;
    uint32_t prigroup;
    uint32_t vtor;           /* the VTOR register's storage */
    uint32_t num_irqs;
    uint32_t changed;        /* pended or re-prioritised: a running core stops to look */
    uint32_t systick[4];     /* CSR, RVR, CVR, CALIB: the SysTick registers' storage */
    /* SysTick's reload deadline, as clock.Deadline keeps it: `at` (NEVER: disarmed), the
     * cycle and sequence number it was queued with, and when the last firing was due. */
    uint64_t systick_at, systick_when, systick_seq, systick_due;
} scs_state;

static uint32_t rd(harness_ctx *c, uc_engine *uc, int reg) {
    uint32_t v = 0;
    c->reg_read(uc, c->regs[reg], &v);
    return v;
}

static void wr(harness_ctx *c, uc_engine *uc, int reg, uint32_t v) {
    c->reg_write(uc, c->regs[reg], &v);
}

#define NO_FP_INSN 0xFFFFFFFFu
#define MAX_ALIGNED_PER_BLOCK 32

/* What the block hook learns from decoding a block. */
typedef struct {
    uint16_t last;          /* first halfword of the last instruction */
    uint32_t fp;            /* offset of the first FP instruction, or NO_FP_INSN */
    uint32_t n_aligned;     /* instructions that must be checked for alignment */
    uint32_t aligned[MAX_ALIGNED_PER_BLOCK]; /* their offsets */
} block_info;

/* For a Thumb instruction that needs an aligned address whatever CCR.UNALIGN_TRP says
 * (ARMv7-M A3.2.1): its base register, with *mask the address bits that must be zero; -1 for
 * any other instruction. PUSH/POP (16-bit) are left out: SP is always word-aligned. */
static int aligned_base(uint16_t hw1, uint16_t hw2, uint32_t *mask) {
    *mask = 3;
    if ((hw1 >> 11) < 0x1D) return (hw1 & 0xF000u) == 0xC000u ? (hw1 >> 8) & 7 : -1; /* LDM/STM */
    int rn = hw1 & 0xF;
    uint32_t op1 = (hw1 >> 7) & 3, op2 = (hw1 >> 4) & 3;
    if ((hw1 & 0xFE40u) == 0xE800u) return op1 == 1 || op1 == 2 ? rn : -1; /* LDM/STM .W */
    if ((hw1 & 0xFE40u) == 0xE840u) {   /* dual, exclusive, table branch */
        if (op1 & 2 || op2 & 2) return rn; /* LDRD/STRD */
        if (op1 == 0) return rn;           /* LDREX/STREX */
        *mask = 1;
        return ((hw2 >> 4) & 0xF) == 5 ? rn : -1; /* LDREXH/STREXH; not B, not TBB/TBH */
    }
    if ((hw1 & 0xEE00u) == 0xEC00u && ((hw2 >> 8) & 0xE) == 0xA && ((hw1 >> 4) & 0x1A) != 0)
        return rn; /* VLDR/VSTR/VLDM/VSTM/VPUSH/VPOP (not the 64-bit register moves) */
    return -1;
}

/* Instructions in a block of Thumb code, and what the hooks need to know about them. Locals,
 * not `info`, in the loop: `p` is a byte pointer, which may alias anything. */
static uint32_t count_thumb(const uint8_t *p, uint32_t size, block_info *info) {
    uint32_t n = 0, off = 0, fp = NO_FP_INSN, n_aligned = 0, mask;
    uint16_t hw = 0;
    while (off < size) {
        hw = (uint16_t)(p[off] | (p[off + 1] << 8));
        uint32_t len = (hw >> 11) >= 0x1D ? 4 : 2; /* 0b11101/0b11110/0b11111: 32-bit */
        /* Rare encodings only: LDM/STM (16-bit), 0xE8xx/0xE9xx, coprocessor space. */
        if (__builtin_expect((hw & 0xF000u) == 0xC000u || (hw & 0xEC00u) == 0xEC00u ||
                                 (hw & 0xFE00u) == 0xE800u, 0)) {
            uint16_t hw2 = len == 4 && off + 3 < size ? (uint16_t)(p[off + 2] | p[off + 3] << 8)
                                                      : 0;
            if ((hw & 0xEC00u) == 0xEC00u && (hw2 & 0x0E00u) == 0x0A00u && fp == NO_FP_INSN)
                fp = off; /* coprocessor space, coproc 0b101x: VFP */
            int rn = aligned_base(hw, hw2, &mask);
            /* SP is always word-aligned (its bits 1:0 read as zero), PC-relative is aligned */
            if (rn >= 0 && rn != 13 && rn != 15 && n_aligned < MAX_ALIGNED_PER_BLOCK)
                info->aligned[n_aligned++] = off;
        }
        off += len;
        n++;
    }
    info->last = hw;
    info->fp = fp;
    info->n_aligned = n_aligned;
    return n;
}

/* Host bytes of [addr, addr + size) when one region holds them; *flash says if it is flash. */
static const uint8_t *host_code_in(harness_ctx *c, uint32_t addr, uint32_t size, int *flash) {
    for (uint32_t i = 0; i < c->n_code; i++) {
        if (addr - c->code_base[i] < c->code_size[i] &&
            addr + size - c->code_base[i] <= c->code_size[i]) {
            *flash = (int)c->code_is_flash[i];
            return c->code_host[i] + (addr - c->code_base[i]);
        }
    }
    return NULL;
}

static const uint8_t *host_code(harness_ctx *c, uint32_t addr, uint32_t size) {
    int flash;
    return host_code_in(c, addr, size, &flash);
}

/* *flash says whether the block lies in flash (so its decoding may be cached). */
static uint32_t count_instructions(harness_ctx *c, uc_engine *uc, uint32_t addr, uint32_t size,
                                   block_info *info, int *flash) {
    *flash = 0;
    const uint8_t *p = host_code_in(c, addr, size, flash);
    if (p) return count_thumb(p, size, info);
    uint8_t buf[4096];
    if (size <= sizeof buf && c->mem_read(uc, addr, buf, size) == 0)
        return count_thumb(buf, size, info);
    info->last = 0;
    info->fp = NO_FP_INSN;
    info->n_aligned = 0;
    return size / 2;
}

/* ---- alignment checks: a code hook on each instruction that needs an aligned address ---- */

static void stop(harness_ctx *c, uc_engine *uc, uint32_t reason);

static void alignment_hook(uc_engine *uc, uint64_t address, uint32_t size, void *user) {
    harness_ctx *c = (harness_ctx *)user;
    (void)size;
    if (c->stopping) return;
    uint8_t bytes[4] = {0};
    const uint8_t *p = host_code(c, (uint32_t)address, 4);
    if (!p && c->mem_read(uc, address, bytes, 4) != 0) return;
    if (!p) p = bytes;
    uint32_t mask, base = 0;
    int rn = aligned_base((uint16_t)(p[0] | p[1] << 8), (uint16_t)(p[2] | p[3] << 8), &mask);
    if (rn < 0 || rn == 15) return; /* the code changed since the hook was put here */
    c->reg_read(uc, c->gpr[rn], &base);
    if (base & mask) { /* UsageFault UNALIGNED, before the access */
        c->fault_kind = FAULT_UNALIGNED;
        c->fault_addr = base;
        c->trap_pc = (uint32_t)address;
        stop(c, uc, STOP_FAULT);
    }
}

/* Add `addr` to the set of checked instructions; 1 if it was new, -1 if the set is full. */
static int check_added(harness_ctx *c, uint32_t addr) {
    uint32_t i = ((addr >> 1) * 2654435761u) >> 18; /* 14 bits: ALIGN_SET_SIZE */
    while (c->checked[i]) {
        if (c->checked[i] == addr) return 0;
        i = (i + 1) & (ALIGN_SET_SIZE - 1);
    }
    if (c->checked_count >= ALIGN_SET_SIZE * 3 / 4) return -1;
    c->checked[i] = addr;
    c->checked_count++;
    return 1;
}

/* New instructions to check in this block: hook them; 1 if the block must be translated
 * again (with the hooks in it), -1 if there are too many to track. */
static int instrument(harness_ctx *c, uc_engine *uc, uint32_t block, const block_info *info) {
    int added = 0;
    for (uint32_t i = 0; i < info->n_aligned; i++) {
        uint32_t addr = block + info->aligned[i];
        int fresh = check_added(c, addr);
        if (fresh < 0) return -1;
        if (fresh) {
            size_t handle = 0;
            c->hook_add(uc, &handle, UC_HOOK_CODE, (void *)alignment_hook, c, (uint64_t)addr,
                        (uint64_t)addr);
            added = 1;
        }
    }
    return added;
}

#define THUMB_WFI 0xBF30
#define THUMB_WFE 0xBF20

static void stop(harness_ctx *c, uc_engine *uc, uint32_t reason) {
    c->stop_reasons |= reason;
    c->stopping = 1;
    c->emu_stop(uc);
}

static void block_hook(uc_engine *uc, uint64_t address, uint32_t size, void *user) {
    harness_ctx *c = (harness_ctx *)user;
    if (c->stopping) return;
    if (c->cycles >= c->deadline) {
        stop(c, uc, STOP_DEADLINE);
        return;
    }
    if (c->stop_request) {
        c->stop_request = 0;
        stop(c, uc, STOP_REQUEST);
        return;
    }
    if (c->scs && c->scs->changed) {
        c->scs->changed = 0;
        stop(c, uc, STOP_NVIC);
        return;
    }
    if (c->watch_masks &&
        (rd(c, uc, PRIMASK) != c->watched_primask || rd(c, uc, BASEPRI) != c->watched_basepri ||
         rd(c, uc, FAULTMASK) != c->watched_faultmask)) {
        stop(c, uc, STOP_MASK);
        return;
    }
    c->last_block = (uint32_t)address;
    /* Decoding dominates the cost of hot code: a flash block is decoded (and its alignment
     * hooks put in place) once. */
    uint32_t slot = ((uint32_t)address >> 1) & (DECODE_CACHE_SIZE - 1);
    if (c->decoded[slot].address != (uint32_t)address || c->decoded[slot].size != size ||
        c->decoded[slot].generation != c->code_generation) {
        block_info info;
        int flash;
        uint32_t n = count_instructions(c, uc, (uint32_t)address, size, &info, &flash);
        int status = info.n_aligned ? instrument(c, uc, (uint32_t)address, &info) : 0;
        if (status < 0) {
            c->fault_kind = FAULT_TOO_MANY_CHECKS;
            c->trap_pc = (uint32_t)address;
            stop(c, uc, STOP_FAULT);
            return;
        }
        if (status > 0) { /* not run yet: translated again with its hooks, then counted */
            c->retranslate_begin = (uint32_t)address;
            c->retranslate_end = (uint32_t)address + size;
            stop(c, uc, STOP_RETRANSLATE);
            return;
        }
        if (!flash) slot = DECODE_CACHE_SIZE; /* RAM code may be rewritten: never cached */
        c->decoded[slot].address = (uint32_t)address;
        c->decoded[slot].size = size;
        c->decoded[slot].generation = c->code_generation;
        c->decoded[slot].instructions = n;
        c->decoded[slot].fp = info.fp;
        c->decoded[slot].last = info.last;
    }
    if (c->decoded[slot].fp != NO_FP_INSN && !c->fp_enabled) { /* NOCP, before the block runs */
        c->fault_kind = FAULT_NOCP;
        c->fault_addr = c->trap_pc = (uint32_t)address + c->decoded[slot].fp;
        stop(c, uc, STOP_FAULT);
        return;
    }
    c->cycles += c->decoded[slot].instructions;
    /* WFI ends a translated block and the run: remember where, to tell a sleep from a stop. */
    uint16_t last = c->decoded[slot].last;
    c->sleep_pc = (last == THUMB_WFI || last == THUMB_WFE) ? (uint32_t)address + size : 0;
}

void scs_returned(scs_state *s);

static int fail(harness_ctx *c, uint32_t kind, uint32_t addr) {
    c->fault_kind = kind;
    c->fault_addr = addr;
    return (int)kind;
}

/* ARMv7-M ExceptionReturn(): pop the frame the matching entry pushed. */
static int exception_return(harness_ctx *c, uc_engine *uc, uint32_t exc_return) {
    c->fault_exc_return = exc_return;
    uint32_t low = exc_return & 0xF;
    /* Bit 4 clear (0xFFFFFFEx) says an FP context was stacked: only with an FPU. */
    uint32_t high = exc_return & 0xFFFFFFF0u;
    int fp_frame = high == 0xFFFFFFE0u;
    if ((high != 0xFFFFFFF0u && !(fp_frame && c->fpu)) || (low != 1 && low != 9 && low != 0xD))
        return fail(c, FAULT_BAD_EXC_RETURN, exc_return);
    int to_thread = low != 1, use_psp = low == 0xD;
    if (to_thread != (c->active_depth == 1)) return fail(c, FAULT_BAD_EXC_RETURN, exc_return);

    uint32_t frame_sp = use_psp ? rd(c, uc, PSP) : rd(c, uc, SP);
    uint32_t f[FP_FRAME / 4];
    uint32_t frame_size = fp_frame ? FP_FRAME : BASIC_FRAME;
    if (c->mem_read(uc, frame_sp, f, frame_size) != 0) return fail(c, FAULT_UNSTACKING, frame_sp);
    uint32_t xpsr = f[7];
    uint32_t restored_ipsr = xpsr & 0x1FF;
    if ((restored_ipsr == 0) != to_thread) return fail(c, FAULT_BAD_EXC_RETURN, exc_return);
    uint32_t new_sp = frame_sp + frame_size + ((xpsr >> 9) & 1) * 4;

    if (fp_frame) {
        for (int i = 0; i < 16; i++) c->reg_write(uc, c->regs[S0] + i, &f[8 + i]);
        wr(c, uc, FPSCR, f[24]);
    }
    /* Written while still in handler mode: CONTROL is not writable from unprivileged code. */
    uint32_t control = rd(c, uc, CONTROL) & ~(CONTROL_SPSEL | CONTROL_FP_ACTIVE);
    if (use_psp) control |= CONTROL_SPSEL;
    if (fp_frame) control |= CONTROL_FP_ACTIVE;
    wr(c, uc, CONTROL, control);
    wr(c, uc, IPSR, restored_ipsr); /* switches mode and, with SPSEL, the active SP */
    wr(c, uc, SP, new_sp);
    wr(c, uc, R0, f[0]);
    wr(c, uc, R1, f[1]);
    wr(c, uc, R2, f[2]);
    wr(c, uc, R3, f[3]);
    wr(c, uc, R12, f[4]);
    wr(c, uc, LR, f[5]);
    wr(c, uc, XPSR, xpsr & ~(1u << 9));
    wr(c, uc, PC, f[6] | 1);
    c->active_depth--;
    if (c->scs) scs_returned(c->scs);
    else c->returned_count++; /* retired by the Python NVIC when it next looks */
    return 0;
}

static void intr_hook(uc_engine *uc, uint32_t intno, void *user) {
    harness_ctx *c = (harness_ctx *)user;
    uint32_t pc = rd(c, uc, PC);
    if (intno == 8) { /* EXCP_EXCEPTION_EXIT: PC holds EXC_RETURN without its Thumb bit */
        if (exception_return(c, uc, pc | 1) != 0) {
            c->trap_pc = c->last_block;
            stop(c, uc, STOP_FAULT);
        } else if (c->stop_on_return) {
            stop(c, uc, STOP_RETURN);
        }
        return;
    }
    c->trap_intno = intno;
    c->trap_pc = pc;
    stop(c, uc, STOP_TRAP);
}

/* ARMv7-M ExceptionEntry(): push the frame (with the FP context when one is live), enter
 * handler mode. */
int harness_exc_entry(uc_engine *uc, harness_ctx *c, uint32_t exc, uint32_t handler) {
    uint32_t ipsr = rd(c, uc, IPSR);
    uint32_t control = rd(c, uc, CONTROL);
    uint32_t sp = rd(c, uc, SP);
    uint32_t xpsr = rd(c, uc, XPSR);
    int fp_frame = c->fpu && (control & CONTROL_FPCA);
    uint32_t frame_size = fp_frame ? FP_FRAME : BASIC_FRAME;
    uint32_t frame = (sp - frame_size) & ~7u;
    uint32_t f[FP_FRAME / 4] = {rd(c, uc, R0),  rd(c, uc, R1), rd(c, uc, R2), rd(c, uc, R3),
                                rd(c, uc, R12), rd(c, uc, LR), rd(c, uc, PC) & ~1u,
                                (xpsr & ~(1u << 9)) | ((sp & 4) ? (1u << 9) : 0)};
    if (fp_frame) {
        for (int i = 0; i < 16; i++) c->reg_read(uc, c->regs[S0] + i, &f[8 + i]);
        f[24] = rd(c, uc, FPSCR);
        f[25] = 0; /* reserved */
    }
    if (c->mem_write(uc, frame, f, frame_size) != 0) return fail(c, FAULT_STACKING, frame);
    wr(c, uc, SP, frame);
    uint32_t exc_return = ipsr != 0 ? 0xFFFFFFF1u : (control & 2) ? 0xFFFFFFFDu : 0xFFFFFFF9u;
    if (fp_frame) {
        exc_return &= ~0x10u;
        c->fpcar = frame + BASIC_FRAME;
    }
    wr(c, uc, IPSR, exc);
    /* The handler starts with no FP context (after IPSR: privileged now, CONTROL writable). */
    if (fp_frame) wr(c, uc, CONTROL, control & ~CONTROL_FP_ACTIVE);
    wr(c, uc, XPSR, (xpsr & 0xF80F0000u) | (1u << 24) | exc); /* flags kept, IT cleared */
    wr(c, uc, LR, exc_return);
    wr(c, uc, PC, handler | 1);
    c->active_depth++;
    return 0;
}

/* Resume at the current PC until a stop; returns Unicorn's uc_err. */
int harness_run(uc_engine *uc, harness_ctx *c) {
    int err;
    c->stop_request = 0;
    if (c->scs) c->scs->changed = 0;
    for (;;) {
        c->stop_reasons = 0;
        c->stopping = 0;
        c->sleep_pc = 0;
        /* `until` is an address where the run ends; no Thumb PC is ever odd, so this never
         * is. (0 would end it at the reset vector of a bootloader at address 0.) */
        err = c->emu_start(uc, rd(c, uc, PC) | 1, 0xFFFFFFFFu, 0, 0);
        if (err || c->stop_reasons != STOP_RETRANSLATE) break;
        c->ctl(uc, UC_CTL_TB_REMOVE_CACHE_W2, (uint64_t)c->retranslate_begin,
               (uint64_t)c->retranslate_end);
    }
    if (c->sleep_pc && (rd(c, uc, PC) & ~1u) == c->sleep_pc) c->stop_reasons |= STOP_SLEEP;
    return err;
}

/* PC to resume from, with the Thumb bit set for uc_emu_start. */
uint32_t harness_resume_pc(uc_engine *uc, harness_ctx *c) { return rd(c, uc, PC) | 1; }

/* Snapshot the mask registers the block hook watches while something is pending. */
void harness_watch_masks(uc_engine *uc, harness_ctx *c, uint32_t enable) {
    c->watch_masks = enable;
    c->watched_primask = rd(c, uc, PRIMASK);
    c->watched_basepri = rd(c, uc, BASEPRI);
    c->watched_faultmask = rd(c, uc, FAULTMASK);
}

int harness_install(uc_engine *uc, harness_ctx *c) {
    size_t h1 = 0, h2 = 0;
    int err = c->hook_add(uc, &h1, UC_HOOK_BLOCK, (void *)block_hook, c, (uint64_t)1, (uint64_t)0);
    if (err) return err;
    return c->hook_add(uc, &h2, UC_HOOK_INTR, (void *)intr_hook, c, (uint64_t)1, (uint64_t)0);
}

/* ---- the exception model in C (native mode) ----
 * Exact replicas of the Python reference: Nvic.group_priority, execution_priority,
 * highest_pending, exception_to_take, pend, set_line, activate and exception_returned;
 * SysTick's reload deadline; and Machine.run_to_cycle's loop for everything that needs no
 * Python: native events, exception entry, exception return, sleep. A native event is ordered
 * against Python's by (cycle, seq), the one sequence counter both take numbers from. */

#define PRIORITY_MASK 0xF0u
#define SYSTICK_EXC 15
enum { SYSTICK_CSR, SYSTICK_RVR };
#define SYSTICK_TICKINT 2u
#define SYSTICK_COUNTFLAG (1u << 16)
#define VTOR_TBLOFF 0xFFFFFF80u

static int bit_of(const uint32_t *words, uint32_t n) { return (int)(words[n >> 5] >> (n & 31) & 1); }
static void set_bit(uint32_t *words, uint32_t n) { words[n >> 5] |= 1u << (n & 31); }

static int32_t group_priority(const scs_state *s, int32_t p) {
    return p < 0 ? p : (int32_t)((uint32_t)p & (0xFFu << (s->prigroup + 1)) & 0xFFu);
}

static int is_active(const scs_state *s, uint32_t exc) {
    for (uint32_t i = 0; i < s->n_active; i++)
        if (s->active[i] == exc) return 1;
    return 0;
}

static int any_pending(const scs_state *s) {
    for (uint32_t w = 0; w < SCS_WORDS; w++)
        if (s->pending[w]) return 1;
    return 0;
}

int32_t scs_execution_priority(const scs_state *s, uint32_t primask, uint32_t basepri,
                               uint32_t faultmask) {
    int32_t current = THREAD_PRIORITY, g;
    for (uint32_t i = 0; i < s->n_active; i++)
        if ((g = group_priority(s, s->prio[s->active[i]])) < current) current = g;
    if (basepri & PRIORITY_MASK && (g = group_priority(s, (int32_t)(basepri & PRIORITY_MASK))) < current)
        current = g;
    if (primask & 1 && current > 0) current = 0;
    if (faultmask & 1 && current > -1) current = -1;
    return current;
}

/* The pending, enabled exception of highest priority (lowest number on a tie); -1 if none. */
int32_t scs_highest_pending(const scs_state *s) {
    int32_t best = -1;
    for (uint32_t w = 0; w < SCS_WORDS; w++) {
        for (uint32_t bits = s->pending[w]; bits; bits &= bits - 1) {
            uint32_t e = w * 32 + (uint32_t)__builtin_ctz(bits);
            if (e >= FIRST_IRQ && !bit_of(s->enabled, e - FIRST_IRQ)) continue;
            if (best < 0 || s->prio[e] < s->prio[best]) best = (int32_t)e;
        }
    }
    return best;
}

int32_t scs_exception_to_take(const scs_state *s, uint32_t primask, uint32_t basepri,
                              uint32_t faultmask) {
    int32_t e = scs_highest_pending(s);
    if (e < 0) return -1;
    return group_priority(s, s->prio[e]) < scs_execution_priority(s, primask, basepri, faultmask)
               ? e : -1;
}

void scs_pend(scs_state *s, uint32_t exc) {
    /* Level-sensitive: an active IRQ whose line is still asserted re-pends on return. */
    if (!(exc >= FIRST_IRQ && is_active(s, exc) && bit_of(s->lines, exc - FIRST_IRQ)))
        set_bit(s->pending, exc);
    s->changed = 1;
}

void scs_set_line(scs_state *s, uint32_t irq, uint32_t level) {
    if (level) {
        set_bit(s->lines, irq);
        scs_pend(s, FIRST_IRQ + irq);
    } else {
        s->lines[irq >> 5] &= ~(1u << (irq & 31));
    }
}

void scs_activate(scs_state *s, uint32_t exc) {
    s->pending[exc >> 5] &= ~(1u << (exc & 31));
    s->active[s->n_active++] = exc;
}

void scs_returned(scs_state *s) {
    if (!s->n_active) return;
    uint32_t e = s->active[--s->n_active];
    if (e >= FIRST_IRQ && bit_of(s->lines, e - FIRST_IRQ)) set_bit(s->pending, e);
}

/* ---- SysTick's reload deadline: the one native event so far ---- */

static void publish_native_next(harness_ctx *c) {
    scs_state *s = c->scs;
    int armed = s && s->systick_at != NEVER;
    c->native_next_cycle = armed ? s->systick_when : NEVER;
    c->native_next_seq = armed ? s->systick_seq : 0;
}

/* Deadline.arm_at: queued at max(at, now), with the next sequence number. */
void scs_systick_arm(harness_ctx *c, uint64_t at) {
    scs_state *s = c->scs;
    uint64_t when = at > c->cycles ? at : c->cycles;
    s->systick_at = at;
    s->systick_when = when;
    s->systick_seq = ++c->seq;
    if (when < c->deadline) c->deadline = when; /* a running core stops in time for it */
    publish_native_next(c);
}

void scs_systick_disarm(harness_ctx *c) {
    c->scs->systick_at = NEVER;
    publish_native_next(c);
}

void harness_fire_native(harness_ctx *c) {
    scs_state *s = c->scs;
    if (!s || s->systick_at == NEVER) return;
    uint64_t due = s->systick_at; /* SysTick._reached_zero */
    s->systick_at = NEVER;
    s->systick_due = due;
    s->systick[SYSTICK_CSR] |= SYSTICK_COUNTFLAG;
    uint32_t reload = s->systick[SYSTICK_RVR];
    if (reload) scs_systick_arm(c, due + reload + 1);
    else publish_native_next(c);
    if (s->systick[SYSTICK_CSR] & SYSTICK_TICKINT) scs_pend(s, SYSTICK_EXC);
}

void harness_publish_native(harness_ctx *c) { publish_native_next(c); }

/* Machine._take_exceptions for the common case. -1 when done; else the exception Python must
 * take itself (its vector needs Python's checks, or stacking failed: Python reports it). */
static int32_t take_exceptions(uc_engine *uc, harness_ctx *c, scs_state *s) {
    if (!any_pending(s)) {
        c->stop_on_return = c->watch_masks = 0;
        return -1;
    }
    harness_watch_masks(uc, c, 1); /* exception entry leaves the masks unchanged */
    uint32_t pm = c->watched_primask, bp = c->watched_basepri, fm = c->watched_faultmask;
    if (c->sleeping && pm & 1 && scs_exception_to_take(s, 0, bp, fm) >= 0)
        c->sleeping = 0; /* WFI wakes even while PRIMASK holds the interrupt off */
    int32_t exc;
    while ((exc = scs_exception_to_take(s, pm, bp, fm)) >= 0) {
        const uint8_t *v = host_code(c, (s->vtor & VTOR_TBLOFF) + 4 * (uint32_t)exc, 4);
        if (!v) return exc;
        uint32_t handler = (uint32_t)v[0] | (uint32_t)v[1] << 8 | (uint32_t)v[2] << 16 |
                           (uint32_t)v[3] << 24;
        if (!(handler & 1) || !host_code(c, handler & ~1u, 1)) return exc;
        if (harness_exc_entry(uc, c, (uint32_t)exc, handler) != 0) return exc;
        scs_activate(s, (uint32_t)exc);
        c->sleeping = 0;
        if (!any_pending(s)) break;
    }
    /* Something stays pending: stop when a return or a mask change may allow it. */
    uint32_t waiting = any_pending(s) && scs_highest_pending(s) >= 0;
    c->stop_on_return = c->watch_masks = waiting;
    return -1;
}

enum { ADV_TARGET, ADV_EVENT, ADV_TAKE, ADV_STOP, ADV_HELD };
#define HANDLED_HERE (STOP_DEADLINE | STOP_RETURN | STOP_MASK | STOP_SLEEP | STOP_NVIC)

static int native_first(const harness_ctx *c) {
    return c->native_next_cycle < c->py_next_cycle ||
           (c->native_next_cycle == c->py_next_cycle && c->native_next_seq < c->py_next_seq);
}

/* Run to cycle `target` as Machine.run_to_cycle does, returning to Python when a Python event
 * is due (ADV_EVENT), an exception needs Python (ADV_TAKE), the run stopped for anything
 * else (ADV_STOP: trap, fault, Python's request, an error in run_error) or at the target. */
int harness_advance(uc_engine *uc, harness_ctx *c, uint64_t target) {
    scs_state *s = c->scs;
    c->run_error = 0;
    for (;;) {
        while (c->native_next_cycle <= c->cycles && native_first(c)) harness_fire_native(c);
        if (c->py_next_cycle <= c->cycles) return ADV_EVENT;
        if (take_exceptions(uc, c, s) >= 0) return ADV_TAKE;
        uint64_t now = c->cycles;
        if (now >= target) return ADV_TARGET;
        uint64_t deadline = target;
        if (c->py_next_cycle < deadline) deadline = c->py_next_cycle;
        if (c->native_next_cycle < deadline) deadline = c->native_next_cycle;
        if (c->sleeping) { /* nothing runs until the next event */
            c->idle_cycles += deadline - now;
            c->cycles = deadline;
            continue;
        }
        c->deadline = deadline;
        int err = harness_run(uc, c);
        if (err) {
            c->run_error = err;
            return ADV_STOP;
        }
        uint32_t reasons = c->stop_reasons;
        if (!reasons || reasons & ~(uint32_t)HANDLED_HERE) return ADV_STOP;
        if (reasons & STOP_SLEEP) c->sleeping = 1;
    }
}

/* ---- what the network's native lockstep (network/bus.c) asks of a machine ---- */

/* Machine.awake (1) and its next event's cycle (NEVER: none); -1 if Python holds it. */
int harness_lockstep_state(harness_ctx *c, uint64_t *next_cycle) {
    if (c->held || !c->scs) return -1;
    *next_cycle = c->py_next_cycle < c->native_next_cycle ? c->py_next_cycle : c->native_next_cycle;
    return !c->sleeping || any_pending(c->scs);
}

/* Machine.run_to_cycle for a machine Python does not hold: ADV_TARGET once at `target`, else
 * what Python must take over from (harness_advance's result, or ADV_HELD). */
int harness_run_to(uc_engine *uc, harness_ctx *c, uint64_t target) {
    if (c->held || !c->scs) return ADV_HELD;
    if (c->sleeping && !any_pending(c->scs)) {
        uint64_t next = c->py_next_cycle < c->native_next_cycle ? c->py_next_cycle
                                                                : c->native_next_cycle;
        if (next == NEVER || next > target) { /* asleep until after `target`: nothing to do */
            if (target > c->cycles) {
                c->idle_cycles += target - c->cycles;
                c->cycles = target;
            }
            return ADV_TARGET;
        }
    }
    return harness_advance(uc, c, target);
}

uint32_t harness_sizeof_scs(void) { return sizeof(scs_state); }
uint32_t harness_sizeof_ctx(void) { return sizeof(harness_ctx); }

/* ---- MMIO pages with registers served in C ----
 * A peripheral may serve some of its registers natively (the M_CAN data path): its read and
 * write functions return 0 when they served the access and nonzero when the Python model
 * must (which then sees the same state). A page maps each word to such a peripheral or to
 * nothing; every access the native side declines goes to the page's Python callbacks. */
typedef int (*native_read_fn)(void *state, uint32_t offset, uint32_t size, uint32_t *out);
typedef int (*native_write_fn)(void *state, uint32_t offset, uint32_t size, uint32_t value);
typedef uint64_t (*mmio_read_cb)(uc_engine *, uint64_t, unsigned, void *);
typedef void (*mmio_write_cb)(uc_engine *, uint64_t, unsigned, uint64_t, void *);

#define PAGE_WORDS 1024
typedef struct {
    native_read_fn read[PAGE_WORDS];
    native_write_fn write[PAGE_WORDS];
    void *state[PAGE_WORDS];
    uint32_t start[PAGE_WORDS];
    mmio_read_cb py_read;
    mmio_write_cb py_write;
} mmio_page;

uint32_t harness_sizeof_page(void) { return sizeof(mmio_page); }

uint64_t harness_page_read(uc_engine *uc, uint64_t offset, unsigned size, void *user) {
    mmio_page *p = user;
    uint32_t w = (uint32_t)(offset >> 2) & (PAGE_WORDS - 1), value;
    if (p->read[w] && !p->read[w](p->state[w], (uint32_t)offset - p->start[w], size, &value))
        return value;
    return p->py_read(uc, offset, size, NULL);
}

void harness_page_write(uc_engine *uc, uint64_t offset, unsigned size, uint64_t value, void *user) {
    mmio_page *p = user;
    uint32_t w = (uint32_t)(offset >> 2) & (PAGE_WORDS - 1);
    if (p->write[w] && !p->write[w](p->state[w], (uint32_t)offset - p->start[w], size, (uint32_t)value))
        return;
    p->py_write(uc, offset, size, value, NULL);
}
