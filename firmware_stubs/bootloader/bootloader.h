/* What the bootloader's decision (main.c) and its UDS server (programming.c) share. */
#ifndef BOOTLOADER_H
#define BOOTLOADER_H

#include <stdint.h>
#include "../uds/uds.h"

/* A bank's verdict now (BOOT_VERDICT_*), against the newest record. */
uint8_t bootloader_judge(uint32_t bank);
/* The bank an update goes to: never the one the next boot would start. */
uint32_t bootloader_target_bank(void);
/* Whether the next boot would make `bank` a trial (valid, and newer than the confirmed). */
int bootloader_would_try(uint32_t bank);
int bootloader_has_valid_image(void);
void bootloader_service_watchdog(void);
/* The UDS server, in the programming session when the application asked for it. */
void __attribute__((noreturn)) programming_run(int requested, uint32_t frame_flags);

#endif
