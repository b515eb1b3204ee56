"""``python -m growth ...``: the ``growth`` command line (:mod:`growth.cli`)."""

import sys

from growth.cli import main

if __name__ == "__main__":
    sys.exit(main())
