/* The tick handler that clobbers everything the exception frame must restore, and the FP
 * canaries. Assembled for an FPU; the FP instructions run only when conformance_fp_clobber
 * is set (on a board with an FPU, after Reset_Handler enabled CP10/CP11). */
    .syntax unified
    .thumb
    .cpu cortex-m4
    .fpu fpv4-sp-d16
    /* The image does not need an FPU (the FP code runs only when one is enabled): do not
     * let the object say it was built for one (Tag_FP_arch), or loaders refuse it on a
     * core without. */
    .eabi_attribute Tag_FP_arch, 0
    .eabi_attribute Tag_ABI_HardFP_use, 0

    .text
    .global SysTick_Handler
    .type SysTick_Handler, %function
    .thumb_func
SysTick_Handler:
    ldr r0, =conformance_ticks
    ldr r1, [r0]
    adds r1, r1, #1
    str r1, [r0]
    /* garbage derived from the tick count, different on every tick */
    ldr r2, =0x9E3779B9
    mul r3, r1, r2
    ldr r0, =conformance_fp_clobber
    ldr r0, [r0]
    cbz r0, 1f
    vmov s0, s1, r3, r1
    vmov s2, s3, r1, r3
    vmov s4, s5, r3, r2
    vmov s6, s7, r2, r3
    vmov s8, s9, r3, r1
    vmov s10, s11, r1, r2
    vmov s12, s13, r2, r1
    vmov s14, s15, r3, r3
    eor r0, r3, #0x90000000      /* FPSCR: flags, rounding mode and sticky bits change */
    bic r0, r0, #0x0F000000
    vmsr fpscr, r0
1:
    eor r0, r3, #0x00FF00FF
    eor r1, r3, #0x5A5A5A5A
    ror r2, r3, #13
    mvn r12, r3
    msr APSR_nzcvqg, r3          /* N Z C V Q and GE[3:0] */
    bx lr
    .size SysTick_Handler, . - SysTick_Handler

    .global conformance_fp_fill
    .type conformance_fp_fill, %function
    .thumb_func
conformance_fp_fill:
    ldr r0, =conformance_fp_canaries
    vldmia r0!, {s0-s31}
    ldr r1, [r0]
    vmsr fpscr, r1
    bx lr
    .size conformance_fp_fill, . - conformance_fp_fill

    .global conformance_fp_dump
    .type conformance_fp_dump, %function
    .thumb_func
conformance_fp_dump:
    vstmia r0!, {s0-s31}
    vmrs r1, fpscr
    str r1, [r0]
    bx lr
    .size conformance_fp_dump, . - conformance_fp_dump

    .section .rodata.conformance_fp_canaries, "a"
    .balign 4
    .global conformance_fp_canaries
    .type conformance_fp_canaries, %object
conformance_fp_canaries:
    .set i, 0
    .rept 32
    .word 0xC0DE0000 + i * 0x0101 + 0x3000000 * (i & 1)
    .set i, i + 1
    .endr
    .word 0x62C00091             /* FPSCR: Z C, DN, round towards zero, IDC IXC IOC */
    .size conformance_fp_canaries, . - conformance_fp_canaries
