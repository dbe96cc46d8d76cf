/*
 * First application for the ASILB-M4 board: a 1 ms scheduler tick with a real workload, a
 * 10 kHz control timer at higher priority that preempts it, GPIO outputs, and a main loop
 * that sleeps in WFI between interrupts.
 *
 *   PA0  heartbeat: toggles every heartbeat_period_ms (500 ms: a 1 Hz blink)
 *   PA1  control output: toggles on every TIM2 update (5 kHz square wave)
 *   PB0  high while the 1 ms task runs
 */
#include "hal.h"

#define TICK_HZ 1000u
#define TASK_WORK 3000u /* bit steps of the 1 ms task's CRC: ~15k cycles, longer than TIM2's period */

volatile uint32_t heartbeat_period_ms = 500; /* initialised data: copied from flash at boot */
volatile uint32_t ms_ticks;
volatile uint32_t tim2_updates;
volatile uint32_t tim2_preemptions; /* TIM2 arrived while the 1 ms task was running */
volatile uint32_t main_wakeups;
volatile uint32_t filter_state;
static volatile uint32_t in_task;

void SysTick_Handler(void) {
    ms_ticks++;
    gpio_set(GPIOB, 0);
    in_task = 1;
    uint32_t acc = filter_state;
    for (uint32_t i = 0; i < TASK_WORK; i++) acc = (acc >> 1) ^ (0xEDB88320u & -(acc & 1u)) ^ i;
    filter_state = acc;
    in_task = 0;
    gpio_clear(GPIOB, 0);
    if (ms_ticks % heartbeat_period_ms == 0) gpio_toggle(GPIOA, 0);
}

void TIM2_IRQHandler(void) {
    TIM2->SR = TIM_SR_UIF_Msk; /* write 1 to clear: drops the IRQ line */
    tim2_updates++;
    if (in_task) tim2_preemptions++;
    gpio_toggle(GPIOA, 1);
}

int main(void) {
    gpio_output(GPIOA, 0);
    gpio_output(GPIOA, 1);
    gpio_output(GPIOB, 0);
    nvic_set_priority(SysTick_IRQn, 0x80);
    nvic_set_priority(TIM2_IRQn, 0x40); /* lower number = higher priority: preempts SysTick */
    nvic_enable(TIM2_IRQn);
    timer_start(TIM2, 0, CORE_CLOCK_HZ / 10000u - 1u);
    systick_start(CORE_CLOCK_HZ / TICK_HZ);
    for (;;) {
        wait_for_interrupt();
        main_wakeups++;
    }
}
