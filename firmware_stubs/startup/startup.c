/* Startup for the ASILB-M4 board: vector table, .data/.bss initialisation, then main(). */
#include <stdint.h>
#include "asilb_m4.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern int main(void);

void Reset_Handler(void);
void Default_Handler(void);

#define WEAK_ALIAS __attribute__((weak, alias("Default_Handler")))
void NMI_Handler(void) WEAK_ALIAS;
void HardFault_Handler(void) WEAK_ALIAS;
void MemManage_Handler(void) WEAK_ALIAS;
void BusFault_Handler(void) WEAK_ALIAS;
void UsageFault_Handler(void) WEAK_ALIAS;
void SVC_Handler(void) WEAK_ALIAS;
void DebugMon_Handler(void) WEAK_ALIAS;
void PendSV_Handler(void) WEAK_ALIAS;
void SysTick_Handler(void) WEAK_ALIAS;
void TIM2_IRQHandler(void) WEAK_ALIAS;
void TIM3_IRQHandler(void) WEAK_ALIAS;
void IRQ2_Handler(void) WEAK_ALIAS;
void IRQ3_Handler(void) WEAK_ALIAS;
void IRQ4_Handler(void) WEAK_ALIAS;
void IRQ5_Handler(void) WEAK_ALIAS;
void IRQ6_Handler(void) WEAK_ALIAS;
void IRQ7_Handler(void) WEAK_ALIAS;
void MCAN0_INT0_IRQHandler(void) WEAK_ALIAS;
void MCAN0_INT1_IRQHandler(void) WEAK_ALIAS;
void MCAN1_INT0_IRQHandler(void) WEAK_ALIAS;
void MCAN1_INT1_IRQHandler(void) WEAK_ALIAS;
void USART1_IRQHandler(void) WEAK_ALIAS;
void USART2_IRQHandler(void) WEAK_ALIAS;

typedef void (*vector_t)(void);

__attribute__((section(".isr_vector"), used))
const vector_t vector_table[16 + NUM_IRQS] = {
    (vector_t)&_estack,
    Reset_Handler,
    NMI_Handler,
    HardFault_Handler,
    MemManage_Handler,
    BusFault_Handler,
    UsageFault_Handler,
    0, 0, 0, 0,
    SVC_Handler,
    DebugMon_Handler,
    0,
    PendSV_Handler,
    SysTick_Handler,
    [16 + TIM2_IRQn] = TIM2_IRQHandler,
    [16 + TIM3_IRQn] = TIM3_IRQHandler,
    [16 + 2] = IRQ2_Handler,
    [16 + 3] = IRQ3_Handler,
    [16 + 4] = IRQ4_Handler,
    [16 + 5] = IRQ5_Handler,
    [16 + 6] = IRQ6_Handler,
    [16 + 7] = IRQ7_Handler,
    [16 + MCAN0_INT0_IRQn] = MCAN0_INT0_IRQHandler,
    [16 + MCAN0_INT1_IRQn] = MCAN0_INT1_IRQHandler,
    [16 + MCAN1_INT0_IRQn] = MCAN1_INT0_IRQHandler,
    [16 + MCAN1_INT1_IRQn] = MCAN1_INT1_IRQHandler,
    [16 + USART1_IRQn] = USART1_IRQHandler,
    [16 + USART2_IRQn] = USART2_IRQHandler,
    [16 + 14 ... 16 + NUM_IRQS - 1] = Default_Handler,
};

void Reset_Handler(void) {
#if defined(__ARM_FP)
    /* Hard-float builds: enable CP10/CP11 before any FP instruction, as CMSIS SystemInit does. */
    COPROC->CPACR |= COPROC_CPACR_CP10_Msk | COPROC_CPACR_CP11_Msk;
    __asm volatile("dsb\n isb" ::: "memory");
#endif
    uint32_t *src = &_sidata;
    for (uint32_t *dst = &_sdata; dst < &_edata;) *dst++ = *src++;
    for (uint32_t *dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    main();
    for (;;) __asm volatile("wfi");
}

/* An unexpected exception: stop where a debugger (and the harness) can see it. */
void Default_Handler(void) {
    for (;;) __asm volatile("bkpt #0");
}
