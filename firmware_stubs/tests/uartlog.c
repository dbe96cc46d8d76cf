/* Prints through USART1 at 115200 baud: "boot", then "tick N" every 10 ms of SysTick. */
#include "hal.h"
#include "uart.h"

#define TICK_HZ 1000u
#define LOG_PERIOD_MS 10u

volatile uint32_t ms_ticks;
volatile uint32_t lines_logged;

void SysTick_Handler(void) { ms_ticks++; }

int main(void) {
    uart_init(USART1, USART1_CLOCK_HZ, 115200u);
    uart_puts(USART1, "boot\n");
    lines_logged = 1;
    systick_start(CORE_CLOCK_HZ / TICK_HZ);
    uint32_t next = LOG_PERIOD_MS, count = 0;
    for (;;) {
        wait_for_interrupt();
        if (ms_ticks >= next) {
            next += LOG_PERIOD_MS;
            uart_puts(USART1, "tick ");
            uart_put_u32(USART1, ++count);
            uart_putc(USART1, '\n');
            lines_logged++;
        }
    }
}
