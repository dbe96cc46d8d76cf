"""The default board: an ASIL-B automotive MCU modelled on a Cortex-M4 core.

2 MB ECC flash (bootloader, A/B banks, NVM), 256 KB SRAM, 120 MHz core clock.
Later issues add the CAN-FD, LIN, flash-controller, watchdog and security peripherals here.
"""

from harness.board import Board, Partition, PeripheralSpec, Region

KB = 1024
MB = 1024 * KB

ASILB_M4 = Board(
    name="ASILB-M4",
    cpu="cortex-m4",
    core_clock_hz=120_000_000,
    regions=(
        Region("FLASH", 0x0000_0000, 2 * MB, "flash", "ECC program flash"),
        Region("SRAM", 0x2000_0000, 256 * KB, "ram", "System RAM"),
    ),
    partitions=(
        Partition("BOOTLOADER", 0x0000_0000, 64 * KB, "A/B bootloader"),
        Partition("BANK_A", 0x0001_0000, 960 * KB, "Application bank A"),
        Partition("BANK_B", 0x0010_0000, 960 * KB, "Application bank B"),
        Partition("NVM", 0x001F_0000, 64 * KB, "Data flash / NVM"),
    ),
    peripherals=(
        PeripheralSpec("GPIOA", "gpio", 0x4000_0000, doc="Lamp outputs"),
        PeripheralSpec("GPIOB", "gpio", 0x4000_0400, doc="Status outputs, switch inputs"),
        PeripheralSpec("TIM2", "timer", 0x4000_1000, irq=0, doc="General-purpose timer"),
        PeripheralSpec("TIM3", "timer", 0x4000_1400, irq=1, doc="General-purpose timer"),
    ),
    num_irqs=64,
    doc="ASIL-B automotive MCU, Cortex-M4 core (no FPU)",
)
