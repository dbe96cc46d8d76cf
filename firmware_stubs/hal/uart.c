#include "uart.h"

void uart_init(USART_Type *uart, uint32_t clock_hz, uint32_t baud) {
    uart->CR1 = 0;
    uart->BRR = (clock_hz + baud / 2u) / baud;
    uart->CR1 = USART_CR1_UE_Msk | USART_CR1_TE_Msk | USART_CR1_RE_Msk;
}

void uart_putc(USART_Type *uart, char c) {
    while (!(uart->SR & USART_SR_TXE_Msk)) {
    }
    uart->DR = (uint8_t)c;
}

void uart_puts(USART_Type *uart, const char *s) {
    while (*s) uart_putc(uart, *s++);
}

void uart_put_u32(USART_Type *uart, uint32_t value) {
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value);
    while (n) uart_putc(uart, digits[--n]);
}

void uart_flush(USART_Type *uart) {
    while (!(uart->SR & USART_SR_TC_Msk)) {
    }
}
