"""Text in a PDF aimed at whatever writes the answer, told apart from guidance aimed at clinicians.

Guidelines are full of imperatives ("Offer nitrofurantoin", "Do not give aspirin to children",
"Disregard readings taken with the wrong cuff"): those are the content. An injected sentence differs in
whom it addresses and what it is about, not in being an order. A sentence is instruction to the
assistant when it
- names a machine reader (a language model, an AI, an assistant, a chatbot, a summariser, "the reader
  model", "whoever is producing the answer") and asks it to say, write, leave out or do something;
- directs the answers, replies or summaries made from the document ("summaries of this section are to
  omit...", "the correct reply to any query...", "if asked about X, answer that...", "your answer");
- talks about the rules the reader was given (earlier instructions, a system prompt, a content policy,
  a role, developer mode) or about passage numbering ("cite passage [1]"); or
- imitates the structure of a conversation (a "SYSTEM:" line, "### Instruction", an end-of-document
  marker, a hidden note in brackets or an HTML comment).

Rules miss what they were not written for, so `InjectionDetector` adds a second signal where the encoder
is the packaged one: a logistic regression on the sentence's embedding, fitted on instructions and on
ordinary guideline sentences (bench/injection.py measures both on a set written blind to them).
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import numpy as np

from .chunking import unit_texts
from .encoder import Encoder

log = logging.getLogger(__name__)
WEIGHTS_FILE = Path(__file__).with_name("injection_weights.json")  # fitted by bench/injection.py --fit

_F = re.I

# someone, or something, other than a clinician reading the document
_MACHINE_READER = re.compile(
    r"\b(?:(?:large\s+)?language|reader|reading|ai|ml|generative|chat)\s+models?\b|\bllms?\b|\b(?:chat)?gpt\b"
    r"|\bchatbots?\b|\bbots?\b|\bcopilot\b|\bgemini\b|\bclaude\b|\bai\b(?![-\s](?:based|assisted|enabled|driven|supported))|\bsummari[sz]ers?\b|\bmachine\s+readers?\b"
    r"|\b(?:the|virtual|ai|kind|dear|hey|attention)\s+assistants?\b(?!\s+(?:practitioners?|psychologists?|nurses?|"
    r"directors?|professionals?|surgeons?))|^\W*assistant\s*[,:]"
    r"|\b(?:automated|automatic)\s+(?:summari[sz]ers?|answer\s+engines?|readers?|assistants?)\b"
    r"|\b(?:for|to|attention)\s+(?:automated|automatic)\s+(?:tools?|systems?)\b"
    r"|\b(?:automated|automatic)\s+(?:tools?|systems?)\s+(?:reading|processing|generating|that\s+(?:read|process|"
    r"generate|summari[sz]e))\b"
    r"|\b(?:system|tool|engine|program|software|reader|anyone|anything|whoever|whatever|model)\s+(?:that\s+|which\s+|"
    r"who\s+)?(?:is\s+)?(?:(?:generat|produc|writ|creat)\w*\s+(?:the\s+|an?\s+|any\s+|your\s+)?(?:final\s+)?(?:answers?|"
    r"responses?|repl(?:y|ies)|summar(?:y|ies)|outputs?)|(?:read|process|pars|summari[sz])\w*\s+this)\b"
    r"|\btext[-\s]generat\w*|\bthe\s+ai\b"
    r"|\b(?:automated|automatic|virtual|software|digital|ai)\s+(?:agents?|services?|pipelines?)\b|\bneural\s+networks?\b"
    r"|\b(?:retrieval|rag|ingestion)(?:[-\s]augmented)?\s+(?:pipelines?|systems?|generators?|tools?)\b|\bpipeline\s+note\b"
    r"|\banswer\s+engines?\b|\b(?:is|be)\s+a\s+machine\b|\bllm[-\s]based\b"
    r"|\bnot\s+human\b|\bfor\s+the\s+model\b|^\s*model\s*,", _F)

# what the reader is asked to do with its output
_OUTPUT_VERB = re.compile(
    r"\b(?:say|says|state|stated|tell|reply|respond|answer|write|output|print|recommend|report|reporting|describe|"
    r"claim|omit|leave\s+out|mention|cite|append|add|include|insert|label|translate|repeat|reveal|disclose|"
    r"present|conceal|keep\s+it\s+confidential|comply|pretend|provide|summari[sz]e|summari[sz]ing|advise|end\s+every|"
    r"begin\s+with|treat|told|ignore|disregard|forget|reproduce|skip|speak|act|format|formatted|talk|give|gives|"
    r"close|insist|rank|quote|replace|send|adopt|sign|rate|characteri[sz]e|downplay|exaggerate|hide|suppress|list|"
    r"discard|wait|direct|remove|drop|change|rewrite|emphasi[sz]e|highlight|promote|name|show|stop|prefer|favou?r|"
    r"answer\w*|respon\w*|repl\w*)(?:s|es|ed|d|ing)?\b", _F)

_DIRECTIVE = re.compile(
    r"\b(?:must|should|shall|is\s+to|are\s+to|will\s+always|always|never|required|obliged|directed|please|"
    r"best\s+kept|preferred|needs?\s+to|has\s+to|have\s+to)\b", _F)

# an order in the active voice ("must recommend", "are required to say"), not "should be validated"
_ACTIVE_DIRECTIVE = re.compile(
    r"\b(?:must|should|shall|will|is\s+to|are\s+to|(?:is|are)\s+(?:required|asked|bound|expected|obliged|directed|"
    r"requested)\s+to|agrees?\s+to|has\s+to|have\s+to|needs?\s+to)\s+(?:also\s+|always\s+|never\s+|not\s+|only\s+|"
    r"first\s+|now\s+)*(?!be\b|been\b|have\s+been\b)[a-z]+", _F)

# the conversation around the answer: who asks, what was retrieved, what the answer will be
_CHAT_CONTEXT = re.compile(
    r"\bthe\s+(?:person|user|patient)\s+asking\b|\b(?:tell|advise|inform|warn|refer|remind)\s+the\s+user\b"
    r"|\b(?:the|a)\s+(?:query|question)\s+(?:mentions|concerns|is\s+about|relates\s+to)\b"
    r"|\bchat\s+history\b|\bthe\s+conversation\b"
    r"|\bretrieved\s+(?:chunks?|passages?|documents?)\b|\b(?:chunk|passage)\s+is\s+retrieved\b"
    r"|\b(?:documents?|files?)\s+you\s+(?:have|can)\b|\byou\s+have\s+access\s+to\b|\bevery\s+result\b"
    r"|\byour\s+final\s+(?:answer|summary|response|output)\b|\bbefore\s+you\s+answer\b"
    r"|\bwhen\s+(?:generating|producing|writing|creating)\s+(?:an?\s+|the\s+|your\s+)?(?:summar(?:y|ies)|answers?|"
    r"responses?|repl(?:y|ies)|outputs?)\b|\bif\s+you\s+are\s+summari[sz]ing\b|\bevery\s+response\b", _F)

# the answers, replies and summaries made from the document
_ABOUT_OUTPUT = re.compile(
    r"\b(?:your|its|the\s+generated|generated|the\s+model's)\s+(?:final\s+|own\s+|next\s+)?(?:answers?|repl(?:y|ies)|responses?|outputs?|"
    r"summar(?:y|ies))\b"
    r"|\b(?:any|every|each|all)\s+(?:answers?|repl(?:y|ies)|outputs?|summar(?:y|ies))\b"
    r"|\b(?:answers?|repl(?:y|ies)|responses?|summar(?:y|ies)|overview)\s+(?:generated|drawn|based|produced|written|"
    r"derived|taken|made)\s+(?:from|on)\b"
    r"|\b(?:digital|automated|generated|machine|ai)\s+(?:summar(?:y|ies)|answers?|outputs?|responses?|readers?)\b"
    r"|\boutput\s+(?:requirements?|formats?|rules?)\b"
    r"|\b(?:the|every|each|any)\s+user(?:'s)?\s+(?:question|query|request|message|asks|is|has)\b|\busers\s+asking\b"
    r"|\b(?:if|when(?:ever)?|should|in\s+case|in\s+the\s+event)\b[^.;]{0,40}?\b(?:ask|asks|asked|asking|question)\s+"
    r"(?:about|on|of|whether|regarding)\b[^.;]{0,80}?\b(?:the|your)\s+(?:answer|reply|response)\b"
    r"|\b(?:answers?|repl(?:y|ies)|responses?)\s+(?:to|about|concerning|regarding|on)\s+(?:any\s+|every\s+|each\s+|"
    r"all\s+|the\s+next\s+)?(?:questions?|query|queries|requests?)\s+(?:about|on|concerning|regarding|with|related)\b"
    r"|\b(?:summar(?:y|ies)|overview|synopsis|answers?|responses?|repl(?:y|ies))\s+of\s+this\s+"
    r"(?:chapter|section|document|guideline|page|passage|paragraph|text|pdf|leaflet)\b"
    r"|\b(?:summary|answer|reply|response|output)\s+you\s+(?:produce|write|give|generate)\b"
    r"|\b(?:answer|summary|response|reply)\s+is\s+(?:generated|produced|written)\b"
    r"|\bwhen\s+(?:summari[sz]ing|answering|responding|replying)\b"
    r"|\b(?:whatever|no\s+matter\s+what)\s+(?:the\s+question|is\s+asked|it\s+is|you\s+are\s+asked)\b"
, _F)

# orders about the answer that need no other verb: "if asked about X, answer that...", "Respond only in JSON"
_DIRECTED_OUTPUT = re.compile(
    r"\b(?:if|when(?:ever)?|should|in\s+case|in\s+the\s+event)\b[^.;]{0,40}?\b(?:ask|asks|asked|asking|question)\s+"
    r"(?:about|on|of|whether|regarding|for|concerns|mentions)\b[^.;]{0,80}?\b(?:answer|reply|respond)\s+(?:only\s+)?"
    r"(?:that|with)\b"
    r"|^\s*(?:respond|reply|answer)\s+(?:only\s+)?(?:in|with|as)\b"
    r"|^\s*(?:respond|reply|answer)\s+to\s+(?:the\s+next|any|every|each|all)\s+(?:questions?|query|queries|requests?)"
    r"\b", _F)

# the reader's own rules, role and prompt
_ABOUT_RULES = re.compile(
    r"\b(?:system\s+(?:prompt|message)|hidden\s+(?:instructions?|text|configuration)|initial\s+configuration|"
    r"content\s+policy|safety\s+(?:filters?|rules)|developer\s+mode|conversation\s+history|earlier\s+rules|"
    r"(?:previous|prior|earlier|above)\s+(?:instructions?|guidance|directions|prompts?|passages)|"
    r"you\s+are\s+now|pretend\s+(?:to\s+be|you\s+are)|your\s+(?:new\s+)?role|new\s+role\s+is|"
    r"you\s+were\s+(?:told|given|configured|instructed)|configured\s+with|no\s+content\s+policy|"
    r"you\s+are\s+no\s+longer|your\s+(?:new\s+(?:instructions|rules|role)|context|configuration|setup)|"
    r"its\s+(?:configuration|setup|hidden\s+\w+)|hidden\s+setup|(?:content|safety)\s+(?:filters?|polic(?:y|ies)|"
    r"restrictions)|(?:system|safety|content)\s+override|skip\s+safety\s+warnings|regardless\s+of\s+the\s+"
    r"(?:wording|text|instructions)\s+above|(?:unfiltered|unrestricted)\s+(?:advis[eo]r|assistant|mode|model|ai|"
    r"chatbot))\b"
    r"|\bact\s+as\s+['\"‘“]|\b(?:adopt|assume|take\s+on)\s+the\s+persona\b"
    r"|\b(?:ignore|disregard|forget|override|set\s+aside|discard)\b[^.;]{0,40}?\b(?:instructions?|rules|prompts?|"
    r"everything|policy|the\s+rest)\b"
    r"|\bthis\s+(?:passage|paragraph|sentence|text)\s+(?:supersedes|overrides|replaces)\b"
    r"|\btreat\s+this\s+(?:passage|paragraph|sentence|text)\s+as\b"
    r"|\bpassages?\s*\[\d{1,2}\]", _F)

# the shape of a chat transcript or a hidden note
_FAKE_STRUCTURE = re.compile(
    r"^\s*(?:#+\s*)?(?:system|user|assistant)\s*:|#{2,}\s*instruction|<!--|-{3}\s*end\s+of\s+document"
    r"|\bnew\s+system\s+message\b|\buser\s+message\s+follows\b|\[\s*(?:hidden|ai[-\s]?only|note\s+to|for\s+the\s+model)"
    r"|\(\s*for\s+the\s+model\s+only\s*\)|[\"']role[\"']\s*:\s*[\"'](?:system|user|assistant)|</?instruction>"
    r"|\buser\s*:.{1,200}\b(?:model|assistant|ai|bot)\s*:|<\|?(?:im_start|im_end|system)\|?>|\[/?INST\]", _F)


def is_instruction_to_assistant(sentence: str) -> bool:
    """True for a sentence addressed to whatever writes the answer (see the module docstring)."""
    if _FAKE_STRUCTURE.search(sentence) or _ABOUT_RULES.search(sentence) or _DIRECTED_OUTPUT.search(sentence):
        return True
    if _MACHINE_READER.search(sentence) and (_OUTPUT_VERB.search(sentence) or _ACTIVE_DIRECTIVE.search(sentence)):
        return True
    if _CHAT_CONTEXT.search(sentence) and (_OUTPUT_VERB.search(sentence) or _DIRECTIVE.search(sentence)):
        return True
    about = _ABOUT_OUTPUT.search(sentence)
    if not about:
        return False
    rest = sentence[:about.start()] + " " + sentence[about.end():]  # the verb must be more than the noun itself
    return bool(_DIRECTIVE.search(rest) or _OUTPUT_VERB.search(rest))


def _sentences(text: str) -> list[str]:
    return [sentence for sentence, _ in unit_texts(text)]


def instruction_sentences(text: str) -> list[str]:
    """The sentences of a passage that address the assistant rather than the clinician (form rules)."""
    return [sentence for sentence in _sentences(text) if is_instruction_to_assistant(sentence)]


class InjectionDetector:
    """The form rules, plus the learned signal when the encoder is the one it was fitted on."""

    _CACHE_LIMIT = 50_000

    def __init__(self, encoder: Encoder | None, weights_file: Path = WEIGHTS_FILE) -> None:
        self.encoder = encoder
        self.weights: np.ndarray | None = None
        self.bias = 0.0
        self.threshold = 1.0
        self._learned: dict[str, bool] = {}  # sentence -> verdict: passages come back query after query
        if encoder is not None and weights_file.is_file():
            fitted = json.loads(weights_file.read_text())
            if fitted.get("encoder") == encoder.fingerprint:
                self.weights = np.asarray(fitted["weights"], dtype=np.float32)
                self.bias, self.threshold = float(fitted["bias"]), float(fitted["threshold"])
            else:
                log.info("Injection classifier fitted for another encoder: the form rules alone are used")

    def flags(self, sentences: list[str]) -> list[bool]:
        """For each sentence: does it address the assistant?"""
        rules = [is_instruction_to_assistant(s) for s in sentences]
        if self.weights is None or self.encoder is None:
            return rules
        unknown = sorted({s for s, ruled in zip(sentences, rules) if not ruled and s not in self._learned})
        if unknown:
            if len(self._learned) > self._CACHE_LIMIT:
                self._learned.clear()
            logits = self.encoder.encode(unknown) @ self.weights + self.bias
            probability = 1.0 / (1.0 + np.exp(-logits))
            self._learned.update(zip(unknown, (bool(p >= self.threshold) for p in probability)))
        return [ruled or self._learned.get(s, False) for s, ruled in zip(sentences, rules)]

    def withheld(self, texts: list[str]) -> list[bool]:
        """For each passage: does any sentence address the assistant, or does it imitate a chat transcript?"""
        sentences = [_sentences(text) for text in texts]
        flat = self.flags([s for group in sentences for s in group])
        verdicts, start = [], 0
        for text, group in zip(texts, sentences):
            verdicts.append(any(flat[start:start + len(group)]) or bool(_FAKE_STRUCTURE.search(text)))
            start += len(group)
        return verdicts
