"""A picture of a PDF page, so a clinician can see the passage in its original layout."""
from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

_pdfium_lock = threading.Lock()  # PDFium is not thread-safe


@lru_cache(maxsize=64)
def render_page(path: str, page: int, width: int = 900):
    """The physical page (1-based) of a PDF as a PIL image about `width` pixels wide."""
    import pypdfium2 as pdfium

    with _pdfium_lock:
        document = pdfium.PdfDocument(Path(path))
        try:
            if not 1 <= page <= len(document):
                raise ValueError(f"page {page} is outside the document (1-{len(document)})")
            pdf_page = document[page - 1]
            scale = width / max(1.0, pdf_page.get_width())
            image = pdf_page.render(scale=min(scale, 4.0)).to_pil()
            pdf_page.close()
            return image
        finally:
            document.close()
