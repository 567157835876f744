"""`python -m acurl_rs`: the same load generator as the `acurl-rs` command."""

import sys

from .cli import main

# Guarded: a process started with the "spawn" method must not run the CLI again on import.
if __name__ == "__main__":
    sys.exit(main())
