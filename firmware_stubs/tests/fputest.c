/*
 * FP context across exceptions, for the Cortex-M4F board (built -mfloat-abi=hard).
 * The test selects a scenario in `scenario` (kept across resets) and reads the results:
 *   SC_NESTED: FP work in main while a timer handler and a nested higher-priority handler
 *              both do FP work and clobber S0-S15 and FPSCR; main's result must not change.
 *   SC_SWITCH: two threads doing FP work, switched by an RTOS-style PendSV handler that saves
 *              S16-S31 when EXC_RETURN bit 4 says the thread had an FP context.
 *   SC_NOCP:   an FP instruction after CPACR turned the FPU off again.
 */
#include "hal.h"

enum { SC_NESTED, SC_SWITCH, SC_NOCP, SC_COUNT };

__attribute__((section(".noinit"))) volatile uint32_t scenario;

volatile uint32_t done;
volatile float reference[2], with_interrupts;
volatile uint32_t timer_entries, nested_entries, handler_errors;
volatile uint32_t timer_exc_return, nested_exc_return, fpcar_in_nested, frame_in_nested;
volatile uint32_t switches, thread_ok[2], thread_bad[2];

#define WORK 400

/* Enough live values to keep many S registers busy across the loop. */
__attribute__((noinline)) static float fp_work(uint32_t n, float seed) {
    float a = seed, b = 1.5f, c = 0.25f, d = 3.0f, acc = 0.0f;
    for (uint32_t i = 1; i <= n; i++) {
        a = a * 1.0001f + 0.5f;
        b = b * 0.9999f + a / (float)i;
        c = (c + b) / (1.0f + c * 0.5f);
        d = d - c * 0.001f;
        acc += a * 0.001f + b * 0.01f + c + d * 0.1f;
    }
    return acc;
}

/* Wreck every caller-saved FP register and switch FPSCR to round towards zero. */
static void clobber_fp(uint32_t junk) {
    __asm volatile(
        "vmov s0, %0\n vmov s1, %0\n vmov s2, %0\n vmov s3, %0\n"
        "vmov s4, %0\n vmov s5, %0\n vmov s6, %0\n vmov s7, %0\n"
        "vmov s8, %0\n vmov s9, %0\n vmov s10, %0\n vmov s11, %0\n"
        "vmov s12, %0\n vmov s13, %0\n vmov s14, %0\n vmov s15, %0\n"
        "vmsr fpscr, %1\n"
        :: "r"(junk), "r"(0xF0C00000u)
        : "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "s12",
          "s13", "s14", "s15", "memory");
}

#define LR() ((uint32_t)__builtin_return_address(0))

static float nested_expected, timer_expected;

void IRQ3_Handler(void) {
    nested_exc_return = LR();
    uint32_t sp;
    __asm volatile("mrs %0, msp" : "=r"(sp));
    frame_in_nested = sp;
    fpcar_in_nested = FPU->FPCAR;
    if (fp_work(50, 7.0f) != nested_expected) handler_errors++;
    clobber_fp(0x7F800001u); /* a signalling NaN everywhere, rounding towards zero */
    nested_entries++;
}

void TIM2_IRQHandler(void) {
    TIM2->SR = 0;
    if (timer_entries == 0) timer_exc_return = LR();
    float mine = fp_work(20, 2.0f);
    if ((timer_entries & 3) == 1) {
        SCS->STIR = 3; /* the nested handler preempts right here, with our FP state live */
        __asm volatile("dsb\n isb" ::: "memory");
    }
    /* After the nested handler: our registers and rounding mode are back. */
    if (mine != timer_expected || fp_work(20, 2.0f) != timer_expected) handler_errors++;
    clobber_fp(0x12345678u + timer_entries);
    timer_entries++;
}

/* ---- SC_SWITCH: two threads, PendSV switches them (the FreeRTOS Cortex-M4F shape) ---- */

static uint32_t stacks[2][512] __attribute__((aligned(8)));
uint32_t saved_psp[2];
uint32_t current_thread;

__attribute__((naked)) void PendSV_Handler(void) {
    __asm volatile(
        "mrs r0, psp\n"
        "tst lr, #0x10\n"
        "it eq\n"
        "vstmdbeq r0!, {s16-s31}\n"
        "stmdb r0!, {r4-r11, lr}\n"
        "ldr r1, =current_thread\n"
        "ldr r2, [r1]\n"
        "ldr r3, =saved_psp\n"
        "str r0, [r3, r2, lsl #2]\n"
        "eor r2, r2, #1\n"
        "str r2, [r1]\n"
        "ldr r0, [r3, r2, lsl #2]\n"
        "ldmia r0!, {r4-r11, lr}\n"
        "tst lr, #0x10\n"
        "it eq\n"
        "vldmiaeq r0!, {s16-s31}\n"
        "msr psp, r0\n"
        "bx lr\n");
}

