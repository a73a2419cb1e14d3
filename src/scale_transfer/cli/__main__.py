"""``python -m scale_transfer.cli``."""

from scale_transfer.cli.main import main

main()
