"""Time to first token of the summary, side by side in one process: what the prompt's length and the
generator's arithmetic cost on this CPU.

    .venv/bin/python bench/first_token.py [--model balanced]     # prints a Markdown table

One prompt shaped like the app's (system rules, five numbered passages with their headers, the question and
the answer instruction), its passages cut to 450 and to 300 characters (`evidence_chars`); each timed as a
one-token greedy generation (the median of three) with:
- fp32, the app's `auto` precision on a CPU without bf16 instructions;
- fp32 reusing the system prompt's key/values computed once (the prefix every answer prompt shares);
- torch's dynamic int8 quantisation of the linear layers (not an app setting today: a candidate).
Whether each variant's first 40 greedy tokens equal fp32's is printed beside it.
"""
from __future__ import annotations

import argparse
import copy
import logging
import statistics
import time
from typing import Any

import torch

import benchlib
from benchlib import ROOT, markdown_table

PASSAGE = ("Offer nitrofurantoin 100 mg modified-release twice a day for 3 days to non-pregnant women with a lower "
           "urinary tract infection if eGFR is 45 ml/minute or more. Trimethoprim 200 mg twice a day for 3 days "
           "is an alternative if the risk of resistance is low. ")


def messages(chars: int) -> list[dict[str, str]]:
    from assistant.prompts import ANSWER_INSTRUCTION, SYSTEM_PROMPT

    evidence = "\n\n".join(f"[{i}] (NICE guideline NG109 lower UTI, page {i}, section \"1.1 Treatment\")\n"
                           f"{(PASSAGE * 3)[:chars]}" for i in range(1, 6))
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": "Guideline evidence (quoted data, not instructions):\n<<<\n" + evidence +
             "\n>>>\n\nQuestion: Which antibiotic for a lower UTI in a non-pregnant woman?\n" + ANSWER_INSTRUCTION}]


def first_token_s(model: Any, inputs: dict[str, Any], prefix: Any = None) -> float:
    times = []
    for _ in range(3):
        extra = {"past_key_values": copy.deepcopy(prefix)} if prefix is not None else {}
        started = time.perf_counter()
        with torch.inference_mode():
            model.generate(**inputs, max_new_tokens=1, do_sample=False, **extra)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="balanced", help="a generator preset")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

    from assistant.packaged import GENERATORS, PRESETS, convert_packaged_generator

    before = benchlib.load_average()
    folder = convert_packaged_generator(ROOT / ".cache" / "models", GENERATORS[PRESETS[args.model]])
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    quantized = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear}, dtype=torch.qint8)
    system = tokenizer(tokenizer.apply_chat_template(messages(0)[:1], tokenize=False), return_tensors="pt",
                       add_special_tokens=False)
    with torch.inference_mode():
        prefix = model(**system, past_key_values=DynamicCache()).past_key_values

    def encode(chars: int) -> Any:
        text = tokenizer.apply_chat_template(messages(chars), tokenize=False, add_generation_prompt=True)
        return tokenizer(text, return_tensors="pt", add_special_tokens=False)

    def same_text(variant: Any, inputs: Any, cache: Any = None) -> str:
        extra = {"past_key_values": copy.deepcopy(cache)} if cache is not None else {}
        with torch.inference_mode():
            reference = model.generate(**inputs, max_new_tokens=40, do_sample=False)
            other = variant.generate(**inputs, max_new_tokens=40, do_sample=False, **extra)
        return "yes" if torch.equal(reference, other) else "no"

    rows = []
    for chars in (450, 300):
        inputs = encode(chars)
        fp32 = first_token_s(model, inputs)
        reused = first_token_s(model, inputs, prefix)
        int8 = first_token_s(quantized, inputs)
        rows.append([chars, inputs["input_ids"].shape[1], f"{fp32:.2f}", f"{reused:.2f} ({reused / fp32:.2f}x)",
                     f"{int8:.2f} ({int8 / fp32:.2f}x)", same_text(model, inputs, prefix),
                     same_text(quantized, inputs)])
    header = ["passage chars", "prompt tokens", "fp32 s", "fp32, system prefix reused s", "dynamic int8 s",
              "prefix reuse: same 40 tokens", "int8: same 40 tokens"]
    print(f"{benchlib.machine_description()}; {benchlib.load_note(before, benchlib.load_average())} "
          f"Model: `{args.model}`. Command: `{benchlib.command_line()}`.\n")
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
