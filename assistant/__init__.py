"""Clinical guideline assistant: answers grounded in guideline PDFs, with the evidence shown."""
__version__ = "0.1.0"
