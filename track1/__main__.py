"""``python -m track1 <command>``: see ``track1.cli``."""
import sys

from track1.cli import main

sys.exit(main())
