"""`python3 -m tlutils COMMAND`: the command line lives in tlutils.course.cli."""

import sys

from tlutils.course.cli import ensure_environment, main

if __name__ == "__main__":
    ensure_environment()
    sys.exit(main())
