/* A tiny HAL over the generated register header. */
#ifndef HAL_H
#define HAL_H

#include <stdint.h>
#include "asilb_m4.h"

static inline void irq_disable(void) { __asm volatile("cpsid i" ::: "memory"); }
static inline void irq_enable(void) { __asm volatile("cpsie i" ::: "memory"); }
static inline void wait_for_interrupt(void) { __asm volatile("wfi" ::: "memory"); }
static inline void set_basepri(uint32_t v) { __asm volatile("msr basepri, %0" ::"r"(v) : "memory"); }

void nvic_enable(IRQn_Type irq);
void nvic_disable(IRQn_Type irq);
void nvic_set_pending(IRQn_Type irq);
void nvic_set_priority(IRQn_Type irq, uint8_t priority);
void nvic_set_priority_grouping(uint32_t prigroup);
void systick_start(uint32_t period_cycles);
void timer_start(TIM_Type *tim, uint32_t prescaler, uint32_t reload);
void system_reset(void);

static inline void gpio_output(GPIO_Type *port, uint32_t pin) { port->DIR |= 1u << pin; }
static inline void gpio_set(GPIO_Type *port, uint32_t pin) { port->BSRR = 1u << pin; }
static inline void gpio_clear(GPIO_Type *port, uint32_t pin) { port->BSRR = 1u << (pin + 16); }
static inline void gpio_toggle(GPIO_Type *port, uint32_t pin) { port->TOGGLE = 1u << pin; }
static inline void gpio_write(GPIO_Type *port, uint32_t pin, int on) {
    if (on) gpio_set(port, pin); else gpio_clear(port, pin);
}
/* Drive the pins in `mask` to `levels` with one BSRR write (set and reset at once). */
static inline void gpio_write_masked(GPIO_Type *port, uint32_t mask, uint32_t levels) {
    port->BSRR = (levels & mask) | ((~levels & mask) << 16);
}
static inline int gpio_read(GPIO_Type *port, uint32_t pin) { return (port->IDR >> pin) & 1u; }

#endif
