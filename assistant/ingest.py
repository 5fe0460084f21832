"""`python -m assistant.ingest PATH...`, `--list`, `--delete NAME`: the ingest command line (assistant.cli)."""
import sys

from .cli import ingest_main

if __name__ == "__main__":
    sys.exit(ingest_main())
