#include "hal.h"

void nvic_enable(IRQn_Type irq) { SCS->ISER[irq >> 5] = 1u << (irq & 31); }
void nvic_disable(IRQn_Type irq) { SCS->ICER[irq >> 5] = 1u << (irq & 31); }

void nvic_set_pending(IRQn_Type irq) {
    if (irq >= 0) SCS->ISPR[irq >> 5] = 1u << (irq & 31);
    else if (irq == PendSV_IRQn) SCS->ICSR = SCS_ICSR_PENDSVSET_Msk;
    else if (irq == SysTick_IRQn) SCS->ICSR = SCS_ICSR_PENDSTSET_Msk;
}

/* Priorities are bytes; the top 4 bits are implemented. */
void nvic_set_priority(IRQn_Type irq, uint8_t priority) {
    volatile uint8_t *p;
    if (irq >= 0) p = (volatile uint8_t *)&SCS->IPR[0] + irq;
    else p = (volatile uint8_t *)&SCS->SHPR1 + (irq + 16 - 4);
    *p = priority;
}

void nvic_set_priority_grouping(uint32_t prigroup) {
    SCS->AIRCR = (0x05FAu << SCS_AIRCR_VECTKEY_Pos) | ((prigroup & 7u) << SCS_AIRCR_PRIGROUP_Pos);
}

void systick_start(uint32_t period_cycles) {
    SysTick->RVR = period_cycles - 1u;
    SysTick->CVR = 0;
    SysTick->CSR = SysTick_CSR_ENABLE_Msk | SysTick_CSR_TICKINT_Msk | SysTick_CSR_CLKSOURCE_Msk;
}

void timer_start(TIM_Type *tim, uint32_t prescaler, uint32_t reload) {
    tim->PSC = prescaler;
    tim->ARR = reload;
    tim->CNT = 0;
    tim->DIER = TIM_DIER_UIE_Msk;
    tim->CR1 = TIM_CR1_CEN_Msk;
}

void system_reset(void) {
    __asm volatile("dsb" ::: "memory");
    SCS->AIRCR = (0x05FAu << SCS_AIRCR_VECTKEY_Pos) | SCS_AIRCR_SYSRESETREQ_Msk;
    for (;;) __asm volatile("nop");
}
