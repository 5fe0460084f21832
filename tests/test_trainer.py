"""The JMLR trainer: the method's pieces on hand-made tensors, and short real runs (tiny random Llama
saved as a model folder + the real SmolLM2 tokenizer + the real encoder + a real embedded Chroma over
tiny PDFs). One slow test runs trainer/configs/smoke.toml on the real packaged SmolLM2 in nf4."""
from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from assistant.choice import context_order
from trainer.config import TrainConfig, load_config
from trainer.jmlr import dynamic_sample, gold_loss, kl_loss, rank_loss, rescale, retriever_accuracy, standardise

from pdfs import GUIDELINE_PAGES, make_pdf

pytestmark = pytest.mark.xdist_group("test_trainer")  # its session-scoped training runs: built once, on one worker

ROOT = Path(__file__).resolve().parent.parent

HYPERTENSION = [
    "1 Hypertension in adults\nOffer a calcium-channel blocker such as amlodipine as step 1 treatment for adults aged "
    "55 or over with hypertension. Confirm the diagnosis with ambulatory blood pressure monitoring.",
    "2 Hypertension in pregnancy\nIn pregnancy, offer labetalol to treat hypertension. Consider nifedipine if "
    "labetalol is not suitable. Aim for a blood pressure of 135/85 mmHg during pregnancy.",
]
MALARIA = [
    "1 Uncomplicated malaria\nTreat uncomplicated falciparum malaria with an artemisinin-based combination therapy "
    "for 3 days. Confirm the diagnosis with microscopy or a rapid diagnostic test before treatment.",
    "2 Severe malaria\nTreat severe malaria in adults and children with intravenous or intramuscular artesunate for "
    "at least 24 hours, then complete treatment with 3 days of an artemisinin-based combination therapy.",
    "3 Prevention\nOffer insecticide-treated nets to everyone at risk. Give intermittent preventive treatment in "
    "pregnancy with sulfadoxine-pyrimethamine from the second trimester.",
]

QUESTIONS = [
    ("q1", "What dose of intramuscular adrenaline is given to an adult with anaphylaxis?",
     {"A": "50 micrograms", "B": "500 micrograms", "C": "5 mg", "D": "1 g"}, "B",
     "anaphylaxis.pdf", 2, "Give adrenaline 500 micrograms intramuscularly", "seen"),
    ("q2", "How long should patients be observed after two doses of adrenaline?",
     {"A": "1 hour", "B": "2 hours", "C": "6 hours", "D": "24 hours"}, "C",
     "anaphylaxis.pdf", 3, "Observe patients for at least 6 hours", "seen"),
    ("q3", "Which drug is step 1 treatment for hypertension in adults aged 55 or over?",
     {"A": "amlodipine", "B": "ramipril", "C": "bisoprolol", "D": "furosemide"}, "A",
     "hypertension.pdf", 1, "amlodipine as step 1 treatment", "seen"),
    ("q4", "Which drug treats hypertension in pregnancy first?",
     {"A": "ramipril", "B": "labetalol", "C": "losartan", "D": "spironolactone"}, "B",
     "hypertension.pdf", 2, "offer labetalol to treat hypertension", "unseen"),
    ("q5", "How is severe malaria treated in adults?",
     {"A": "oral chloroquine", "B": "intravenous artesunate", "C": "oral doxycycline", "D": "primaquine"}, "B",
     "malaria.pdf", 2, "intravenous or intramuscular artesunate", "unseen"),
    ("q6", "How long is an artemisinin-based combination therapy given for uncomplicated malaria?",
     {"A": "1 day", "B": "3 days", "C": "7 days", "D": "14 days"}, "B",
     "malaria.pdf", 1, "artemisinin-based combination therapy for 3 days", "seen"),
]


# ---------------------------------------------------------------------------------------------
# Fixtures: a tiny generator folder, tiny guideline PDFs, a question file, a prebuilt index
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, smol_tokenizer):
    from models_fixtures import tiny_llama

    folder = tmp_path_factory.mktemp("tiny-llama")
    tiny_llama(smol_tokenizer).save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def guideline_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("guidelines")
    (folder / "anaphylaxis.pdf").write_bytes(make_pdf(GUIDELINE_PAGES, title="Anaphylaxis protocol"))
    (folder / "hypertension.pdf").write_bytes(make_pdf(HYPERTENSION, title="Hypertension guideline"))
    (folder / "malaria.pdf").write_bytes(make_pdf(MALARIA, title="Malaria guideline"))
    return folder


@pytest.fixture(scope="session")
def qa_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("qa") / "train.jsonl"
    with path.open("w") as handle:
        for qid, question, options, answer, file, page, span, part in QUESTIONS:
            handle.write(json.dumps({"id": qid, "question": question, "options": options, "answer": answer,
                                     "rationale": span, "kind": "fact", "vignette": False,
                                     "evidence": {"file": file, "page": page, "span": span},
                                     "split": "test", "part": part}) + "\n")
    return path


@pytest.fixture(scope="session")
def shared_index(tmp_path_factory):
    """One data folder for the runs that only train the query side (they never write to it)."""
    return tmp_path_factory.mktemp("index")


