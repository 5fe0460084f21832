"""Finding text that addresses the assistant: the form rules alone, and with the learned second signal.

    .venv/bin/python bench/injection.py --fit     # refit assistant/injection_weights.json, then measure
    .venv/bin/python bench/injection.py           # measure only

The second signal is a logistic regression on the packaged encoder's sentence embeddings (384 numbers and
a bias, fitted here with torch, kept in assistant/injection_weights.json). It is fitted on
- instructions: tests/data/injection_sentences.txt, bench/data/injection_heldout.tsv and
  injection_heldout2.tsv (the form rules were tuned on these three);
- ordinary text: their hard ordinary sentences and 3,000 sentences of the real guidelines of
  ../shared/realworld, leaving out the guidelines the test suite samples (tests/test_injection.py).
It is measured on bench/data/injection_heldout3.tsv, written by someone who saw neither the rules nor the
other sets and never used for tuning, and on the real-guideline sentences not used for fitting.
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import re
import sys
import tempfile
from pathlib import Path

import numpy as np

import benchlib
from benchlib import REALWORLD_PDFS, ROOT, markdown_table

log = logging.getLogger("bench.injection")
WEIGHTS = ROOT / "assistant" / "injection_weights.json"
sys.path.insert(0, str(ROOT / "tests"))
from test_injection import REAL_GUIDELINES  # noqa: E402  (the guidelines the tests sample: kept out of fitting)


def tsv(name: str) -> tuple[list[str], list[str]]:
    rows = [line.split("\t") for line in (ROOT / "bench" / "data" / name).read_text().splitlines()[1:] if line]
    return [s for label, s in rows if label == "injection"], [s for label, s in rows if label == "ordinary"]


def lines(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def real_sentences(encoder: object) -> dict[str, list[str]]:
    """Body sentences of each real guideline with a text layer, by file."""
    from assistant.chunking import units
    from assistant.config import load_settings
    from assistant.documents import parse_pdf
    from assistant.errors import DocumentError

    settings = load_settings(env={}, config_file=None, data_dir=Path(tempfile.mkdtemp()))
    found: dict[str, list[str]] = {}
    for pdf in sorted(REALWORLD_PDFS.glob("*.pdf")):
        try:
            _, chunks = parse_pdf(pdf.read_bytes(), pdf.name, encoder, settings)  # type: ignore[arg-type]
        except DocumentError:
            continue
        found[pdf.name] = sorted({re.sub(r"\s+", " ", c.text[s:e]).strip() for c in chunks
                                  for s, e, heading in units(c.text) if not heading and e - s >= 25})
    return found


def fit(encoder: object, positives: list[str], negatives: list[str]) -> dict[str, object]:
    """Class-balanced logistic regression (L2) on the embeddings, fitted with L-BFGS."""
    import torch

    from assistant.encoder import Encoder

    assert isinstance(encoder, Encoder)
    x = torch.tensor(np.vstack([encoder.encode(positives), encoder.encode(negatives)]))
    y = torch.tensor([1.0] * len(positives) + [0.0] * len(negatives))
    weight = torch.where(y == 1, len(y) / (2 * len(positives)), len(y) / (2 * len(negatives)))
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.LBFGS([w, b], max_iter=500)

    def loss() -> torch.Tensor:
        optimizer.zero_grad()
        value = (torch.nn.functional.binary_cross_entropy_with_logits(x @ w + b, y, weight=weight)
                 + 0.5 * 1e-3 * (w * w).sum())
        value.backward()
        return value

    optimizer.step(loss)
    return {"encoder": encoder.fingerprint, "weights": [round(float(v), 6) for v in w.detach()],
            "bias": round(float(b.detach()), 6), "threshold": 0.9,
            "fitted_on": {"instructions": len(positives), "ordinary": len(negatives)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fit", action="store_true", help="refit assistant/injection_weights.json first")
    parser.add_argument("--unseen", type=int, default=5000, help="real sentences not fitted on, to count flags in")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    from assistant.encoder import load_encoder
    from assistant.injection import InjectionDetector, is_instruction_to_assistant

    encoder = load_encoder("packaged", "cpu")
    before = benchlib.load_average()
    real = real_sentences(encoder)
    pool = [s for name, found in real.items() if name not in REAL_GUIDELINES for s in found]
    random.Random(0).shuffle(pool)
    fitting, unseen = pool[:3000], pool[3000:3000 + args.unseen]
    if args.fit:
        positives = lines(ROOT / "tests/data/injection_sentences.txt") + tsv("injection_heldout.tsv")[0] + \
            tsv("injection_heldout2.tsv")[0]
        negatives = lines(ROOT / "tests/data/ordinary_hard_sentences.txt") + tsv("injection_heldout.tsv")[1] + \
            tsv("injection_heldout2.tsv")[1] + fitting
        WEIGHTS.write_text(json.dumps(fit(encoder, positives, negatives)) + "\n")
    detector = InjectionDetector(encoder)
    attacks, ordinary = tsv("injection_heldout3.tsv")
    sampled = [s for name in REAL_GUIDELINES for s in real.get(name, [])]
    rows = []
    for label, flag in (("form rules", lambda xs: [is_instruction_to_assistant(s) for s in xs]),
                        ("form rules + embedding classifier", detector.flags)):
        found, false, real_false, sampled_false = (sum(flag(attacks)), sum(flag(ordinary)), sum(flag(unseen)),
                                                   sum(flag(sampled)))
        rows.append([label, f"{found}/{len(attacks)} ({100 * found / len(attacks):.0f}%)",
                     f"{false}/{len(ordinary)}", f"{real_false}/{len(unseen)} ({100 * real_false / len(unseen):.2f}%)",
                     f"{sampled_false}/{len(sampled)}"])
    header = ["detector", "held-out instructions found", "held-out hard ordinary flagged",
              "real-guideline sentences flagged (not fitted)", "flagged in the 4 guidelines the tests sample"]
    text = ("## Text that addresses the assistant (bench/injection.py)\n\n"
            f"{benchlib.machine_description()}; {benchlib.load_note(before, benchlib.load_average())} Command: "
            f"`{benchlib.command_line()}`. Held-out set: bench/data/injection_heldout3.tsv (60 instructions, 60 hard "
            "ordinary sentences), written blind to the detector and not used to tune it.\n\n"
            + markdown_table(header, rows))
    print(text)
    if not args.no_write:
        benchlib.replace_section("injection", text)


if __name__ == "__main__":
    main()
