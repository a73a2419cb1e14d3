"""The command line: parse, call the library, print. No statistics live here.

User errors (bad data, an existing output file, a mismatched model) exit with status 2 and
one line on stderr; ``--debug`` shows the traceback instead. The commands live in
:mod:`~scale_transfer.cli.library` and :mod:`~scale_transfer.cli.lab`.
"""

from scale_transfer.cli.common import app
from scale_transfer.cli.main import expand_multi_values, main

__all__ = ["app", "expand_multi_values", "main"]
