"""`python -m generator` is `modelgen`."""

import sys

from .cli import main

sys.exit(main())
