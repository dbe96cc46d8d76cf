/* Never sleeps: a CRC over a buffer, forever, with a 1 ms SysTick. Measures raw speed. */
#include "hal.h"

volatile uint32_t ms_ticks;
volatile uint32_t crc_rounds;
volatile uint32_t crc_result;
static uint8_t buffer[256];

void SysTick_Handler(void) { ms_ticks++; }

static uint32_t crc32(const uint8_t *data, uint32_t len, uint32_t crc) {
    for (uint32_t i = 0; i < len; i++) {
        crc ^= data[i];
        for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xEDB88320u & -(crc & 1u));
    }
    return crc;
}

int main(void) {
    for (uint32_t i = 0; i < sizeof buffer; i++) buffer[i] = (uint8_t)(i * 7u);
    systick_start(CORE_CLOCK_HZ / 1000u);
    uint32_t crc = 0xFFFFFFFFu;
    for (;;) {
        crc = crc32(buffer, sizeof buffer, crc);
        crc_result = crc;
        crc_rounds++;
    }
}