def tiny_config(base: Path, tiny_model_dir: Path, guideline_dir: Path, qa_file: Path, data_dir: Path | str = "",
                **changes) -> TrainConfig:
    cfg = TrainConfig(generator_model=str(tiny_model_dir), precision="fp32", retriever_model="packaged",
                      lora_r=4, lora_alpha=8, lora_target_modules=["q_proj", "v_proj"], n_candidates=5, k_sampled=3,
                      k_context=2, batch_size=2, epochs=1, train_file=str(qa_file), dev_file=str(qa_file),
                      guidelines_dir=str(guideline_dir), data_dir=str(data_dir), output_dir=str(base / "run"),
                      model_cache=str(base / "cache"), device="cpu", seed=0, checkpoint_every=0, max_length=1024,
                      utility_batch_size=4, grad_accum=1)
    return cfg.replace(**changes)


@pytest.fixture
def make_cfg(tmp_path, tiny_model_dir, guideline_dir, qa_file, shared_index):
    def make(**changes) -> TrainConfig:
        changes.setdefault("data_dir", str(shared_index))
        return tiny_config(tmp_path, tiny_model_dir, guideline_dir, qa_file, **changes)
    return make


def metrics_rows(output_dir: Path) -> list[dict[str, str]]:
    with (output_dir / "metrics.csv").open() as handle:
        return [row for row in csv.DictReader(handle) if row["loss"]]


def adapter_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter" / "adapter_model.safetensors"))


def encoder_weights(folder: Path) -> dict[str, torch.Tensor]:
    from sentence_transformers import SentenceTransformer

    return {k: v.clone() for k, v in SentenceTransformer(str(folder), device="cpu").state_dict().items()}


# ---------------------------------------------------------------------------------------------
# The method's pieces, on hand-made tensors
# ---------------------------------------------------------------------------------------------

def test_rank_loss_values_and_sign():
    # passage 0 scores higher and gives the lower answer loss: the ranking is right, the loss small
    right = rank_loss(torch.tensor([0.9, 0.1]), torch.tensor([0.5, 1.0]), tau_r=1.0)
    wrong = rank_loss(torch.tensor([0.9, 0.1]), torch.tensor([1.0, 0.5]), tau_r=1.0)
    assert right.item() == pytest.approx(math.log1p(math.exp(-0.8)), abs=1e-6)
    assert wrong.item() == pytest.approx(math.log1p(math.exp(0.8)), abs=1e-6)
    # three passages, tau 0.5: the mean over the three pairs, computed by hand
    scores, losses = torch.tensor([0.2, 0.6, 0.4]), torch.tensor([1.0, 0.2, 3.0])
    expected = (math.log1p(math.exp(-(0.6 - 0.2) / 0.5))      # pair (0,1): 1 is better
                + math.log1p(math.exp(-(0.2 - 0.4) / 0.5))    # pair (0,2): 0 is better
                + math.log1p(math.exp(-(0.6 - 0.4) / 0.5))) / 3  # pair (1,2): 1 is better
    assert rank_loss(scores, losses, tau_r=0.5).item() == pytest.approx(expected, abs=1e-6)
    # the gradient raises the score of the more useful passage and lowers the other's
    scores = torch.tensor([0.1, 0.9], requires_grad=True)
    rank_loss(scores, torch.tensor([0.3, 2.0]), tau_r=0.1).backward()
    assert scores.grad[0] < 0 < scores.grad[1]
    # ties count as 1/2: a tie with equal scores costs log 2
    assert rank_loss(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0])).item() == pytest.approx(math.log(2), abs=1e-6)
    # batches of questions average
    batch = rank_loss(torch.tensor([[0.9, 0.1], [0.9, 0.1]]), torch.tensor([[0.5, 1.0], [1.0, 0.5]]))
    assert batch.item() == pytest.approx((right.item() + wrong.item()) / 2, abs=1e-6)


def test_kl_loss_values_and_sign():
    scores, losses = torch.tensor([0.3, 0.1, -0.2]), torch.tensor([0.4, 0.9, 2.0])
    tau_lm, tau_r = 0.5, 0.2
    p = torch.softmax(-losses / tau_lm, 0)
    q = torch.softmax(scores / tau_r, 0)
    expected = float((p * (p.log() - q.log())).sum())
    assert kl_loss(scores, losses, tau_lm, tau_r).item() == pytest.approx(expected, abs=1e-6)
    # zero when the retriever's distribution already matches the LM's
    matched = -losses / tau_lm * tau_r + 0.37
    assert kl_loss(matched, losses, tau_lm, tau_r).item() == pytest.approx(0.0, abs=1e-6)
    # the gradient pushes towards the passage with the lowest answer loss
    scores = scores.clone().requires_grad_(True)
    kl_loss(scores, losses, tau_lm, tau_r).backward()
    assert scores.grad[0] < 0 and scores.grad[2] > 0


def test_standardised_utility_reads_which_passage_helps_not_how_hard_the_question_is():
    easy, hard = torch.tensor([0.10, 0.12, 0.30]), torch.tensor([2.10, 2.12, 2.30])
    assert torch.allclose(standardise(easy), standardise(hard), atol=1e-5)
    z = standardise(torch.tensor([[1.0, 2.0, 3.0], [5.0, 5.0, 5.0]]))
    assert torch.allclose(z[0].mean(), torch.tensor(0.0), atol=1e-6) and z[0, 0] < 0 < z[0, 2]
    assert torch.equal(z[1], torch.zeros(3))  # every passage equally useful: no preference
    # kl on z-scores: a sharper target than on raw losses whose spread is small against tau_lm
    scores = torch.zeros(3)
    raw = kl_loss(scores, easy, tau_lm=1.0, tau_r=1.0)
    standardised = kl_loss(scores, standardise(easy)[0], tau_lm=1.0, tau_r=1.0)
    assert standardised > raw > 0


