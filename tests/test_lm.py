import math
from collections import Counter

import numpy as np
import pytest

from ds2_keras.core.errors import LanguageModelError
from ds2_keras.decode.lm import FALLBACK_DISCOUNTS, _discounts, build_arpa, manifest_corpus, read_text_corpus


def load(path):
    """The ARPA as KenLM reads it (the `kenlm` module is a test extra: it builds from source)."""
    return pytest.importorskip("kenlm").Model(str(path))


def conditional(model, context, word, sentence_start=True):
    """log10 p(word | context) as KenLM computes it from the ARPA."""
    import kenlm

    state = kenlm.State()
    (model.BeginSentenceWrite if sentence_start else model.NullContextWrite)(state)
    for previous in context:
        following = kenlm.State()
        model.BaseScore(state, previous, following)
        state = following
    return model.BaseScore(state, word, kenlm.State())


def random_corpus(seed=0, sentences=400):
    rng = np.random.default_rng(seed)
    words = "the cat sat on a mat dog ran far away big red".split()
    return [" ".join(rng.choice(words, rng.integers(1, 9))) for _ in range(sentences)], words


@pytest.mark.parametrize("order", [2, 3, 5])
def test_kenlm_loads_the_arpa_and_each_context_sums_to_one(tmp_path, order):
    corpus, words = random_corpus()
    model = load(build_arpa(corpus, tmp_path / "lm.arpa", order=order))
    assert model.order == order
    vocabulary = words + ["</s>", "<unk>"]
    contexts = [([], True), ([], False), (["the"], True), (["the", "cat"], False),
                (["red", "red", "dog"], True), (["zebra"], False)]
    for context, sentence_start in contexts:
        total = sum(10 ** conditional(model, context, w, sentence_start) for w in vocabulary)
        assert total == pytest.approx(1.0, abs=1e-5), (context, sentence_start)


def test_probabilities_match_a_hand_computed_kneser_ney_model(tmp_path):
    # Counts are too few for modified-KN statistics, so KenLM's fallback discounts apply:
    # unigram KN counts a=1, b=1, c=1, </s>=2 (total 5; discounts 0.5*3 + 1.0*1 = 2.5, gamma 0.5);
    # uniform over 5 predictable words.  p(a) = 0.5/5 + 0.5/5 = 0.2, p(</s>) = 1/5 + 0.1 = 0.3.
    # Bigrams after "a": b twice, c once (total 3; gamma (1.0 + 0.5)/3 = 0.5).
    model = load(build_arpa(["a b", "a b", "a c"], tmp_path / "lm.arpa", order=2))
    expected = {("a", None): 0.2, ("</s>", None): 0.3, ("<unk>", None): 0.1,
                ("b", "a"): (2 - 1.0) / 3 + 0.5 * 0.2, ("c", "a"): (1 - 0.5) / 3 + 0.5 * 0.2,
                ("</s>", "a"): 0.5 * 0.3}
    for (word, previous), probability in expected.items():
        context = [] if previous is None else [previous]
        assert conditional(model, context, word, sentence_start=False) == pytest.approx(math.log10(probability))


def reference_kneser_ney(sentences, order):
    """Interpolated modified KN straight from its definition, n-gram by n-gram (slow, obvious)."""
    padded = [["<s>", *s.split(), "</s>"] for s in sentences]
    raw = Counter(tuple(w[i:i + n]) for w in padded for n in range(1, order + 1) for i in range(len(w) - n + 1))
    adjusted = {g: c if len(g) == order or g[0] == "<s>" else 0 for g, c in raw.items()}
    for g in raw:
        if len(g) > 1 and g[1:] in adjusted and len(g) - 1 < order and g[1] != "<s>":
            adjusted[g[1:]] += 1
    adjusted[("<s>",)] = 0
    discounts = {n: _discounts(np.array([c for g, c in adjusted.items() if len(g) == n])) for n in range(1, order + 1)}
    predictable = len({w for words in padded for w in words}) + 1 - 1  # + <unk>, - <s>

    def probability(g):
        n, context = len(g), g[:-1]
        siblings = [c for h, c in adjusted.items() if len(h) == n and h[:-1] == context]
        total, d = sum(siblings), discounts[n]
        gamma = sum(d[min(c, 3)] for c in siblings) / total
        lower = probability(g[1:]) if n > 1 else 1 / predictable
        count = adjusted.get(g, 0)
        return (count - d[min(count, 3)]) / total + gamma * lower

    return {g: probability(g) for g in raw if g != ("<s>",)}


