/* The flash controller (FLC): unlock, program one 8-byte unit, erase a sector; polled. */
#include "boot.h"

#define FLC_KEY1 0x45670123u
#define FLC_KEY2 0xCDEF89ABu
#define FLC_OP_PROGRAM 1u
#define FLC_OP_ERASE 2u
#define FLC_FLAGS (FLC_SR_EOP_Msk | FLC_ERRORS | FLC_SR_ECCC_Msk | FLC_SR_ECCD_Msk)
#define BOOTLOADER_SECTOR_SIZE (BANK_A_BASE - BOOTLOADER_BASE)
#define SECTOR_SIZE (FLC_SECTOR_KB * 1024u)

/* Sector 0 is the bootloader's partition, then 16 KB sectors to the end of flash. */
uint32_t flc_sector_of(uint32_t address) {
    uint32_t offset = address - FLASH_BASE;
    if (offset < BOOTLOADER_SECTOR_SIZE) return 0;
    return 1u + (offset - BOOTLOADER_SECTOR_SIZE) / SECTOR_SIZE;
}

/* The keys only while locked: a key written to an unlocked controller locks it until reset. */
int flc_unlock(void) {
    if (FLC->CR & FLC_CR_LOCK_Msk) {
        FLC->KEY = FLC_KEY1;
        FLC->KEY = FLC_KEY2;
    }
    return (FLC->CR & FLC_CR_LOCK_Msk) ? -1 : 0;
}

void flc_lock(void) { FLC->CR = FLC_CR_LOCK_Msk; }

uint8_t flc_sleep_on_irq;

void boot_sleep_until(volatile const uint32_t *reg, uint32_t mask, IRQn_Type irq) {
    uint32_t primask, basepri;
    /* PRIMASK: no handler runs; BASEPRI: the interrupts at the usual priorities (0x40 and
     * lower) do not even wake the core, only `irq` at priority 0 does, so a tick pending
     * meanwhile does not turn the wait into a busy loop. */
    __asm volatile("mrs %0, primask\n cpsid i\n mrs %1, basepri" : "=r"(primask), "=r"(basepri)
                   ::"memory");
    __asm volatile("msr basepri, %0" ::"r"(0x40u) : "memory");
    ((volatile uint8_t *)&SCS->IPR[0])[irq] = 0;
    SCS->ISER[irq >> 5] = 1u << (irq & 31);
    for (;;) {
        SCS->ICPR[irq >> 5] = 1u << (irq & 31); /* a level still asserted pends again */
        if (*reg & mask) break;
        __asm volatile("wfi" ::: "memory");
    }
    SCS->ICER[irq >> 5] = 1u << (irq & 31);
    SCS->ICPR[irq >> 5] = 1u << (irq & 31);
    __asm volatile("msr basepri, %0\n msr primask, %1" ::"r"(basepri), "r"(primask) : "memory");
}

static int run(uint32_t cr, int long_op) {
    FLC->SR = FLC_FLAGS;
    if (flc_sleep_on_irq || !long_op) { /* a program is microseconds: no tick is lost */
        FLC->CR = cr | FLC_CR_START_Msk | FLC_CR_EOPIE_Msk | FLC_CR_ERRIE_Msk;
        boot_sleep_until(&FLC->SR, FLC_SR_EOP_Msk | FLC_ERRORS, FLC_IRQn);
        FLC->CR = 0; /* interrupt enables off (LOCK is not cleared by writing 0) */
    } else {
        FLC->CR = cr | FLC_CR_START_Msk;
        /* An erase takes milliseconds: sleep between the application's own interrupts. */
        while (FLC->SR & FLC_SR_BUSY_Msk) __asm volatile("wfi" ::: "memory");
    }
    uint32_t sr = FLC->SR;
    if (sr & FLC_ERRORS) return (int)(sr & FLC_ERRORS);
    return (sr & FLC_SR_EOP_Msk) ? 0 : -1;
}

int flc_program(uint32_t address, uint32_t lo, uint32_t hi) {
    if (flc_unlock() != 0) return (int)FLC_SR_LOCKERR_Msk;
    FLC->ADDR = address;
    FLC->DATA0 = lo;
    FLC->DATA1 = hi;
    return run(FLC_OP_PROGRAM << FLC_CR_OP_Pos, 0);
}

int flc_erase_sector(uint32_t index) {
    if (flc_unlock() != 0) return (int)FLC_SR_LOCKERR_Msk;
    return run(FLC_OP_ERASE << FLC_CR_OP_Pos | index << FLC_CR_SECTOR_Pos, 1);
}
