/*
 * Exception-model scenarios for the harness's tests. The test selects one by writing
 * `scenario` (kept across resets in .noinit) and reads back `trace`, a string of marks
 * in the order things happened, plus the values the handlers recorded.
 */
#include "hal.h"

enum {
    SC_IDLE, SC_PREEMPT, SC_NO_PREEMPT_EQUAL, SC_NO_PREEMPT_LOWER, SC_NESTING, SC_TAIL_CHAIN,
    SC_PRIMASK, SC_BASEPRI, SC_PRIGROUP_NO_PREEMPT, SC_PRIGROUP_ORDER, SC_PSP_THREAD,
    SC_UNPRIVILEGED, SC_FRAME, SC_FAULT_UNMAPPED_READ, SC_FAULT_FLASH_WRITE, SC_FAULT_UNDEFINED,
    SC_FAULT_BAD_EXC_RETURN, SC_FAULT_STACK_OVERFLOW, SC_SYSRESET, SC_SVC, SC_PENDSV,
    SC_WFI_PRIMASK, SC_LEVEL_REPEND, SC_SYSTICK_PERIOD, SC_IRQ_BENCH, SC_FAULT_FETCH,
    SC_TIMER_WHILE_BUSY, SC_UNEXPECTED_IRQ, SC_FAULT_BUS_ERROR, SC_FAULT_FP,
    SC_VECTOR_NO_THUMB, SC_VECTOR_ZERO, SC_FAULT_UNALIGNED_LDM, SC_FAULT_UNALIGNED_STRD,
    SC_COUNT, SC_HANDLED_FAULTS, SC_ESCALATED_FAULT, SC_FAULT_IN_BUSFAULT, SC_LOCKUP,
    SC_ECC_READ, SC_RWW,
};

__attribute__((section(".noinit"))) volatile uint32_t scenario;
__attribute__((section(".noinit"))) volatile uint32_t boot_count;

volatile char trace[64];
volatile uint32_t trace_len;
volatile uint32_t exc_return[8];  /* EXC_RETURN seen by IRQ n's handler (index n) */
volatile uint32_t frame[8];       /* the 8-word frame as the handler found it */
volatile uint32_t frame_sp;       /* SP at handler entry (address of the frame) */
volatile uint32_t thread_regs[5]; /* r0-r3, r12 read back by the thread after the interrupt */
volatile uint32_t sp_before, sp_after, control_after, psp_after, msp_after;
volatile uint32_t level_entries;
volatile uint32_t tick_cycles[16];
volatile uint32_t ticks;
volatile uint32_t done;
static uint32_t process_stack[256] __attribute__((aligned(8)));

static void mark(char c) { trace[trace_len++] = c; }

/* The barriers make the pended interrupt preempt right here (ARMv7-M B3.4.1 / AN321). */
#define STIR_PEND(n) do { SCS->STIR = (n); __asm volatile("dsb\n isb" ::: "memory"); } while (0)
#define LR() ((uint32_t)__builtin_return_address(0))

__attribute__((unused)) static uint32_t read_sp(void) { uint32_t v; __asm volatile("mov %0, sp" : "=r"(v)); return v; }
static uint32_t read_control(void) { uint32_t v; __asm volatile("mrs %0, control" : "=r"(v)); return v; }
static uint32_t read_psp(void) { uint32_t v; __asm volatile("mrs %0, psp" : "=r"(v)); return v; }
static uint32_t read_msp(void) { uint32_t v; __asm volatile("mrs %0, msp" : "=r"(v)); return v; }

/* ---- IRQ handlers: what each does depends on the scenario ---- */

void IRQ2_Handler(void) {
    exc_return[2] = LR();
    mark('2');
    switch (scenario) {
    case SC_PREEMPT: case SC_NO_PREEMPT_EQUAL: case SC_NO_PREEMPT_LOWER:
    case SC_PRIGROUP_NO_PREEMPT: case SC_PSP_THREAD:
        STIR_PEND(3);
        mark('b');
        break;
    case SC_NESTING:
        STIR_PEND(3);
        mark('x');
        break;
    }
}