void SysTick_Handler(void) {
    switches++;
    SCS->ICSR = SCS_ICSR_PENDSVSET_Msk;
}

/* S16-S31 are callee-saved: fill some with a pattern, spin (switches land here), check. */
__attribute__((noinline)) static uint32_t callee_saved_survive(uint32_t pattern) {
    uint32_t bad;
    __asm volatile(
        "vmov s16, %1\n add r1, %1, #1\n vmov s23, r1\n add r1, %1, #2\n vmov s31, r1\n"
        "movw r2, #3000\n"
        "1: subs r2, #1\n bne 1b\n"
        "movs %0, #0\n"
        "vmov r1, s16\n cmp r1, %1\n it ne\n addne %0, #1\n"
        "vmov r1, s23\n sub r1, #1\n cmp r1, %1\n it ne\n addne %0, #1\n"
        "vmov r1, s31\n sub r1, #2\n cmp r1, %1\n it ne\n addne %0, #1\n"
        : "=&r"(bad) : "r"(pattern) : "r1", "r2", "s16", "s23", "s31", "cc");
    return bad;
}

static void thread(uint32_t id) {
    for (;;) {
        float r = fp_work(WORK, 1.0f + (float)id);
        uint32_t bad = callee_saved_survive(0x40000000u + id * 0x1000u);
        if (r == reference[id] && bad == 0) thread_ok[id]++;
        else thread_bad[id]++;
    }
}

static void thread1(void) { thread(1); }

static void start_threads(void) {
    /* Thread 1 starts from a made-up frame: r4-r11 and EXC_RETURN (thread, PSP, no FP),
     * then the basic frame with its entry point. */
    uint32_t *sp = &stacks[1][512];
    *--sp = 1u << 24;             /* xPSR: Thumb */
    *--sp = (uint32_t)thread1;    /* PC */
    *--sp = 0;                    /* LR */
    for (int i = 0; i < 5; i++) *--sp = 0; /* r12, r3-r0 */
    *--sp = 0xFFFFFFFDu;          /* EXC_RETURN saved by the switcher */
    for (int i = 0; i < 8; i++) *--sp = 0; /* r11-r4 */
    saved_psp[1] = (uint32_t)sp;
    current_thread = 0;
    nvic_set_priority(PendSV_IRQn, 0xF0);
    systick_start(12007); /* ~100 us, an odd count so switches land anywhere */
    /* Thread 0 is main itself, moved onto the process stack. */
    uint32_t top = (uint32_t)&stacks[0][512];
    __asm volatile("msr psp, %0\n mrs r0, control\n orr r0, r0, #2\n msr control, r0\n isb"
                   :: "r"(top) : "r0", "memory");
    thread(0);
}

__attribute__((noinline)) static void fp_without_cpacr(void) {
    __asm volatile("vmov s0, %0" :: "r"(1u) : "s0");
}

int main(void) {
    if (scenario == SC_NOCP) {
        COPROC->CPACR = 0; /* the startup code enabled the FPU: turn it off again */
        __asm volatile("dsb\n isb" ::: "memory");
        fp_without_cpacr();
        done = 1;
        for (;;) wait_for_interrupt();
    }
    reference[0] = fp_work(WORK, 1.0f);
    reference[1] = fp_work(WORK, 2.0f);
    nested_expected = fp_work(50, 7.0f);
    timer_expected = fp_work(20, 2.0f);
    if (scenario == SC_SWITCH) start_threads();

    nvic_set_priority(TIM2_IRQn, 0x80);
    nvic_set_priority(3, 0x40);
    nvic_enable(TIM2_IRQn);
    nvic_enable(3);
    timer_start(TIM2, 0, 997); /* an odd period: interrupts land on any instruction */
    static volatile float seed = 1.0f; /* read each round: the work cannot be hoisted */
    float r = 0.0f;
    for (int round = 0; round < 40; round++) {
        r = fp_work(WORK, seed);
        if (r != reference[0]) break;
    }
    with_interrupts = r;
    TIM2->CR1 = 0;
    done = 1;
    for (;;) wait_for_interrupt();
}
