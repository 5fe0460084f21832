"""Hand-built hostile PDFs: decompression bombs, cyclic page trees, deep nesting, huge pages."""
from __future__ import annotations

import zlib


def _pdf(objects: list[bytes], root: int = 1) -> bytes:
    """Assemble numbered objects with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{offset:010d} 00000 n \n".encode() for offset in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root {root} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def _stream(data: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length " + str(len(data)).encode() + extra + b" >>\nstream\n" + data + b"\nendstream"


def _page_objects(content: bytes, extra_stream_keys: bytes = b"") -> list[bytes]:
    return [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        _stream(content, extra_stream_keys),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def text_page(text: str) -> bytes:
    lines = b"".join(b"(" + line.encode("latin-1", "replace").replace(b"(", b"[").replace(b")", b"]") +
                     b") Tj 0 -14 Td " for line in text.split("\n"))
    return _pdf(_page_objects(b"BT /F1 10 Tf 40 750 Td " + lines + b"ET"))


def decompression_bomb(inflated_mb: int = 1024) -> bytes:
    """A small file whose one content stream inflates to `inflated_mb` megabytes."""
    compressor = zlib.compressobj(9)
    block = b"0" * (1 << 20)
    packed = b"".join(compressor.compress(block) for _ in range(inflated_mb)) + compressor.flush()
    return _pdf(_page_objects(packed, b" /Filter /FlateDecode"))


def cyclic_page_tree() -> bytes:
    """A page tree whose Pages node lists itself as a kid."""
    return _pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>",
    ])


def deeply_nested(depth: int = 50_000) -> bytes:
    """An object nested tens of thousands of arrays deep (parsers recurse on it)."""
    nested = b"[" * depth + b"]" * depth
    objects = _page_objects(b"BT /F1 10 Tf 40 750 Td (Nested) Tj ET")
    objects[2] = objects[2][:-2] + b" /Junk " + nested + b" >>"
    return _pdf(objects)


def many_pages(count: int) -> bytes:
    kids = b" ".join(f"{n} 0 R".encode() for n in range(4, 4 + count))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [" + kids + b"] /Count " + str(count).encode() + b" >>",
               _stream(b"BT /F1 10 Tf 40 750 Td (A page of a very long guideline.) Tj ET")]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
                b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >> >>"
                for _ in range(count)]
    return _pdf(objects)