void IRQ3_Handler(void) {
    exc_return[3] = LR();
    mark('3');
    if (scenario == SC_NESTING) { STIR_PEND(4); mark('y'); }
}

void IRQ4_Handler(void) {
    exc_return[4] = LR();
    mark('4');
    if (scenario == SC_NESTING) {
        STIR_PEND(5);
        exc_return[7] = SCS->IABR[0]; /* three handlers active here, a fourth about to be */
        mark('z');
    }
}

void IRQ5_Handler(void) {
    exc_return[5] = LR();
    mark('5');
}

/* Records the frame exactly as the core stacked it. */
__attribute__((used)) void record_frame(uint32_t *sp) {
    frame_sp = (uint32_t)sp;
    for (int i = 0; i < 8; i++) frame[i] = sp[i];
    mark('F');
}

/* IRQ 6 handler: hands its MSP (= the frame) to record_frame. */
__attribute__((naked)) void IRQ6_Handler(void) {
    __asm volatile("mrs r0, msp\n push {r4, lr}\n bl record_frame\n pop {r4, pc}\n");
}

/* IRQ 7 handler: returns with a forged EXC_RETURN. */
__attribute__((naked)) void IRQ7_Handler(void) {
    __asm volatile("movw r0, #0xFFF5\n movt r0, #0xFFFF\n bx r0\n");
}

void SVC_Handler(void) {
    mark('S');
    if (scenario == SC_UNPRIVILEGED) {
        exc_return[0] = LR();
        STIR_PEND(2); /* privileged here; taken after this handler returns */
    }
}

void PendSV_Handler(void) { mark('P'); }

void SysTick_Handler(void) {
    if (scenario == SC_PENDSV) {
        mark('T');
        nvic_set_pending(PendSV_IRQn);
        mark('t');
        SysTick->CSR = 0;
    } else if (scenario == SC_SYSTICK_PERIOD) {
        if (ticks < 16) tick_cycles[ticks] = DWT->CYCCNT;
        ticks++;
    } else if (scenario == SC_IRQ_BENCH) {
        /* ~50 instructions of typical ISR work */
        uint32_t acc = ticks;
        for (int i = 0; i < 8; i++) acc = (acc << 3) ^ (acc >> 5) ^ (uint32_t)i;
        trace[0] = (char)acc;
        ticks++;
    }
}

void TIM3_IRQHandler(void) {
    if (level_entries < 16) tick_cycles[level_entries] = DWT->CYCCNT;
    level_entries++;
    mark('T');
    /* Leave UIF set the first time: the line stays high and the IRQ must come back. */
    if (scenario != SC_LEVEL_REPEND || level_entries >= 2) TIM3->SR = TIM_SR_UIF_Msk;
}

/* ---- faults, each in a function of its own so the report can name it ---- */

/* A copy of the vector table in SRAM with IRQ 5's entry broken, then IRQ 5. */
extern void (*const vector_table[16 + NUM_IRQS])(void);
static void prio(int irq, uint8_t p);
static uint32_t ram_vectors[16 + NUM_IRQS] __attribute__((aligned(512)));

__attribute__((noinline)) void broken_vector(uint32_t entry) {
    for (uint32_t i = 0; i < 16 + NUM_IRQS; i++) ram_vectors[i] = (uint32_t)vector_table[i];
    ram_vectors[16 + 5] = entry;
    SCS->VTOR = (uint32_t)ram_vectors;
    __asm volatile("dsb\n isb" ::: "memory");
    prio(5, 0x40);
    STIR_PEND(5);
}

/* Multi-word accesses at an address that is not word-aligned: UsageFault on ARMv7-M. */
volatile uint32_t unaligned_words[4] = {0x11111111u, 0x22222222u, 0x33333333u, 0x44444444u};

