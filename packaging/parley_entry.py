"""The bundle's entry point: `parley` (the window), or `parley --engine ...` (the offline engine)."""

import sys

from desktop.ui.app import main

if __name__ == "__main__":
    sys.exit(main())