def test_gold_term_pulls_the_retriever_towards_the_gold_passage():
    scores = torch.tensor([0.2, 0.5, 0.1], requires_grad=True)
    gold = torch.tensor([True, False, False])
    loss = gold_loss(scores, gold, tau_r=0.5)
    expected = -torch.log_softmax(torch.tensor([0.2, 0.5, 0.1]) / 0.5, 0)[0]
    assert loss.item() == pytest.approx(float(expected), abs=1e-6)
    loss.backward()
    assert scores.grad[0] < 0 and scores.grad[1] > 0  # up the gold one, down the others
    assert gold_loss(torch.zeros(3), torch.zeros(3, dtype=torch.bool), 0.5) is None  # no gold among candidates
    two = gold_loss(torch.zeros(4), torch.tensor([True, True, False, False]), 1.0)
    assert two.item() == pytest.approx(-math.log(0.5), abs=1e-6)  # mass on either gold passage counts


def test_retriever_accuracy_compares_top_score_with_lowest_loss():
    scores = torch.tensor([[0.9, 0.1, 0.3], [0.2, 0.8, 0.1]])
    losses = torch.tensor([[0.1, 2.0, 1.0], [0.5, 0.9, 0.2]])
    assert retriever_accuracy(scores, losses) == 0.5


def test_dynamic_sampling_returns_k_distinct_indices_and_favours_high_scores():
    scores = torch.tensor([0.9, 0.7, 0.5, 0.3, 0.1, -0.1, -0.3, -0.5])
    assert torch.allclose(rescale(scores)[[0, -1]], torch.tensor([1.0, -1.0]))
    assert torch.equal(rescale(torch.ones(4)), torch.zeros(4))
    generator = torch.Generator().manual_seed(0)
    counts = torch.zeros(len(scores))
    for _ in range(3000):
        picks = dynamic_sample(scores, 3, generator)
        assert len(picks) == 3 and len(set(picks.tolist())) == 3
        counts[picks] += 1
    assert counts[0] > counts[3] > counts[-1] > 0  # mostly the best, sometimes the worst
    assert len(dynamic_sample(scores[:2], 5, generator)) == 2  # never more than there are


def test_context_puts_the_best_passage_last_and_renumbers():
    from assistant.records import Evidence

    best_first = [Evidence(n, "d", "f.pdf", "t", n, str(n), "", 1.0 - n / 10, f"passage {n}") for n in (1, 2, 3)]
    ordered = context_order(best_first)
    assert [e.text for e in ordered] == ["passage 3", "passage 2", "passage 1"]
    assert [e.number for e in ordered] == [1, 2, 3]


def test_config_reads_toml_aliases_and_refuses_unknown_keys(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('lambda = 0.5\nlora_target_modules = ["q_proj"]\nbatch_size = 3\n')
    cfg = load_config(path, {"max_steps": "7"})
    assert cfg.lambda_ret == 0.5 and cfg.lora_target_modules == ["q_proj"] and cfg.batch_size == 3
    assert cfg.max_steps == 7 and cfg.data_path == cfg.output_path / "index"
    path.write_text("lamda = 1\n")
    with pytest.raises(ValueError, match="Unknown setting 'lamda'"):
        load_config(path)
    with pytest.raises(ValueError, match="k_sampled"):
        load_config(None, {"k_sampled": "50"})
    with pytest.raises(ValueError, match="choice_format must be one of cloze, listed"):
        load_config(None, {"choice_format": "letters"})
    assert load_config(None, {"choice_format": "listed"}).assistant_settings().choice_format == "listed"
    for shipped in ("default", "smoke", "frozen"):
        load_config(ROOT / "trainer" / "configs" / f"{shipped}.toml")


def test_a_checkpoint_names_the_layout_it_was_trained_on():
    from assistant.checkpoint import trained_choice_format

    assert trained_choice_format({"config": {"choice_format": "cloze"}}) == "cloze"
    assert trained_choice_format({"config": {"k_context": 5}}) == "listed"  # trained before the setting: listed only
    assert trained_choice_format({}) is None  # an adapter copied by hand: the app's own setting stands


def test_raw_and_final_record_formats_load(tmp_path):
    from trainer.qa import load_records

    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"id": "r", "file": "a.pdf", "question": "q?", "options": {"A": "x", "B": "y"},
                                "answer": "B", "evidence": "span text"}) + "\n\n" +
                    json.dumps({"id": "f", "question": "q?", "options": {"A": "x", "B": "y"}, "answer": "A",
                                "evidence": {"file": "b.pdf", "page": 4, "span": "s"}, "part": "unseen"}) + "\n")
    raw, final = load_records(path)
    assert (raw.evidence_file, raw.evidence_page, raw.evidence_span) == ("a.pdf", None, "span text")
    assert (final.evidence_file, final.evidence_page, final.part) == ("b.pdf", 4, "unseen")
    path.write_text(json.dumps({"question": "q", "options": {"A": "x"}, "answer": "C"}) + "\n")
    with pytest.raises(ValueError, match=r"q.jsonl:1: the answer 'C'"):
        load_records(path)


