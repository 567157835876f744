"""`python -m acurl_rs`: the same load generator as the `acurl-rs` command."""

import sys

from .cli import main

sys.exit(main())