def test_every_ngram_probability_matches_the_textbook_definition(tmp_path):
    corpus, _ = random_corpus(seed=1, sentences=150)
    model = load(build_arpa(corpus, tmp_path / "lm.arpa", order=3))
    for ngram, probability in reference_kneser_ney(corpus, 3).items():
        if ngram[0] == "<s>":
            actual = conditional(model, ngram[1:-1], ngram[-1], sentence_start=True)
        else:
            actual = conditional(model, ngram[:-1], ngram[-1], sentence_start=False)
        assert actual == pytest.approx(math.log10(probability), abs=1e-5), ngram


def test_modified_kneser_ney_discounts_follow_chen_and_goodman():
    adjusted = np.array([1] * 10 + [2] * 4 + [3] * 3 + [4] * 2 + [7])
    y = 10 / (10 + 2 * 4)
    expected = [0, 1 - 2 * y * 4 / 10, 2 - 3 * y * 3 / 4, 3 - 4 * y * 2 / 3]
    np.testing.assert_allclose(_discounts(adjusted), expected)
    np.testing.assert_allclose(_discounts(np.array([1, 1, 2])), (0, *FALLBACK_DISCOUNTS))


def test_arpa_header_counts_match_its_sections(tmp_path):
    text = build_arpa(["a b", "b a b"], tmp_path / "lm.arpa", order=3).read_text()
    header, body = text.split("\n\n", 1)
    declared = [int(line.split("=")[1]) for line in header.splitlines()[1:]]
    *blocks, end = body.strip().split("\n\n")
    assert end == "\\end\\"
    assert [block.splitlines()[0] for block in blocks] == ["\\1-grams:", "\\2-grams:", "\\3-grams:"]
    sections = [block.splitlines()[1:] for block in blocks]
    assert [len(s) for s in sections] == declared
    unigrams = {line.split("\t")[1]: line for line in sections[0]}
    assert set(unigrams) == {"<s>", "</s>", "<unk>", "a", "b"}
    assert unigrams["<s>"].startswith("-99")
    assert all(len(line.split("\t")) == 2 for line in sections[-1])  # no backoff at the top order


@pytest.mark.parametrize("sentences, order, message", [
    (["a b"], 1, "at least 2"),
    (["", "  "], 3, "no sentences"),
    (["a", "b"], 4, "no sentence is long enough for 4-grams"),
])
def test_build_refuses_what_it_cannot_model(tmp_path, sentences, order, message):
    with pytest.raises(ValueError, match=message):
        build_arpa(sentences, tmp_path / "lm.arpa", order=order)
    assert not (tmp_path / "lm.arpa").exists()


def test_text_corpus_is_normalized_and_unmappable_lines_are_counted(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("Hello, World!\n\n  The 2 cats.\n日本語\n", encoding="utf-8")
    assert read_text_corpus(corpus) == (["hello world", "the two cats"], 1)
    with pytest.raises(LanguageModelError, match="missing.txt: cannot read LM corpus"):
        read_text_corpus(tmp_path / "missing.txt")


def test_manifest_transcripts_become_the_corpus(tmp_path):
    manifest = tmp_path / "train.csv"
    manifest.write_text("audio_path,transcript_path,text,duration\n"
                        "/a.wav,/a.txt,the cat sat,1.0\n/b.wav,/b.txt,,0.5\n/c.wav,/c.txt,a dog,2.0\n")
    assert manifest_corpus([manifest]) == ["the cat sat", "a dog"]