def test_wilson_interval_and_gold_matching():
    from assistant.records import Evidence
    from trainer.evaluate import gold_rank, wilson
    from trainer.qa import QARecord

    low, high = wilson(8, 10)
    assert (round(low, 3), round(high, 3)) == (0.49, 0.943)
    record = QARecord("q", "?", {"A": "a"}, "A", evidence_file="g.pdf", evidence_page=2,
                      evidence_span="Give adrenaline  500\nmicrograms")
    wrong_page = Evidence(1, "d", "g.pdf", "t", 3, "3", "", 0.9, "Give adrenaline 500 micrograms IM.")
    gold = Evidence(2, "d", "g.pdf", "t", 2, "2", "", 0.8, "Now: Give adrenaline 500 micrograms IM.")
    assert gold_rank([wrong_page, gold], record) == 2
    assert gold_rank([wrong_page], record) is None


# ---------------------------------------------------------------------------------------------
# Real (tiny) runs
# ---------------------------------------------------------------------------------------------

def test_one_step_updates_both_groups_each_at_its_own_rate(make_cfg):
    """Adam's first step moves every parameter with a gradient by about its group's rate: so the
    largest change of the LoRA weights is lr_generator and of the encoder is lr_retriever."""
    from trainer.train import make_optimizer, train

    lr_gen, lr_ret = 1e-3, 1e-5
    cfg = make_cfg(max_steps=1, lr_generator=lr_gen, lr_retriever=lr_ret, scheduler="constant", max_grad_norm=0.0)
    final = train(cfg)
    lora_b = [w for name, w in adapter_weights(final).items() if "lora_B" in name]
    assert lora_b and max(float(w.abs().max()) for w in lora_b) == pytest.approx(lr_gen, rel=0.02)
    base = encoder_weights(Path(_packaged_encoder()))
    trained = encoder_weights(final / "retriever")
    change = max(float((trained[k] - base[k]).abs().max()) for k in base)
    assert change == pytest.approx(lr_ret, rel=0.05)
    rows = metrics_rows(cfg.output_path)
    assert len(rows) == 1 and float(rows[0]["lr_generator"]) == lr_gen and float(rows[0]["lr_retriever"]) == lr_ret
    assert float(rows[0]["ret_loss"]) > 0 and 0.0 <= float(rows[0]["retriever_acc"]) <= 1.0
    assert int(rows[0]["examples"]) == 2  # batch_size 2

    generator, encoder = torch.nn.Linear(2, 2), torch.nn.Linear(3, 3)
    optimizer = make_optimizer(cfg, generator, [encoder])
    groups = {g["name"]: g for g in optimizer.param_groups}
    assert groups["generator"]["lr"] == lr_gen and groups["retriever"]["lr"] == lr_ret
    assert groups["generator"]["params"][0] is generator.weight and groups["retriever"]["params"][0] is encoder.weight


def test_gradient_accumulation_makes_one_update_from_several_micro_batches(make_cfg):
    """The default config trains 1 question per micro-batch and updates every 4: the step count, the
    examples per step and the size of Adam's first update must follow the accumulated step, not the micro-batch."""
    from trainer.train import planned_steps, train

    lr_gen = 1e-3
    cfg = make_cfg(batch_size=1, grad_accum=3, max_steps=1, lr_generator=lr_gen, scheduler="constant",
                   max_grad_norm=0.0)
    assert planned_steps(cfg.replace(max_steps=0), 6, 1) == 2
    final = train(cfg)
    rows = metrics_rows(cfg.output_path)
    assert len(rows) == 1 and int(rows[0]["step"]) == 1 and int(rows[0]["examples"]) == 3
    lora_b = [w for name, w in adapter_weights(final).items() if "lora_B" in name]
    assert max(float(w.abs().max()) for w in lora_b) == pytest.approx(lr_gen, rel=0.02)  # one step, not three


def _packaged_encoder() -> str:
    from assistant.packaged import resolve_encoder_source

    return resolve_encoder_source("packaged")


def test_candidates_are_re_retrieved_each_epoch_with_the_current_encoder(make_cfg, monkeypatch):
    import trainer.train as train_module

    calls = []
    original = train_module.retrieve_candidates

    def spy(encoder, store, records, n, *args, **kwargs):
        calls.append(torch.tensor(encoder.encode(["probe: adrenaline dose in anaphylaxis"])[0]))
        return original(encoder, store, records, n, *args, **kwargs)

    monkeypatch.setattr(train_module, "retrieve_candidates", spy)
    cfg = make_cfg(epochs=2, lr_retriever=1e-3, train_limit=4)
    train_module.train(cfg)
    assert len(calls) == 2  # once per epoch
    assert not torch.allclose(calls[0], calls[1])  # the second epoch used the encoder as trained so far
    assert len(metrics_rows(cfg.output_path)) == 4  # 4 questions, batch 2, 2 epochs


