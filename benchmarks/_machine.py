"""What every benchmark prints first: the command and the machine it ran on."""
import os
import platform
import sys

import torch


def header() -> str:
    """One line naming the command, CPU cores, torch version and threads."""
    cpu = platform.processor() or platform.machine()
    return (f"$ {' '.join([os.path.basename(sys.executable)] + sys.argv)}\n"
            f"# machine: {os.cpu_count()} cores ({cpu}), torch {torch.__version__}, {torch.get_num_threads()} threads")
