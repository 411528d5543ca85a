"""Corpus head profile: pure per-text measures on hand-made attention, and on the real MiniLM
against the page's own run (attention.extract captures weights through a different path)."""
import numpy as np
import pytest

from models import attention, loader, profile
from models.cache import RunCache


def test_bundled_corpus_has_over_200_distinct_texts():
    texts = profile.load_corpus()
    assert len(texts) >= 200 and len(set(texts)) == len(texts)
    assert sum(t.endswith("?") for t in texts) >= 10  # varied: questions, not only statements


def test_punctuation_tokens():
    assert profile.is_punct(",") and profile.is_punct("Ġ.") and profile.is_punct("...")
    assert not profile.is_punct("cat") and not profile.is_punct("##s") and not profile.is_punct("")


def test_text_profile_on_hand_made_heads():
    T = 5  # [CLS] a , b [SEP]
    special = [True, False, False, False, True]
    punct = [False, False, True, False, False]
    prev = np.zeros((T, T)); prev[0, 0] = 1
    for i in range(1, T):
        prev[i, i - 1] = 1
    sink = np.zeros((T, T)); sink[:, 0] = 1
    sep = np.zeros((T, T)); sep[:, 4] = 0.5; sep[:, 0] = 0.5
    w = np.stack([prev, sink, sep])[None]  # [1, 3, T, T]
    p = profile.text_profile(w, special, punct)
    assert p["previous"][0, 0] == pytest.approx(1.0) and p["first"][0, 1] == pytest.approx(1.0)
    assert p["sep"][0, 2] == pytest.approx(0.5) and p["first"][0, 2] == pytest.approx(0.5)
    assert p["punct"][0, 0] == pytest.approx(1 / T)  # row 3 attends to the comma at 2
    # sink left out: the previous-token head keeps its role, the sep head becomes a separator head,
    # and the pure sink head has no row left (nothing to label)
    assert p["r_previous"][0, 0] == pytest.approx(1.0)
    assert p["r_sep"][0, 2] == pytest.approx(1.0)
    r = profile.roles({k: v for k, v in p.items() if k.startswith("r_")})
    assert r[0, 0] == "previous-token" and r[0, 2] == "separator" and r[0, 1] == "mixed"


@pytest.fixture(scope="module")
def minilm():
    return loader.get_loaded("all-MiniLM-L6-v2")


def test_profile_matches_the_page_run_and_lists_extremes(minilm, tmp_path):
    texts = ["Why is the sky blue?", "Buy milk, eggs, flour, and butter.", "The cat sat on the mat."]
    prof = profile.cached_profile(minilm, texts, store=RunCache(str(tmp_path)))
    assert (prof.layers, prof.heads) == (6, 12) and len(prof.per_text["first"]) == 3
    for i, t in enumerate(texts):
        m = attention.extract(minilm, t).head_metrics()
        np.testing.assert_allclose(np.array(prof.per_text["first"][i]), m["sink"], atol=2e-3)
        np.testing.assert_allclose(np.array(prof.per_text["self"][i]), m["diagonal"], atol=2e-3)
        np.testing.assert_allclose(np.array(prof.per_text["entropy"][i]), m["entropy"], atol=1e-2)
    np.testing.assert_allclose(np.array(prof.mean["punct"]), np.mean(prof.per_text["punct"], 0), atol=1e-5)
    top = prof.extreme_texts("punct", 0, 0, k=3)
    vals = [x["value"] for x in top]
    assert vals == sorted(vals, reverse=True) and {x["text"] for x in top} == set(texts)
    again = profile.cached_profile(minilm, texts, store=RunCache(str(tmp_path)),
                                   progress=lambda d, t: pytest.fail("recomputed"))
    assert again.mean == prof.mean
