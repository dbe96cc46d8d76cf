/*
 * The A/B bootloader of the ASILB-M4 board (the BOOTLOADER partition, 64 KB at 0).
 *
 * At each reset it reads and clears SYSCTL.RSTCAUSE, reads the newest boot record (boot.h),
 * checks both banks (header, load address, size, AES-CMAC through the security unit with the
 * key in slot 0, vector table, security counter against the stored one, the tag of an image
 * reverted before) and decides, with K = BOOT_TRIAL_ATTEMPTS:
 *   1. a trial bank in the record: after K attempts revert: a record with the trial cleared
 *      and the image's tag as rejected (so it is not tried again); when it no longer verifies,
 *      revert at once (the tag unchanged: a damaged copy is not a bad image); else a record
 *      with attempts + 1, and boot the trial bank;
 *   2. else, the other bank valid and newer than the confirmed one (or the confirmed one no
 *      longer valid): a record making it the trial bank, attempts 1, and boot it;
 *   3. else the confirmed bank if valid; no record at all (factory state): the newest valid
 *      bank, as confirmed, nothing written; else wait for an image over UDS (programming.c).
 * A programming request from the application (boot.h) skips all this: the UDS server runs.
 * Then it writes the boot report at the start of SRAM, starts the watchdog (~200 ms), and
 * jumps (VTOR, MSP, reset vector). One line per decision on USART1 (115200 baud).
 */
#include "../boot/boot.h"
#include "bootloader.h"
#include "hal.h"
#include "uart.h"

#define IMAGE_KEY_SLOT 0u
#define WDG_KEY_UNLOCK 0xC0DEu
#define WDG_KEY_START 0x57A7u
#define WDG_KEY_SERVICE_1 0xA5A5u
#define WDG_KEY_SERVICE_2 0x5A5Au
#define WDG_PRESCALER 2u       /* 32 kHz / 4: 8 kHz ticks */
#define WDG_TIMEOUT_TICKS 1600u /* 200 ms */
#define MAX_BODY (BOOT_BANK_SIZE - BOOT_HEADER_SIZE - BOOT_MAC_SIZE)

typedef struct {
    uint8_t verdict;
    uint8_t header_ok; /* magic, header version and size right: version and counter known */
    uint8_t tag_ok;    /* the trailer was read: tag known */
    boot_image_header_t header;
    uint8_t tag[BOOT_TAG_SIZE];
} bank_t;

static bank_t banks[BOOT_BANKS];

static const char *const verdict_text[] = {
    "unchecked", "ok", "empty", "bad magic", "bad header", "wrong load address", "oversized",
    "ECC error", "bus error in CMAC", "bad CMAC", "old security counter", "reverted before",
    "bad vector table", "no key",
};

/* ---- the UART log: the core sleeps while a character goes out ---- */

static void log_putc(char c) {
    USART1->CR1 |= USART_CR1_TXEIE_Msk;
    boot_sleep_until(&USART1->SR, USART_SR_TXE_Msk, USART1_IRQn);
    USART1->CR1 &= ~USART_CR1_TXEIE_Msk;
    USART1->DR = (uint8_t)c;
}

static void log_puts(const char *s) {
    while (*s) log_putc(*s++);
}

