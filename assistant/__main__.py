"""`python -m assistant ask|ingest|settings ...`: see assistant.cli."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