def test_resume_gives_the_same_result_as_an_uninterrupted_run(make_cfg, tmp_path):
    from trainer.train import train

    # 4 questions, batch 2, 2 epochs: 4 steps; the run is killed after step 3, the first of epoch 2
    common = dict(epochs=2, checkpoint_every=1, keep_checkpoints=2, train_limit=4, lr_retriever=1e-4,
                  lr_generator=1e-3, lora_dropout=0.1)
    straight = make_cfg(output_dir=str(tmp_path / "straight"), **common)
    resumed = make_cfg(output_dir=str(tmp_path / "resumed"), **common)
    final_straight = train(straight)
    paused = train(resumed.replace(pause_after_steps=3))  # as if the session ended after step 3
    assert paused == resumed.output_path / "checkpoints" / "step-000003"
    assert not (resumed.output_path / "final").exists()
    assert (resumed.output_path / "checkpoints" / "step-000003" / "trainer_state.pt").is_file()
    final_resumed = train(resumed, resume=True)

    def losses(cfg):
        return [(r["step"], r["loss"], r["gen_loss"], r["ret_loss"]) for r in metrics_rows(cfg.output_path)]

    assert len(losses(straight)) == 4 and losses(straight) == losses(resumed)
    a, b = adapter_weights(final_straight), adapter_weights(final_resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    a, b = encoder_weights(final_straight / "retriever"), encoder_weights(final_resumed / "retriever")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert sorted(p.name for p in (resumed.output_path / "checkpoints").iterdir()) == ["step-000002", "step-000003"]


def test_checkpoint_loads_in_the_app_and_evaluates(make_cfg, tmp_path, shared_index, qa_file):
    from assistant.generator import load_generator
    from assistant.service import build_assistant
    from trainer.evaluate import evaluate, merge_reports
    from trainer.train import train

    cfg = make_cfg(max_steps=2, lr_retriever=1e-3, choice_format="listed")  # not the app's default layout
    final = train(cfg)
    manifest = json.loads((final / "checkpoint.json").read_text())
    assert manifest["base_embedding_model"] == "packaged" and manifest["config"]["k_context"] == 2

    settings = cfg.assistant_settings(checkpoint=str(final), precision="fp32").replace(choice_format="cloze")
    assistant = build_assistant(settings)
    assert assistant.settings.choice_format == "listed"  # the adapter is scored on the layout it learned
    assert assistant.query_encoder.source == str(final / "retriever")
    assert assistant.passage_encoder.source == _packaged_encoder()  # query side only: passages as indexed
    assert assistant.store.count() > 0 and assistant.settings.adapter_path == str(final / "adapter")
    loaded = load_generator(assistant.settings)
    assert loaded.info["adapter"] == str(final / "adapter") and hasattr(loaded.model, "peft_config")
    letter, scores, evidence = assistant.answerer.choose("How is severe malaria treated?",
                                                         {"A": "chloroquine", "B": "artesunate"}, top_k=2)
    assert letter in "AB" and len(evidence) == 2

    # two evaluations (as when one model is still training), merged into one report
    cloze = cfg.replace(choice_format="cloze")  # evaluated under the other layout: the checkpoint keeps its own
    evaluate(cloze, str(qa_file), {}, tmp_path / "baselines", precision="fp32", systems=["base", "rag"])
    evaluate(cloze, str(qa_file), {"jmlr": str(final)}, tmp_path / "joint", precision="fp32", systems=["jmlr"])
    out = tmp_path / "report"
    report = merge_reports([tmp_path / "baselines", tmp_path / "joint"], out)
    assert {p.name for p in out.iterdir()} >= {"report.md", "results.json", "predictions.jsonl",
                                               "accuracy_recall.png", "training_curves.png"}
    text = (out / "report.md").read_text()
    assert "## Training" in text and "CPU h" in text  # what training cost, from the checkpoint
    assert len((out / "predictions.jsonl").read_text().splitlines()) == 3 * len(QUESTIONS)
    results = json.loads((out / "results.json").read_text())
    for name in ("base", "rag", "jmlr"):
        assert results[name]["n"] == len(QUESTIONS) and 0 <= results[name]["accuracy"] <= 1
        assert {"seen", "unseen"} <= set(results[name]) and len(results[name]["ci95"]) == 2
    assert results["base"]["recall@5"] is None
    assert set(results["_paired"]) == {"jmlr-rag", "rag-base"}  # recomputed across the merged folders
    assert (results["rag"]["choice_format"], results["jmlr"]["choice_format"]) == ("cloze", "listed")
    assert "multiple-choice layout" in text and ": listed" in text
    assert results["_paired"]["jmlr-rag"]["n"] == len(QUESTIONS) and "## Paired differences" in text
    assert results["rag"]["recall@20"] == 1.0  # 9 passages in the store: every gold passage is in the top 20
    assert results["rag"]["recall@1"] <= results["rag"]["recall@5"] <= 1.0
    assert "(d) JMLR" in (out / "report.md").read_text() and report["meta"]["questions"] == len(QUESTIONS)


def test_a_stopped_evaluation_resumes_from_the_predictions_it_logged(make_cfg, tmp_path, qa_file):
    """An evaluation stopped part-way (here after one question, while writing the next) keeps what it
    scored: `resume` scores only the rest, and a changed setup scores everything again."""
    from trainer.evaluate import evaluate
    from trainer.progress import ProgressLog

    cfg, out = make_cfg(), tmp_path / "eval"
    evaluate(cfg, str(qa_file), {}, out, precision="fp32", systems=["rag"])
    log = out / "progress.jsonl"
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    assert [row["id"] for row in rows] == [question[0] for question in QUESTIONS]  # a row per question
    # marked so the test can tell it was taken from the log, not scored again
    kept = dict(rows[0], chosen="marked", correct=False)
    log.write_text(json.dumps(kept) + "\n" + json.dumps(rows[1])[:40])  # the second row torn by the stop

    resumed = evaluate(cfg, str(qa_file), {}, out, precision="fp32", systems=["rag"], resume=True)
    chosen = [json.loads(line)["chosen"] for line in (out / "predictions.jsonl").read_text().splitlines()]
    assert chosen == ["marked"] + [row["chosen"] for row in rows[1:]]  # the rest scored again, alike
    assert resumed["meta"]["carried_over"] == {"rag": 1} and "carried over" in (out / "report.md").read_text()
    assert resumed["results"]["rag"]["n"] == len(QUESTIONS)
    assert len(ProgressLog(log, ("system", "setup", "id"), resume=True).rows) == len(QUESTIONS)  # torn line skipped

    other = evaluate(cfg.replace(k_context=1), str(qa_file), {}, out, precision="fp32", systems=["rag"], resume=True)
    assert other["meta"]["carried_over"] == {"rag": 0}  # another setup's predictions are not reused


def test_training_both_sides_re_embeds_into_a_new_collection_the_app_uses(make_cfg, tmp_path):
    from assistant.service import build_assistant
    from trainer.train import train

    cfg = make_cfg(train_sides="both", max_steps=2, lr_retriever=1e-5, data_dir=str(tmp_path / "own-index"),
                   reindex_every=1)
    final = train(cfg)
    assert (final / "passage_encoder").is_dir() and (cfg.output_path / "passage_encoders" / "step-000001").is_dir()
    manifest = json.loads((final / "checkpoint.json").read_text())
    assistant = build_assistant(cfg.assistant_settings(checkpoint=str(final), precision="fp32"))
    assert assistant.passage_encoder.source == str(final / "passage_encoder")
    assert assistant.store.name == manifest["collection"] != f"guidelines-{_base_fingerprint()}"
    assert assistant.store.count() == 9 and len(assistant.store.list_documents()) == 3
    hits = assistant.retriever().search("severe malaria artesunate", 1)
    assert hits and hits[0].file == "malaria.pdf"


def _base_fingerprint() -> str:
    from assistant.encoder import fingerprint as _fingerprint

    return _fingerprint(_packaged_encoder())


def test_frozen_retriever_baseline_trains_only_the_generator(make_cfg):
    from trainer.train import train

    cfg = make_cfg(max_steps=2, lambda_ret=0.0, lr_retriever=0.0)
    final = train(cfg)
    base, trained = encoder_weights(Path(_packaged_encoder())), encoder_weights(final / "retriever")
    assert all(torch.equal(base[k], trained[k]) for k in base)
    rows = metrics_rows(cfg.output_path)
    assert rows[-1]["ret_loss"] == "" and rows[-1]["retriever_acc"] == ""
    assert any(float(w.abs().max()) > 0 for n, w in adapter_weights(final).items() if "lora_B" in n)


def test_gold_variant_adds_its_term_to_the_retriever_loss_of_the_same_step(make_cfg, tmp_path):
    """Same seed, same sampled passages: the supervised variant's retriever loss is the pure one plus a
    positive cross-entropy (every tiny question's gold passage is among its 5 candidates)."""
    from trainer.train import train

    losses = {}
    for weight in (0.0, 2.0):
        cfg = make_cfg(max_steps=1, gold_weight=weight, utility_norm="zscore", retriever_loss="kl",
                       output_dir=str(tmp_path / f"gold-{weight}"))
        train(cfg)
        losses[weight] = float(metrics_rows(cfg.output_path)[0]["ret_loss"])
    assert losses[2.0] > losses[0.0] + 0.05


@pytest.mark.slow
def test_smoke_config_end_to_end_on_the_real_model_in_nf4(tmp_path, guideline_dir, qa_file):
    """trainer/configs/smoke.toml as shipped, on the packaged SmolLM2-135M in nf4 (data from the test)."""
    from assistant.generator import load_generator
    from assistant.service import build_assistant
    from trainer.train import train

    from conftest import MODEL_CACHE

    cfg = load_config(ROOT / "trainer" / "configs" / "smoke.toml",
                      {"output_dir": str(tmp_path / "smoke"), "train_file": str(qa_file),
                       "guidelines_dir": str(guideline_dir), "model_cache": str(MODEL_CACHE)})
    assert cfg.precision == "nf4" and cfg.generator_model == "fast"
    final = train(cfg)
    rows = metrics_rows(cfg.output_path)
    assert len(rows) == cfg.max_steps and all(math.isfinite(float(r["loss"])) for r in rows)
    assert (cfg.output_path / "checkpoints" / "step-000002" / "trainer_state.pt").is_file()
    # the generator did train after the no-grad utility passes (bitsandbytes' CPU repacking would stop it)
    lora_b = [w for name, w in adapter_weights(final).items() if "lora_B" in name]
    assert lora_b and all(float(w.abs().max()) > 0 for w in lora_b)
    assistant = build_assistant(cfg.assistant_settings(checkpoint=str(final), precision="nf4"))
    loaded = load_generator(assistant.settings)
    assert loaded.info["precision"] == "nf4" and loaded.info["adapter"] == str(final / "adapter")


def test_answer_utility_keeps_each_passage_with_its_own_loss(tiny_generator):
    """Utility prompts are batched by length; each value must still belong to its own passage."""
    from assistant.likelihood import completion_nll
    from assistant.records import Chunk
    from trainer.jmlr import Example, Models, answer_utility, choice_prompt, to_evidence
    from trainer.qa import QARecord, target_text

    texts = ["Give 500 micrograms.", "Observe for 6 hours after two doses of adrenaline in all adults " * 6,
             "Call for help.", "Lie the person flat and raise the legs " * 3]
    chunks = [Chunk(doc_id="d" * 64, file_name="a.pdf", title="A", page=1, page_label="1", section="s",
                    chunk_index=i, char_start=0, char_end=len(t), text=t) for i, t in enumerate(texts)]
    record = QARecord(id="q", question="What dose?", options={"A": "5 mg", "B": "500 micrograms"}, answer="B")
    models = Models(generator=tiny_generator.model, tokenizer=tiny_generator.tokenizer, query_encoder=None,
                    passage_encoder=None, passage_vectors=None)
    picks = [torch.tensor([3, 0, 1, 2])]
    cfg = TrainConfig(utility_batch_size=2, max_length=1024)
    (values,) = answer_utility(models, [Example(record=record, candidates=chunks, query="q")], picks, cfg)
    with torch.no_grad():
        expected = torch.stack([completion_nll(tiny_generator.model, tiny_generator.tokenizer,
                                               [choice_prompt(tiny_generator.tokenizer, record,
                                                              [to_evidence(chunks[i], 1, 0.0)], cfg.choice_format)],
                                               [target_text(record, False, cfg.choice_format)], 1024)[0]
                                for i in picks[0].tolist()])
    assert torch.allclose(values, expected, atol=1e-4)
    assert len(set(values.tolist())) == 4  # distinct passages, distinct losses: a mix-up would show


def test_final_checkpoint_is_the_best_dev_evaluation_not_the_last_step(make_cfg):
    """With dev_every, final/ holds the dev evaluation (step 0 included) with the best accuracy + recall@5
    among those that kept the untrained retriever's recall."""
    from assistant.checkpoint import read_manifest
    from trainer.train import train

    cfg = make_cfg(max_steps=2, dev_every=1, lr_retriever=0.5, scheduler="constant", max_grad_norm=0.0)
    final = train(cfg)
    dev = [row for row in csv.DictReader((cfg.output_path / "metrics.csv").open()) if row["dev_recall5"]]
    assert [int(row["step"]) for row in dev] == [0, 1, 2]
    floor, mrr_floor = float(dev[0]["dev_recall5"]), float(dev[0]["dev_mrr"])
    eligible = [row for row in dev if float(row["dev_recall5"]) >= floor and float(row["dev_mrr"]) >= mrr_floor]
    best = max(eligible, key=lambda row: float(row["dev_accuracy"]) + float(row["dev_recall5"]))  # first on ties
    selection = read_manifest(final)["selection"]
    assert selection["selected_step"] == int(best["step"]) and selection["last_step"] == 2
    assert selection["base_dev_recall5"] == pytest.approx(floor)
    trained, base = encoder_weights(final / "retriever"), encoder_weights(Path(_packaged_encoder()))
    assert all(torch.equal(base[k], trained[k]) for k in base) == (selection["selected_step"] == 0)


def test_a_higher_score_that_loses_dev_retrieval_is_not_kept(make_cfg, monkeypatch):
    """The selection rule on a real run with scripted dev figures: step 1 has the highest accuracy + recall
    but recall below the untrained retriever's, so step 2 ships."""
    import trainer.train as training
    from assistant.checkpoint import read_manifest

    figures = iter([(0.50, 0.80, 0.60), (0.95, 0.70, 0.70), (0.60, 0.80, 0.60)])  # steps 0, 1, 2
    monkeypatch.setattr(training, "dev_scores", lambda run: dict(zip(("accuracy", "recall@5", "mrr"), next(figures))))
    cfg = make_cfg(max_steps=2, dev_every=1)
    selection = read_manifest(training.train(cfg))["selection"]
    assert selection["selected_step"] == 2 and selection["dev_accuracy_plus_recall5"] == pytest.approx(1.4)
    assert selection["base_dev_recall5"] == pytest.approx(0.80) and selection["base_dev_mrr"] == pytest.approx(0.60)


def test_mean_reciprocal_rank_counts_a_missed_gold_passage_as_zero():
    from trainer.evaluate import Prediction, mean_reciprocal_rank

    def ranked(rank: int | None) -> Prediction:
        return Prediction(id="q", part="", answer="A", chosen="", correct=False, gold_rank=rank, scores={})

    assert mean_reciprocal_rank([ranked(1), ranked(2), ranked(None), ranked(4)]) == pytest.approx(1.75 / 4)
    # a passage moved from rank 2 to 3 changes it, where recall@5 would not move
    assert mean_reciprocal_rank([ranked(3)]) < mean_reciprocal_rank([ranked(2)])
    assert math.isnan(mean_reciprocal_rank([]))


def test_a_gold_passage_moved_down_without_leaving_the_top_5_is_not_kept(make_cfg, monkeypatch):
    """The finer floor: step 1 keeps recall@5 and answers better, but its gold passages sit lower (mean
    reciprocal rank below step 0's), so step 2, which kept both, ships; with a tolerance step 1 would."""
    import trainer.train as training
    from assistant.checkpoint import read_manifest

    def run(mrr_tolerance: float) -> int:  # each in its own output folder
        figures = iter([(0.50, 0.90, 0.80), (0.90, 0.90, 0.78), (0.60, 0.90, 0.81)])  # steps 0, 1, 2
        monkeypatch.setattr(training, "dev_scores",
                            lambda run: dict(zip(("accuracy", "recall@5", "mrr"), next(figures))))
        cfg = make_cfg(max_steps=2, dev_every=1, mrr_tolerance=mrr_tolerance)
        cfg = cfg.replace(output_dir=f"{cfg.output_dir}-{mrr_tolerance}")
        return read_manifest(training.train(cfg))["selection"]["selected_step"]

    assert run(0.0) == 2
    assert run(0.05) == 1


# ---------------------------------------------------------------------------------------------
# Scale-out, run for real: two processes under accelerate (gloo on the CPU), and a Chroma server
# ---------------------------------------------------------------------------------------------

def _toml(cfg: TrainConfig, path: Path) -> Path:
    """The config as a TOML file the command line reads (strings, numbers, booleans, lists of strings)."""
    lines = []
    for key, value in cfg.as_dict().items():
        rendered = ("true" if value else "false") if isinstance(value, bool) else \
            json.dumps(value) if isinstance(value, (str, list)) else repr(value)
        lines.append(f"{'lambda' if key == 'lambda_ret' else key} = {rendered}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _update(folder: Path, base: dict[str, torch.Tensor]) -> torch.Tensor:
    """A checkpoint's change from the untrained weights, flattened (LoRA A starts random, B at zero)."""
    trained = adapter_weights(folder)
    return torch.cat([(trained[k] - base.get(k, torch.zeros_like(trained[k]))).flatten() for k in sorted(trained)])


@pytest.mark.slow
def test_two_processes_under_accelerate_match_one_process_with_the_same_global_batch(
        tmp_path, tiny_model_dir, guideline_dir, qa_file):
    """`accelerate launch --num_processes 2 --cpu`: each process trains on its half of every global batch of 2,
    gradients are averaged over gloo, the index and the checkpoints are written once by the main process. One
    process with batch 2 must reach the same adapter within a stated tolerance (the query encoder's dropout
    draws differ between the two runs, and so may a ranking, so the comparison allows a small difference)."""
    from assistant.checkpoint import read_manifest
    from assistant.store import GuidelineStore, make_client

    common = dict(max_steps=2, lora_dropout=0.0, k_sampled=5, scheduler="constant", max_grad_norm=0.0,
                  checkpoint_every=1, lr_generator=1e-3)
    single = tiny_config(tmp_path / "single", tiny_model_dir, guideline_dir, qa_file,
                         data_dir=str(tmp_path / "single-index"), batch_size=2, **common)
    double = tiny_config(tmp_path / "double", tiny_model_dir, guideline_dir, qa_file,
                         data_dir=str(tmp_path / "double-index"), batch_size=1, **common)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASSISTANT_", "CHROMA_"))}
    env.update({"OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"})
    for cfg, launcher in ((single, [sys.executable, "-m", "trainer"]),
                          (double, [str(Path(sys.executable).parent / "accelerate"), "launch", "--num_processes", "2",
                                    "--num_machines", "1", "--multi_gpu", "--mixed_precision", "no", "--dynamo_backend",
                                    "no", "-m", "trainer"])):
        (cfg.output_path.parent).mkdir(parents=True, exist_ok=True)
        done = subprocess.run(launcher + ["train", "--config", str(_toml(cfg, cfg.output_path.parent / "cfg.toml"))],
                              cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, done.stderr[-3000:]
        if cfg is double:
            log = done.stderr
    # both processes trained: 2 steps x 2 questions, one from each process per step
    manifest = read_manifest(double.output_path / "final")
    assert manifest["processes"] == 2 and manifest["step"] == 2 and manifest["examples_seen"] == 4
    assert read_manifest(single.output_path / "final")["examples_seen"] == 4
    # the index and the checkpoints were written once, by the main process
    assert log.count("Indexed 3 PDFs into") == 1 and log.count("Training done in") == 1
    settings = double.assistant_settings()
    store = GuidelineStore(make_client(settings), manifest["collection"])
    assert len(store.list_documents()) == 3
    steps = sorted(p.name for p in (double.output_path / "checkpoints").iterdir())
    assert steps == ["step-000001"]  # the last step is final/, not a resumable checkpoint
    # the same global batch: the same update, within tolerance
    # LoRA A's random start is seeded alike in both runs and does not move on step 1 (B = 0 gives it no
    # gradient), so step 1's A is the start; B starts at zero.
    first = adapter_weights(single.output_path / "checkpoints" / "step-000001")
    base = {k: v for k, v in first.items() if "lora_A" in k}
    one, two = _update(single.output_path / "final", base), _update(double.output_path / "final", base)
    cosine = float(torch.nn.functional.cosine_similarity(one, two, dim=0))
    relative = float((one - two).norm() / one.norm())
    assert cosine > 0.95 and relative < 0.3, (cosine, relative)


@pytest.mark.slow
def test_training_against_a_chroma_server_indexes_and_trains_there(tmp_path, make_cfg, monkeypatch):
    """chroma_host set: the trainer indexes its PDFs into the server, trains against it, and the app opens
    the checkpoint's collection from the same server; nothing is embedded under the data folder."""
    from assistant.checkpoint import read_manifest
    from assistant.store import GuidelineStore, make_client
    from trainer.train import train

    from app_server import CHROMA, running_chroma

    if not CHROMA.is_file():
        pytest.skip(reason=f"the chroma command is not installed at {CHROMA}")
    with running_chroma(tmp_path / "chroma") as port:
        monkeypatch.setenv("ASSISTANT_CHROMA_HOST", "127.0.0.1")
        monkeypatch.setenv("ASSISTANT_CHROMA_PORT", str(port))
        cfg = make_cfg(max_steps=1, data_dir=str(tmp_path / "data"))
        final = train(cfg)
        settings = cfg.assistant_settings()
        assert settings.chroma_host == "127.0.0.1" and not settings.chroma_dir.exists()
        client = make_client(settings)
        assert type(client).__name__ != "PersistentClient"
        store = GuidelineStore(client, read_manifest(final)["collection"])
        assert len(store.list_documents()) == 3 and store.count() > 3
