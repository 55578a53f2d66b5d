"""Realistic message text for the benchmarks: English by real word frequency, plus domain terms.

Words and frequencies come from the ``wordfreq`` package (the ``bench``
extra: ``pip install -e '.[bench]'``), so common words are as common and rare
words as rare as in English text; a small share of the words drawn are the
neuroscience terms the chat backend's users talk about, with Zipf
frequencies among themselves. The tests keep the synthetic vocabulary of
``chatdb.testing.dataset``, which needs no extra package.
"""

from __future__ import annotations

from functools import cache

from chatdb.testing.dataset import REAL_WORDS, Vocabulary

ENGLISH_WORDS = 50_000
DOMAIN_SHARE = 0.012
# The domain part of the dataset's word list (up to "epilepsy"), and plurals that
# stem to the same lexemes, as users write both.
DOMAIN_TERMS = REAL_WORDS[: REAL_WORDS.index("epilepsy") + 1]


@cache
def english() -> Vocabulary:
    """The ``ENGLISH_WORDS`` most frequent English words and ``DOMAIN_TERMS``, by frequency."""
    from wordfreq import top_n_list, word_frequency

    frequencies: dict[str, float] = {}
    for word in top_n_list("en", ENGLISH_WORDS):
        frequencies[word] = word_frequency(word, "en")
    scale = (1 - DOMAIN_SHARE) / sum(frequencies.values())
    frequencies = {word: f * scale for word, f in frequencies.items()}
    weights = [1.0 / rank for rank in range(1, len(DOMAIN_TERMS) + 1)]
    for term, weight in zip(DOMAIN_TERMS, weights, strict=True):
        share = DOMAIN_SHARE * weight / sum(weights)
        for form, part in ((term, 0.7), (term + "s", 0.3)):
            frequencies[form] = frequencies.get(form, 0.0) + share * part
    return Vocabulary.from_frequencies(
        sorted(frequencies.items(), key=lambda item: item[1], reverse=True)
    )