__attribute__((noinline)) void fault_unaligned_ldm(void) {
    __asm volatile("adds r3, %0, #2\n ldm r3, {r1, r2}" :: "r"(unaligned_words) : "r1", "r2", "r3",
                   "memory");
}

__attribute__((noinline)) void fault_unaligned_strd(void) {
    __asm volatile("adds r3, %0, #6\n movs r1, #0\n movs r2, #0\n strd r1, r2, [r3]"
                   :: "r"(unaligned_words) : "r1", "r2", "r3", "memory");
}

/* `vmov s0, r0`, encoded by hand: this soft-float build has no FP instructions of its own. */
__attribute__((noinline)) void fault_fp(void) { __asm volatile(".inst.w 0xEE000A10" ::: "memory"); }

__attribute__((noinline)) uint32_t fault_unmapped_read(void) {
    return *(volatile uint32_t *)0x30000000u;
}

__attribute__((noinline)) void fault_flash_write(void) { *(volatile uint32_t *)BANK_A_BASE = 0; }

__attribute__((noinline)) uint32_t fault_bus_error(void) {
    return *(volatile uint32_t *)0x40000800u; /* GPIO page, but no port there */
}

__attribute__((noinline)) void fault_undefined(void) { __asm volatile("udf #7"); }

__attribute__((noinline)) void fault_fetch(void) {
    void (*fn)(void) = (void (*)(void))0x40000001u; /* a peripheral page: execute-never */
    fn();
}

volatile uint32_t recursion_limit = 0xFFFFFFFFu; /* never reached: SRAM runs out first */

__attribute__((noinline)) uint32_t recurse(uint32_t n) {
    volatile uint32_t pad[64];
    pad[n & 63] = n;
    if (n == recursion_limit) return n;
    return recurse(n + 1) + pad[(n + 1) & 63];
}

/* Cycles between two CYCCNT reads around known code. An ISB after each read ends the
 * translated block, so each read sees the count up to and including its ISB. Aligned so that
 * no instruction straddles a 1 KB page, which would also end a block. */
__attribute__((naked, noinline, aligned(256))) uint32_t count_straight(volatile uint32_t *cyccnt) {
    __asm volatile("ldr r1, [r0]\n isb\n"
                   ".rept 100\n nop\n .endr\n"
                   "ldr r2, [r0]\n isb\n subs r0, r2, r1\n bx lr\n");
}

__attribute__((naked, noinline, aligned(64))) uint32_t count_loop(volatile uint32_t *cyccnt) {
    __asm volatile("ldr r1, [r0]\n isb\n movs r3, #10\n"
                   "1: subs r3, #1\n bne 1b\n" /* 10 x 2 instructions */
                   "ldr r2, [r0]\n isb\n subs r0, r2, r1\n bx lr\n");
}

volatile uint32_t counts[2];

/* ---- fault handlers: run only with Machine(faults="firmware") ---- */

volatile uint32_t fault_log[8][6]; /* per fault: IPSR, CFSR, HFSR, BFAR, MMFAR, stacked PC */
volatile uint32_t fault_count;
__attribute__((section(".noinit"))) volatile uint32_t reset_causes; /* SYSCTL.RSTCAUSE at boot */
volatile uint32_t ecc_value[2];
/* Two program units the tests corrupt (ECC single- and double-bit errors). */
__attribute__((aligned(8))) const uint32_t ecc_target[4] = {0x11111111u, 0x22222222u,
                                                             0x33333333u, 0x44444444u};
volatile uint32_t rww_polls[2]; /* BUSY polls until the program ends: same bank, other bank */

/* Log the fault, clear its status, and resume after the faulting instruction (or, for a
 * fetch fault, at the caller). */
