"""Words <-> token ids for captioning: the tokeniser, the vocabulary, and the padded id tensor
the engine batches.

A sentence is lower-cased and cut into words (letters and digits, with an apostrophe inside
a word kept: "man's"); punctuation is dropped, as BLEU is then computed on the same words.
The vocabulary is the training captions' words, most frequent first (ties alphabetical), after
four special tokens whose ids the models rely on (models/captioning.py):

    0 <pad>    fills a caption out to the common length; the loss ignores it
    1 <start>  the first input of every caption
    2 <end>    the last word to predict: the model says when the sentence is over
    3 <unk>    a word too rare in the training captions to be learnt (fewer than
               RARE_BELOW uses, in sets of LARGE_SET images or more)

The vocabulary is the run's list of classes (RUN/config.json "classes", id = position), and
RUN/vocabulary.json repeats it with its special ids and caption length for other programs.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import torch

from ..atomic import atomic_write_text

PAD, START, END, UNKNOWN = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = [PAD, START, END, UNKNOWN]
VOCABULARY_FILE = "vocabulary.json"
RARE_BELOW, LARGE_SET = 5, 1000
MAX_TOKENS = 32  # longer captions are cut (after <start>, before <end>)
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenise(sentence: str) -> list[str]:
    return _WORD.findall(sentence.lower())


@dataclass
class Vocabulary:
    tokens: list[str]   # SPECIALS, then the words

    @classmethod
    def build(cls, captions: list[list[str]]) -> "Vocabulary":
        """From every training image's sentences."""
        counts = Counter(word for sentences in captions for s in sentences
                         for word in tokenise(s))
        least = RARE_BELOW if len(captions) >= LARGE_SET else 1
        words = sorted((w for w, c in counts.items() if c >= least),
                       key=lambda w: (-counts[w], w))
        return cls(SPECIALS + words)

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, captions: list[list[str]], per_image: int, length: int) -> torch.Tensor:
        """int64 N x per_image x length: <start> ids <end> <pad>...; an image with fewer
        sentences has rows of <pad> only (they add nothing to the loss)."""
        index = {token: i for i, token in enumerate(self.tokens)}
        unknown = index[UNKNOWN]
        ids = torch.zeros((len(captions), per_image, length), dtype=torch.int64)
        for i, sentences in enumerate(captions):
            for k, sentence in enumerate(sentences[:per_image]):
                words = [index.get(w, unknown) for w in tokenise(sentence)][:length - 2]
                row = [index[START], *words, index[END]]
                ids[i, k, :len(row)] = torch.tensor(row)
        return ids

    def decode(self, ids) -> list[str]:
        """The words of one caption's ids, up to <end>, without <start> and <pad>."""
        words = []
        for i in (ids.tolist() if hasattr(ids, "tolist") else ids):
            token = self.tokens[i]
            if token == END:
                break
            if token not in (PAD, START):
                words.append(token)
        return words

    def write(self, run_dir: Path, caption_length: int) -> None:
        atomic_write_text(Path(run_dir) / VOCABULARY_FILE, json.dumps(
            {"tokens": self.tokens, "pad": 0, "start": 1, "end": 2, "unknown": 3,
             "caption_length": caption_length}, indent=1) + "\n")


def caption_length(captions: list[list[str]]) -> int:
    """Tokens in the longest training caption with <start> and <end>, at most MAX_TOKENS."""
    longest = max((len(tokenise(s)) for sentences in captions for s in sentences), default=0)
    return min(longest + 2, MAX_TOKENS)
