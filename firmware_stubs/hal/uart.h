/* A tiny polling UART driver (8N1) over the generated register header. */
#ifndef UART_H
#define UART_H

#include <stdint.h>
#include "asilb_m4.h"

/* Enable transmitter and receiver at `baud`, for a USART clocked at `clock_hz`
 * (USART1_CLOCK_HZ, ...): BRR = clock / baud, rounded (16x oversampling). */
void uart_init(USART_Type *uart, uint32_t clock_hz, uint32_t baud);
/* Wait until the transmit holding register is free (SR.TXE), then write the byte. */
void uart_putc(USART_Type *uart, char c);
void uart_puts(USART_Type *uart, const char *s);
/* An unsigned number in decimal. */
void uart_put_u32(USART_Type *uart, uint32_t value);
/* Wait until the last byte has left the shift register (SR.TC). */
void uart_flush(USART_Type *uart);

#endif
