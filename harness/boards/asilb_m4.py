"""The default board: an ASIL-B automotive MCU modelled on a Cortex-M4 core.

2 MB ECC flash (bootloader, A/B banks, NVM), 256 KB SRAM, 120 MHz core clock.
Two M_CAN CAN FD controllers share a 16 KB message RAM; two LIN-capable USARTs (USART1 on a
60 MHz clock, the console; USART2 on 30 MHz, the light cluster's LIN). Later issues add the
flash-controller, watchdog and security peripherals here.
"""

from dataclasses import replace

from harness.board import Board, Partition, PeripheralSpec, Region

KB = 1024
MB = 1024 * KB
# Both M_CANs: a 40 MHz kernel clock (bit timing derives from it), one shared message RAM.
MCAN = (("kernel_clock_hz", 40_000_000), ("message_ram", "MCAN_MRAM"))

ASILB_M4 = Board(
    name="ASILB-M4",
    cpu="cortex-m4",
    core_clock_hz=120_000_000,
    regions=(
        Region("FLASH", 0x0000_0000, 2 * MB, "flash", "ECC program flash"),
        Region("SRAM", 0x2000_0000, 256 * KB, "ram", "System RAM"),
        Region("MCAN_MRAM", 0x4001_0000, 16 * KB, "ram", "M_CAN message RAM (MCAN0 and MCAN1)"),
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
        PeripheralSpec("TIM2", "timer", 0x4000_1000, irqs=(0,), doc="General-purpose timer"),
        PeripheralSpec("TIM3", "timer", 0x4000_1400, irqs=(1,), doc="General-purpose timer"),
        PeripheralSpec("USART1", "usart", 0x4000_3800, irqs=(12,), doc="UART (console)",
                       params=(("clock_hz", 60_000_000), ("break_bits", 13))),
        PeripheralSpec("USART2", "usart", 0x4000_3C00, irqs=(13,), doc="LIN (light cluster)",
                       params=(("clock_hz", 30_000_000), ("break_bits", 13))),
        PeripheralSpec("MCAN0", "mcan", 0x4000_6000, irqs=(8, 9), doc="CAN FD controller 0",
                       params=MCAN),
        PeripheralSpec("MCAN1", "mcan", 0x4000_6400, irqs=(10, 11), doc="CAN FD controller 1",
                       params=MCAN),
        PeripheralSpec("SYSCTL", "sysctl", 0x4000_7000, doc="System control: reset causes"),
        PeripheralSpec("WDG", "watchdog", 0x4000_7400, irqs=(14,), doc="Windowed watchdog",
                       params=(("clock_hz", 32_000),)),
        PeripheralSpec("SEC", "security", 0x4000_8000, irqs=(15,),
                       doc="Security unit: key slots, AES, CMAC, RNG"),
        PeripheralSpec("FLC", "flash", 0x4000_7800, irqs=(16,),
                       doc="Flash controller: program, sector erase, ECC; two 1 MB banks",
                       params=(("region", "FLASH"), ("sector_kb", 16), ("banks", 2))),
    ),
    num_irqs=64,
    doc="ASIL-B automotive MCU, Cortex-M4 core (no FPU)",
)

# The same part with the FPU option: a Cortex-M4F (FPv4-SP, single precision).
ASILB_M4F = replace(
    ASILB_M4, name="ASILB-M4F", cpu="cortex-m4f", fpu=True,
    doc="ASIL-B automotive MCU, Cortex-M4F core (FPv4-SP FPU)",
)  # fmt: skip
