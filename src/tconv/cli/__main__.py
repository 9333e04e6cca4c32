"""``python -m tconv.cli``: the tconv command line."""
import sys

from . import main

sys.exit(main())