static void log_u32(uint32_t value) {
    char digits[10];
    int n = 0;
    do {
        digits[n++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value);
    while (n) log_putc(digits[--n]);
}

static void log_flush(void) {
    USART1->CR1 |= USART_CR1_TCIE_Msk;
    boot_sleep_until(&USART1->SR, USART_SR_TC_Msk, USART1_IRQn);
    USART1->CR1 &= ~USART_CR1_TCIE_Msk;
}

/* "boot: bank B 1.1.0" (the version when the header could be read) */
static void log_bank(uint32_t b) {
    log_puts(b == BOOT_BANK_A ? "boot: bank A" : "boot: bank B");
    if (banks[b].header_ok) {
        uint32_t v = banks[b].header.version;
        log_putc(' ');
        log_u32(v >> 24);
        log_putc('.');
        log_u32(v >> 16 & 0xFFu);
        log_putc('.');
        log_u32(v & 0xFFFFu);
    }
}

static void log_causes(uint32_t causes) {
    static const char *const names[] = {" POR", " SW", " WDG", " PIN", " LOCKUP"};
    log_puts("boot: reset");
    for (uint32_t i = 0; i < 5u; i++) {
        if (causes & (1u << i)) log_puts(names[i]);
    }
    log_putc('\n');
}

/* ---- the watchdog ---- */

static int wdg_running(void) { return (WDG->STATUS & WDG_STATUS_RUNNING_Msk) != 0; }

static void wdg_service(void) {
    if (!wdg_running()) return;
    WDG->KEY = WDG_KEY_SERVICE_1;
    WDG->KEY = WDG_KEY_SERVICE_2;
}

static void wdg_start(void) {
    if (wdg_running()) { /* started by hardware: not configurable, serviced */
        wdg_service();
        return;
    }
    WDG->KEY = WDG_KEY_UNLOCK;
    WDG->CFG = WDG_TIMEOUT_TICKS << WDG_CFG_TIMEOUT_Pos;
    WDG->PRESCALER = WDG_PRESCALER << WDG_PRESCALER_PR_Pos;
    WDG->EWI = 0;
    WDG->KEY = WDG_KEY_START;
}

/* ---- image checks ---- */

/* AES-CMAC of [src, src + length) with the image key into mac[16]: a verdict. */
static uint8_t cmac(uint32_t src, uint32_t length, uint8_t mac[BOOT_MAC_SIZE]) {
    uint32_t errors = sec_cmac(IMAGE_KEY_SLOT, src, length, mac);
    if (errors & SEC_STATUS_ERR_SLOT_EMPTY_Msk) return BOOT_VERDICT_NO_KEY;
    if (errors & SEC_STATUS_ERR_BUS_Msk) return BOOT_VERDICT_BUS_CMAC;
    return errors ? BOOT_VERDICT_BAD_HEADER : BOOT_VERDICT_OK;
}

/* Everything about an image but the stored state (counter, rejected tag). */
static uint8_t check_image(uint32_t b) {
    bank_t *k = &banks[b];
    uint32_t base = boot_bank_base(b);
    boot_image_header_t *h = &k->header;
    k->header_ok = k->tag_ok = 0;
    if (probe_read_bytes(base, h, sizeof *h) != 0) return BOOT_VERDICT_ECC;
    if (h->magic == 0xFFFFFFFFu) return BOOT_VERDICT_EMPTY;
    if (h->magic != BOOT_IMAGE_MAGIC) return BOOT_VERDICT_BAD_MAGIC;
    if (h->header_version != BOOT_IMAGE_HEADER_VERSION || h->header_size != BOOT_HEADER_SIZE) {
        return BOOT_VERDICT_BAD_HEADER;
    }
    k->header_ok = 1;
    if (h->body_size == 0) return BOOT_VERDICT_BAD_HEADER;
    if (h->load_address != base + BOOT_HEADER_SIZE) return BOOT_VERDICT_WRONG_LOAD;
    if (h->body_size > MAX_BODY) return BOOT_VERDICT_OVERSIZED;
    uint32_t signed_length = BOOT_HEADER_SIZE + h->body_size;
    uint8_t trailer[BOOT_MAC_SIZE], mac[BOOT_MAC_SIZE];
    if (probe_read_bytes(base + signed_length, trailer, sizeof trailer) != 0) {
        return BOOT_VERDICT_ECC;
    }
    for (uint32_t i = 0; i < BOOT_TAG_SIZE; i++) k->tag[i] = trailer[i];
    k->tag_ok = 1;
    uint8_t verdict = cmac(base, signed_length, mac);
    if (verdict != BOOT_VERDICT_OK) return verdict;
    uint8_t diff = 0;
    for (uint32_t i = 0; i < BOOT_MAC_SIZE; i++) diff |= (uint8_t)(mac[i] ^ trailer[i]);
    if (diff != 0) return BOOT_VERDICT_BAD_CMAC;
    uint32_t sp, pc, load = h->load_address;
    if (probe_read32(load, &sp) != 0 || probe_read32(load + 4u, &pc) != 0) {
        return BOOT_VERDICT_ECC;
    }
    if (sp <= SRAM_BASE || sp > SRAM_BASE + SRAM_SIZE || (sp & 3u) != 0) {
        return BOOT_VERDICT_BAD_VECTORS;
    }
    if (!(pc & 1u) || (pc & ~1u) < load || (pc & ~1u) >= load + h->body_size) {
        return BOOT_VERDICT_BAD_VECTORS;
    }
    return BOOT_VERDICT_OK;
}

static int same_tag(const uint8_t *a, const uint8_t *b) {
    for (uint32_t i = 0; i < BOOT_TAG_SIZE; i++) {
        if (a[i] != b[i]) return 0;
    }
    return 1;
}

/* The verdict with the stored state: the counter, and for a bank that is not the confirmed
 * one, the tag of an image reverted before. */
static uint8_t judge(uint32_t b, const boot_record_t *s, int have_record) {
    uint8_t verdict = check_image(b);
    if (verdict != BOOT_VERDICT_OK) return verdict;
    if (banks[b].header.security_counter < s->counter) return BOOT_VERDICT_OLD_COUNTER;
    if (have_record && b != s->confirmed && same_tag(banks[b].tag, s->tag)) {
        return BOOT_VERDICT_REJECTED;
    }
    return BOOT_VERDICT_OK;
}

/* ---- the jump ---- */

static void __attribute__((noreturn)) jump(uint32_t b) {
    uint32_t load = boot_bank_base(b) + BOOT_HEADER_SIZE;
    uint32_t sp = *(volatile const uint32_t *)load;
    uint32_t pc = *(volatile const uint32_t *)(load + 4u);
    log_flush();
    USART1->CR1 = 0;
    flc_lock();
    SEC->IE = 0;
    SEC->STATUS = SEC_FLAGS;
    wdg_start();
    irq_disable();
    for (uint32_t i = 0; i < (NUM_IRQS + 31u) / 32u; i++) {
        SCS->ICER[i] = 0xFFFFFFFFu;
        SCS->ICPR[i] = 0xFFFFFFFFu;
    }
    SCS->SHCSR &= ~SCS_SHCSR_BUSFAULTENA_Msk;
    SCS->CFSR = SCS->CFSR;
    SCS->VTOR = load;
    __asm volatile("dsb\n isb" ::: "memory");
    __asm volatile(
        "msr msp, %0\n"
        "cpsie i\n"
        "bx %1\n" ::"r"(sp), "r"(pc) : "memory");
    __builtin_unreachable();
}


/* Any fault that is not a probe's: reset. */
__asm__(
    "  .syntax unified\n"
    "  .thumb\n"
    "  .section .text.HardFault_Handler,\"ax\",%progbits\n"
    "  .global HardFault_Handler\n"
    "  .type HardFault_Handler, %function\n"
    "  .thumb_func\n"
    "HardFault_Handler:\n"
    "  tst lr, #4\n"
    "  ite eq\n"
    "  mrseq r0, msp\n"
    "  mrsne r0, psp\n"
    "  push {r4, lr}\n"
    "  bl probe_fixup\n"
    "  pop {r4, lr}\n"
    "  cmp r0, #0\n"
    "  beq 1f\n"
    "  bx lr\n"
    "1:\n"
    "  b.w system_reset\n"
    "  .size HardFault_Handler, . - HardFault_Handler\n"
    "  .text\n");

/* ---- the decision ---- */

static boot_state_t state;

/* The newest record, or the factory state's. */
static int current_record(boot_record_t *s) {
    boot_state_read(&state);
    if (state.found) {
        *s = state.newest;
        return 1;
    }
    s->confirmed = BOOT_BANK_NONE;
    s->trial = BOOT_BANK_NONE;
    s->attempts = 0;
    s->counter = 0;
    for (uint32_t i = 0; i < BOOT_TAG_SIZE; i++) s->tag[i] = 0xFFu;
    return 0;
}

/* ---- for the UDS server (bootloader.h) ---- */

uint8_t bootloader_judge(uint32_t b) {
    boot_record_t s;
    int have = current_record(&s);
    banks[b].verdict = judge(b, &s, have);
    return banks[b].verdict;
}

int bootloader_has_valid_image(void) {
    return bootloader_judge(BOOT_BANK_A) == BOOT_VERDICT_OK ||
           bootloader_judge(BOOT_BANK_B) == BOOT_VERDICT_OK;
}

static int newer(uint32_t b) {
    return banks[b].header.version > banks[b ^ 1u].header.version;
}

uint32_t bootloader_target_bank(void) {
    boot_record_t s;
    int have = current_record(&s);
    int ok[BOOT_BANKS];
    for (uint32_t b = 0; b < BOOT_BANKS; b++) ok[b] = bootloader_judge(b) == BOOT_VERDICT_OK;
    if (have) return ok[s.confirmed] || !ok[s.confirmed ^ 1u] ? s.confirmed ^ 1u : s.confirmed;
    if (ok[BOOT_BANK_A] && ok[BOOT_BANK_B]) return newer(BOOT_BANK_A) ? BOOT_BANK_B : BOOT_BANK_A;
    return ok[BOOT_BANK_A] ? BOOT_BANK_B : BOOT_BANK_A;
}

int bootloader_would_try(uint32_t b) {
    boot_record_t s;
    int have = current_record(&s);
    if (bootloader_judge(b) != BOOT_VERDICT_OK) return 0;
    int other_ok = bootloader_judge(b ^ 1u) == BOOT_VERDICT_OK;
    if (!have) return !other_ok || newer(b);
    return b != s.confirmed && (!other_ok || newer(b));
}

void bootloader_service_watchdog(void) { wdg_service(); }

static void write_report(uint8_t booted, uint8_t boot_state, uint8_t attempts, uint32_t causes,
                         const boot_record_t *s, uint8_t events, uint8_t reverted) {
    volatile boot_report_t *r = BOOT_REPORT;
    r->magic = 0;
    r->booted_bank = booted;
    r->state = boot_state;
    r->attempts = attempts;
    r->reset_causes = (uint8_t)causes;
    r->stored_counter = s->counter;
    r->record_seq = state.found ? state.newest.seq : 0u;
    r->events = events;
    r->reverted_bank = reverted;
    for (uint32_t b = 0; b < BOOT_BANKS; b++) {
        r->verdict[b] = banks[b].verdict;
        r->version[b] = banks[b].header_ok ? banks[b].header.version : 0u;
        r->security_counter[b] = banks[b].header_ok ? banks[b].header.security_counter : 0u;
    }
    r->ecc_faults = probe_faults;
    r->check = ~BOOT_REPORT_MAGIC;
    r->magic = BOOT_REPORT_MAGIC;
}

int main(void) {
    uint32_t causes = SYSCTL->RSTCAUSE;
    SYSCTL->RSTCAUSE = causes;
    probe_enable();
    flc_sleep_on_irq = 1;
    wdg_service();
    uart_init(USART1, USART1_CLOCK_HZ, 115200u);
    log_causes(causes);

    volatile boot_request_t *request = BOOT_REQUEST;
    if (request->magic == BOOT_REQUEST_MAGIC &&
        request->check == (~BOOT_REQUEST_MAGIC ^ request->frame_flags)) {
        uint32_t flags = request->frame_flags;
        request->magic = 0;
        log_puts("boot: programming session requested\n");
        log_flush();
        programming_run(1, flags);
    }

    boot_record_t s;
    int have = current_record(&s);
    for (uint32_t b = 0; b < BOOT_BANKS; b++) {
        banks[b].verdict = judge(b, &s, have);
        if (banks[b].verdict != BOOT_VERDICT_OK && banks[b].verdict != BOOT_VERDICT_EMPTY) {
            log_bank(b);
            log_puts(" rejected: ");
            log_puts(verdict_text[banks[b].verdict]);
            log_putc('\n');
        }
    }

    uint8_t booted = BOOT_BANK_NONE, boot_state = BOOT_STATE_NONE, attempts = 0;
    uint8_t events = have ? 0u : BOOT_EVENT_FACTORY, reverted = BOOT_BANK_NONE;
    if (have && s.trial != BOOT_BANK_NONE) {
        uint8_t t = s.trial;
        boot_record_t n = s;
        if (s.attempts >= BOOT_TRIAL_ATTEMPTS || banks[t].verdict != BOOT_VERDICT_OK) {
            n.trial = BOOT_BANK_NONE;
            n.attempts = 0;
            /* An image that had its K boots and never confirmed itself is not tried again.
             * One that no longer verifies was damaged, not proven bad: its intact copy may
             * be installed again and get its trial. */
            if (banks[t].verdict == BOOT_VERDICT_OK) {
                for (uint32_t i = 0; i < BOOT_TAG_SIZE; i++) n.tag[i] = banks[t].tag[i];
            }
            log_puts(t == BOOT_BANK_A ? "boot: bank A reverted" : "boot: bank B reverted");
            if (banks[t].verdict == BOOT_VERDICT_OK) {
                log_puts(" after ");
                log_u32(s.attempts);
                log_puts(" attempts\n");
            } else {
                log_puts(": ");
                log_puts(verdict_text[banks[t].verdict]);
                log_putc('\n');
            }
            reverted = t;
            events |= BOOT_EVENT_REVERTED;
            if (boot_state_append(&state, &n) == 0) {
                s = n;
                if (banks[t].verdict == BOOT_VERDICT_OK) banks[t].verdict = BOOT_VERDICT_REJECTED;
            } else {
                events |= BOOT_EVENT_NVM_FAILED;
            }
        } else {
            n.attempts = (uint8_t)(s.attempts + 1u);
            if (boot_state_append(&state, &n) == 0) {
                s = n;
                booted = t;
                boot_state = BOOT_STATE_TRIAL;
                attempts = n.attempts;
            } else {
                events |= BOOT_EVENT_NVM_FAILED;
            }
        }
    }
    if (booted == BOOT_BANK_NONE && have) {
        uint8_t c = s.confirmed, o = (uint8_t)(c ^ 1u);
        if (s.trial == BOOT_BANK_NONE && banks[o].verdict == BOOT_VERDICT_OK &&
            (banks[c].verdict != BOOT_VERDICT_OK ||
             banks[o].header.version > banks[c].header.version)) {
            boot_record_t n = s;
            n.trial = o;
            n.attempts = 1;
            if (boot_state_append(&state, &n) == 0) {
                s = n;
                booted = o;
                boot_state = BOOT_STATE_TRIAL;
                attempts = 1;
            } else {
                events |= BOOT_EVENT_NVM_FAILED;
            }
        }
        if (booted == BOOT_BANK_NONE && banks[c].verdict == BOOT_VERDICT_OK) {
            booted = c;
            boot_state = BOOT_STATE_CONFIRMED;
        } else if (booted == BOOT_BANK_NONE && banks[o].verdict == BOOT_VERDICT_OK) {
            booted = o; /* the record could not be written: a trial the record does not know */
            boot_state = BOOT_STATE_TRIAL;
        }
    } else if (booted == BOOT_BANK_NONE) { /* factory state: the newest valid bank */
        int a = banks[BOOT_BANK_A].verdict == BOOT_VERDICT_OK;
        int b = banks[BOOT_BANK_B].verdict == BOOT_VERDICT_OK;
        if (a && b) {
            booted = banks[BOOT_BANK_B].header.version > banks[BOOT_BANK_A].header.version
                         ? BOOT_BANK_B : BOOT_BANK_A;
        } else if (a || b) {
            booted = a ? BOOT_BANK_A : BOOT_BANK_B;
        }
        if (booted != BOOT_BANK_NONE) boot_state = BOOT_STATE_CONFIRMED;
    }
    if (events & BOOT_EVENT_NVM_FAILED) log_puts("boot: NVM write failed\n");

    if (booted == BOOT_BANK_NONE) {
        log_puts("boot: no valid image, waiting for UDS\n");
        write_report(booted, boot_state, 0, causes, &s, events, reverted);
        log_flush();
        programming_run(0, 0);
    }
    log_bank(booted);
    if (boot_state == BOOT_STATE_TRIAL) {
        log_puts(" trial ");
        log_u32(attempts);
        log_putc('/');
        log_u32(BOOT_TRIAL_ATTEMPTS);
    } else {
        log_puts(" confirmed, counter ");
        log_u32(s.counter);
    }
    log_putc('\n');
    write_report(booted, boot_state, attempts, causes, &s, events, reverted);
    /* Checked once more right before the jump: one skipped branch never boots a bad image. */
    if (check_image(booted) != BOOT_VERDICT_OK ||
        banks[booted].header.security_counter < s.counter) {
        system_reset();
    }
    jump(booted);
}