void fault_common(uint32_t *frame) {
    uint32_t i = fault_count++;
    if (i < 8) {
        uint32_t ipsr;
        __asm volatile("mrs %0, ipsr" : "=r"(ipsr));
        fault_log[i][0] = ipsr;
        fault_log[i][1] = SCS->CFSR;
        fault_log[i][2] = SCS->HFSR;
        fault_log[i][3] = SCS->BFAR;
        fault_log[i][4] = SCS->MMFAR;
        fault_log[i][5] = frame[6];
    }
    if (scenario == SC_LOCKUP || (scenario == SC_FAULT_IN_BUSFAULT && i == 0)) {
        (void)*(volatile uint32_t *)0x30000004u; /* a fault the handler itself takes */
    }
    uint32_t imprecise = SCS->CFSR & (1u << 10); /* IMPRECISERR: the PC is past the access */
    SCS->CFSR = SCS->CFSR;
    SCS->HFSR = SCS->HFSR;
    uint32_t pc = frame[6];
    if (imprecise) {
        return;
    } else if (pc >= 0x40000000u || fault_log[i < 8 ? i : 7][1] & (1u << 8)) { /* IBUSERR */
        frame[6] = frame[5] & ~1u; /* the fetch failed: return to the caller */
    } else {
        uint16_t hw = *(const volatile uint16_t *)pc;
        frame[6] = pc + ((hw & 0xF800u) >= 0xE800u ? 4u : 2u);
    }
}

#define FAULT_ENTRY(name) \
    __attribute__((naked)) void name(void) { \
        __asm volatile("tst lr, #4\n ite eq\n mrseq r0, msp\n mrsne r0, psp\n b fault_common"); \
    }
FAULT_ENTRY(HardFault_Handler)
FAULT_ENTRY(MemManage_Handler)
FAULT_ENTRY(BusFault_Handler)
FAULT_ENTRY(UsageFault_Handler)

/* Program one unit at `address`; how often the core polled BUSY before it cleared. */
static uint32_t program_and_poll(uint32_t address) {
    FLC->KEY = 0x45670123u;
    FLC->KEY = 0xCDEF89ABu;
    FLC->ADDR = address;
    FLC->DATA0 = 0x12345678u;
    FLC->DATA1 = 0x9ABCDEF0u;
    FLC->CR = (1u << FLC_CR_OP_Pos) | FLC_CR_START_Msk;
    uint32_t polls = 0;
    while (FLC->SR & FLC_SR_BUSY_Msk) polls++;
    FLC->SR = FLC->SR;
    FLC->CR = FLC_CR_LOCK_Msk;
    return polls;
}

/* ---- thread-mode scenario bodies ---- */

static void prio(int irq, uint8_t p) { nvic_set_priority((IRQn_Type)irq, p); nvic_enable((IRQn_Type)irq); }

/* Record where the thread ended up, then sleep for good (the scenario is over). */
__attribute__((noreturn)) static void finish(void) {
    if (scenario != SC_FRAME) sp_after = read_sp();
    control_after = read_control();
    psp_after = read_psp();
    msp_after = read_msp();
    done = 1;
    for (;;) wait_for_interrupt();
}

/* Switch thread mode to the process stack (and maybe unprivileged); never returns. */
__attribute__((noreturn)) static void run_on_process_stack(void (*body)(void), uint32_t control) {
    uint32_t top = (uint32_t)&process_stack[256];
    __asm volatile("msr psp, %0\n msr control, %1\n isb" ::"r"(top), "r"(control) : "memory");
    body();
    finish();
}

static void psp_body(void) {
    STIR_PEND(2);
    mark('t');
}

static void unprivileged_body(void) {
    __asm volatile("svc #1" ::: "memory");
    mark('t');
}

#define LOAD(reg, hi, lo) "movw " reg ", #" lo "\n movt " reg ", #" hi "\n"

