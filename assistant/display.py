"""Turning answers and evidence into safe HTML and Markdown for the UI.

Everything shown comes from untrusted PDFs (passages, titles, file names), so every string is escaped
here, in one place: a PDF holding `<script>` or Markdown image syntax is shown as text.
"""
from __future__ import annotations

import html
import re
from collections.abc import Callable
from urllib.parse import quote

from . import lookalike
from .chunking import is_heading
from .records import Answer, DocumentInfo, Evidence

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9-]{2,}")
_STOPWORDS = set("""the and for with what which when where does should than from that this into have has are was were
who how why can may not any all per its their there about after before over under between patient
patients adult adults give given use used""".split())
_LIST_ITEM = re.compile(r"^\s*(?:[•▪●◦‣∙·*–—-]|\d{1,2}[.)]\s|\(?[a-z][.)]\s)")
_MARKDOWN_ACTIVE = re.compile(r"([\\`*_{}\[\]()#+!|~])")


def escape_markdown(text: str) -> str:
    """Neutralise Markdown and HTML in untrusted text that is shown inside the chat."""
    return _MARKDOWN_ACTIVE.sub(r"\\\1", html.escape(text, quote=False))


def question_terms(question: str) -> list[str]:
    terms = {word.lower() for word in _WORD.findall(question)} - _STOPWORDS
    return sorted(terms, key=len, reverse=True)


def reflow(text: str) -> str:
    """Join the lines of a paragraph that the PDF broke for width; keep breaks before headings and list items."""
    lines = text.split("\n")
    out = lines[:1]
    for line in lines[1:]:
        previous = out[-1]
        keep_break = is_heading(line) or is_heading(previous) or _LIST_ITEM.match(line) or \
            previous.rstrip().endswith(":")
        if keep_break:
            out.append(line)
        else:
            out[-1] = f"{previous} {line}"
    return "\n".join(out)


def highlight(text: str, terms: list[str]) -> str:
    """Escaped, reflowed passage text with the question's terms wrapped in <mark>."""
    escaped = html.escape(reflow(text))
    if not terms:
        return escaped
    pattern = re.compile(r"\b(" + "|".join(re.escape(html.escape(t)) for t in terms) + r")", re.I)
    return pattern.sub(r"<mark>\1</mark>", escaped)


def answer_markdown(answer_text: str, evidence_count: int) -> str:
    """The answer for the chat: escaped, with citation markers linked to their evidence cards."""
    safe = escape_markdown(answer_text)
    safe = re.sub(r"^&gt; ", "> ", safe, flags=re.M)  # keep the quote blocks of "Guideline wording"
    return re.sub(r"\\\[(\d{1,2})\\\]",
                  lambda m: f"[\\[{m.group(1)}\\]](#evidence-{m.group(1)})" if 1 <= int(m.group(1)) <= evidence_count
                  else m.group(0), safe)


def pdf_link(path: str, page: int) -> str:
    """The stored PDF at a page, as Gradio serves it (its file route, behind the app's login); the browser's
    PDF viewer opens it at that page."""
    return f"gradio_api/file={quote(path)}#page={page}"


def evidence_cards(answer: Answer | None, stored_path: Callable[[str], str] | None = None) -> str:
    """The evidence panel: one card per passage, or a useful message when there is nothing to show.
    `stored_path(doc_id)` gives each card a link to its PDF at the page (none when it returns "")."""
    if answer is None:
        return ("<div class='evidence-empty'>Ask a question: the guideline passages behind the answer appear "
                "here, with document, page, section and score.</div>")
    if not answer.evidence:
        return "<div class='evidence-empty'>No passages found. Upload guidelines in the Library tab.</div>"
    terms = question_terms(answer.question)
    header = "" if answer.covered else (
        "<div class='not-covered'>The loaded guidelines do not cover this question. These are the closest "
        "passages, for reference only.</div>")
    paths = {item.doc_id: stored_path(item.doc_id) if stored_path else "" for item in answer.evidence}
    return header + "".join(_card(item, terms, item.number in answer.cited,
                                  pdf_link(paths[item.doc_id], item.page) if paths[item.doc_id] else "")
                            for item in answer.evidence)


def _card(item: Evidence, terms: list[str], cited: bool, link: str = "") -> str:
    width = max(0, min(100, round(item.score * 100)))
    section = f"<div class='ev-section'>{html.escape(item.section)}</div>" if item.section else ""
    page = f"page {item.page}" + (f" (printed {html.escape(item.page_label)})"
                                  if item.page_label and item.page_label != str(item.page) else "")
    if link:
        page = (f"<a class='ev-open' href='{html.escape(link, quote=True)}' target='_blank' rel='noopener' "
                f"title='Open the PDF at this page'>{page}</a>")
    warning = ("<div class='not-covered'>This passage contains instruction-like text (possible prompt injection) "
               "and was not given to the model.</div>") if item.withheld else ""
    if item.read_by == "ocr":
        warning += (f"<div class='ev-ocr'>Read by OCR from a scanned page (mean word confidence "
                    f"{item.ocr_confidence:.0f}%): check names and doses against the page image.</div>")
    return (
        f"<div class='evidence-card{' cited' if cited else ''}' id='evidence-{item.number}'>{warning}"
        f"<div class='ev-head'><span class='ev-num'>[{item.number}]</span> "
        f"<span class='ev-title'>{html.escape(item.title)}</span></div>"
        f"<div class='ev-meta'><span class='ev-file'>{html.escape(item.file)}</span> · <span class='ev-page'>{page}"
        f"</span></div>{section}"
        f"<div class='ev-score' title='cosine similarity {item.score:.2f}'><div class='ev-bar' "
        f"style='width:{width}%'></div><span>score {item.score:.2f}</span></div>"
        f"<div class='ev-text'>{highlight(item.text, terms)}</div></div>")


def documents_rows(documents: list[DocumentInfo]) -> list[list[object]]:
    """The library table; a name that reads like another row's is marked with the characters that differ."""
    twins = lookalike.look_alike_names([d.file_name for d in documents])
    rows: list[list[object]] = []
    for d in documents:
        name = d.file_name
        if name in twins:
            name += f"  [look-alike name: {lookalike.differences(name) or 'plain ASCII'}]"
        rows.append([d.title, name, d.pages, d.chunks, d.added.replace("T", " ").replace("+00:00", " UTC"),
                     d.reading_note])
    return rows


CSS = """
.evidence-card{border:1px solid var(--border-color-primary);border-radius:8px;padding:10px;margin-bottom:10px;}
.evidence-card.cited{border-left:4px solid var(--color-accent);}
.ev-head{font-weight:600}.ev-num{color:var(--color-accent)}
.ev-meta,.ev-section{font-size:0.85em;color:var(--body-text-color-subdued)}
.ev-score{position:relative;background:var(--background-fill-secondary);border-radius:4px;height:16px;margin:6px 0;
  font-size:0.75em}
.ev-bar{position:absolute;left:0;top:0;bottom:0;background:var(--color-accent-soft);border-radius:4px}
.ev-score span{position:relative;padding-left:6px}
.ev-text{white-space:pre-wrap;font-size:0.9em;max-height:260px;overflow:auto}
.not-covered,.disclaimer{background:#fff4e5;color:#663c00;border-radius:6px;padding:8px;margin-bottom:8px}
.evidence-empty{color:var(--body-text-color-subdued);padding:12px}
.ev-ocr{background:var(--background-fill-secondary);border-radius:6px;padding:6px;margin-bottom:6px;font-size:0.85em}
"""