/* With SP = 4 mod 8, pend IRQ 6 holding known values in r0-r3/r12, then read them back. */
__attribute__((noinline)) static void frame_body(void) {
    __asm volatile(
        "sub sp, sp, #4\n str sp, [%3]\n"
        LOAD("r0", "0xA0A0", "0xA0A0") LOAD("r1", "0xA1A1", "0xA1A1")
        LOAD("r2", "0xA2A2", "0xA2A2") LOAD("r3", "0xA3A3", "0xA3A3")
        LOAD("r12", "0xACAC", "0xACAC")
        "str %1, [%0]\n dsb\n isb\n" /* STIR = 6, taken at the ISB */
        "nop\n nop\n nop\n nop\n"
        "str r0, [%2, #0]\n str r1, [%2, #4]\n str r2, [%2, #8]\n"
        "str r3, [%2, #12]\n str r12, [%2, #16]\n"
        "str sp, [%4]\n add sp, sp, #4\n"
        :: "r"(&SCS->STIR), "r"(6), "r"(thread_regs), "r"(&sp_before), "r"(&sp_after)
        : "r0", "r1", "r2", "r3", "r12", "memory");
}

int main(void) {
    boot_count++;
    reset_causes = SYSCTL->RSTCAUSE;
    DWT->CTRL = DWT_CTRL_CYCCNTENA_Msk;
    sp_before = read_sp();
    switch (scenario) {
    case SC_PREEMPT: prio(2, 0x80); prio(3, 0x40); STIR_PEND(2); break;
    case SC_NO_PREEMPT_EQUAL: prio(2, 0x80); prio(3, 0x80); STIR_PEND(2); break;
    case SC_NO_PREEMPT_LOWER: prio(2, 0x80); prio(3, 0xC0); STIR_PEND(2); break;
    case SC_NESTING:
        prio(2, 0xC0); prio(3, 0x80); prio(4, 0x40); prio(5, 0x00);
        STIR_PEND(2);
        break;
    case SC_TAIL_CHAIN:
        prio(2, 0x80); prio(3, 0x80); prio(4, 0x40);
        irq_disable();
        STIR_PEND(3); STIR_PEND(2); STIR_PEND(4);
        mark('t');
        irq_enable();
        break;
    case SC_PRIMASK:
        prio(2, 0x80);
        irq_disable();
        STIR_PEND(2);
        mark('t');
        mark('u');
        irq_enable();
        break;
    case SC_BASEPRI:
        prio(2, 0x80); prio(3, 0x40);
        set_basepri(0x80);
        STIR_PEND(2); STIR_PEND(3);
        mark('t');
        set_basepri(0);
        break;
    case SC_PRIGROUP_NO_PREEMPT:
        nvic_set_priority_grouping(5); /* group = bits 7:6, subpriority = bits 5:4 */
        prio(2, 0x50); prio(3, 0x40);   /* same group: 3 may not preempt 2 */
        STIR_PEND(2);
        break;
    case SC_PRIGROUP_ORDER:
        nvic_set_priority_grouping(5);
        prio(2, 0x50); prio(4, 0x40);   /* same group: subpriority picks 4 first */
        irq_disable();
        STIR_PEND(2); STIR_PEND(4);
        irq_enable();
        break;
    case SC_PSP_THREAD:
        prio(2, 0x80); prio(3, 0x40);
        run_on_process_stack(psp_body, 2);
        break;
    case SC_UNPRIVILEGED:
        prio(2, 0x80);
        run_on_process_stack(unprivileged_body, 3);
        break;
    case SC_FRAME:
        prio(6, 0x80);
        frame_body();
        break;
    case SC_FAULT_UNMAPPED_READ: fault_unmapped_read(); break;
    case SC_FAULT_FLASH_WRITE: fault_flash_write(); break;
    case SC_FAULT_UNDEFINED: fault_undefined(); break;
    case SC_FAULT_BUS_ERROR: fault_bus_error(); break;
    case SC_FAULT_FETCH: fault_fetch(); break;
    case SC_FAULT_FP: fault_fp(); break;
    case SC_VECTOR_NO_THUMB: broken_vector((uint32_t)IRQ5_Handler & ~1u); break;
    case SC_VECTOR_ZERO: broken_vector(0); break;
    case SC_FAULT_UNALIGNED_LDM: fault_unaligned_ldm(); break;
    case SC_FAULT_UNALIGNED_STRD: fault_unaligned_strd(); break;
    case SC_FAULT_BAD_EXC_RETURN:
        prio(7, 0x80);
        STIR_PEND(7);
        break;
    case SC_FAULT_STACK_OVERFLOW: recurse(0); break;
    case SC_SYSRESET:
        if (boot_count == 1) system_reset();
        mark('R');
        break;
    case SC_SVC:
        mark('s');
        __asm volatile("svc #0" ::: "memory");
        mark('a');
        break;
    case SC_PENDSV:
        nvic_set_priority(PendSV_IRQn, 0xF0);
        nvic_set_priority(SysTick_IRQn, 0x40);
        systick_start(1000);
        break;
    case SC_WFI_PRIMASK:
        prio(TIM3_IRQn, 0x80);
        irq_disable();
        timer_start(TIM3, 0, 999);
        TIM3->CR1 |= TIM_CR1_OPM_Msk;
        wait_for_interrupt(); /* wakes on the pending IRQ although PRIMASK holds it off */
        mark('w');
        irq_enable();
        break;
    case SC_LEVEL_REPEND:
        prio(TIM3_IRQn, 0x80);
        timer_start(TIM3, 0, 999);
        TIM3->CR1 |= TIM_CR1_OPM_Msk;
        break;
    case SC_TIMER_WHILE_BUSY: {
        /* The timer starts while the core is busy: its interrupt must not wait for a WFI. */
        prio(TIM3_IRQn, 0x80);
        timer_start(TIM3, 0, 1999);
        frame_sp = DWT->CYCCNT; /* reused as "start time" */
        for (volatile uint32_t i = 0; i < 2000; i++) {}
        TIM3->CR1 = 0;
        break;
    }
    case SC_COUNT:
        counts[0] = count_straight(&DWT->CYCCNT);
        counts[1] = count_loop(&DWT->CYCCNT);
        break;
    case SC_UNEXPECTED_IRQ:
        nvic_enable((IRQn_Type)20); /* no handler installed: Default_Handler */
        STIR_PEND(20);
        break;
    case SC_HANDLED_FAULTS:
        SCS->SHCSR |= SCS_SHCSR_MEMFAULTENA_Msk | SCS_SHCSR_BUSFAULTENA_Msk |
                      SCS_SHCSR_USGFAULTENA_Msk;
        fault_flash_write();
        fault_undefined();
        fault_unaligned_ldm();
        fault_bus_error();
        fault_fetch();
        mark('k');
        break;
    case SC_ESCALATED_FAULT: /* no fault enabled in SHCSR: HardFault takes it */
        fault_unmapped_read();
        mark('k');
        break;
    case SC_FAULT_IN_BUSFAULT: /* a fault in the BusFault handler escalates to HardFault */
        SCS->SHCSR |= SCS_SHCSR_BUSFAULTENA_Msk;
        fault_unmapped_read();
        mark('k');
        break;
    case SC_LOCKUP: /* a fault in HardFault locks the core up; the chip resets */
        if (boot_count == 1) fault_unmapped_read();
        mark('k');
        break;
    case SC_ECC_READ:
        SCS->SHCSR |= SCS_SHCSR_BUSFAULTENA_Msk;
        ecc_value[0] = *(const volatile uint32_t *)&ecc_target[0];
        ecc_value[1] = *(const volatile uint32_t *)&ecc_target[2];
        mark('k');
        break;
    case SC_RWW: /* this code runs in bank 0: programming bank 0 stalls it, bank 1 not */
        rww_polls[0] = program_and_poll(0x000F0000u);
        rww_polls[1] = program_and_poll(0x00180000u);
        break;
    case SC_SYSTICK_PERIOD:
    case SC_IRQ_BENCH:
        systick_start(scenario == SC_IRQ_BENCH ? 1200 : CORE_CLOCK_HZ / 1000u);
        break;
    }
    finish();
}
