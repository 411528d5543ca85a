"""What the page says about a model's architecture: a model on the fallback path (DeBERTa-v2,
attention read from its own output_attentions) says that temperature and q·k are off, and a
model refused by the check on load shows the reason instead of wrong numbers (the GPT-OSS sink bug
of issue 10 brought back for this module only)."""
from __future__ import annotations

import numpy as np
import pytest

from dashboard import ids
from models import attention, attention_math, families, loader
from tests.browser import helpers as P

pytestmark = pytest.mark.browser

TEXT = "the cat sat on the mat"


@pytest.fixture(scope="module")
def page_env(tmp_path_factory):
    tok = loader.get_loaded("all-MiniLM-L6-v2").tokenizer
    deberta = families.save_family("DeBERTa-v2", tok, tmp_path_factory.mktemp("tiny-deberta"))
    oss = families.save_family("GPT-OSS", tok, tmp_path_factory.mktemp("tiny-oss"))
    real = attention_math.weights
    with pytest.MonkeyPatch.context() as mp:
        # ignore sink logits, as the engine did before issue 10: only GPT-OSS passes sinks
        mp.setattr(attention_math, "weights", lambda scores, sinks=None: real(scores))
        yield {"ATTN_MODELS": f"tiny-deberta={deberta};broken-oss={oss}"}
    for name in ("tiny-deberta", "broken-oss"):
        loader._LOADED.pop(name, None)
        loader._UNAVAILABLE.pop(name, None)


def test_fallback_model_says_which_features_are_off(page):
    P.open_page(page, model="tiny-deberta", text=TEXT, layer=1, head=2)
    status = P.until(lambda: P.text_of(page, ids.STATUS), what="the model note")
    assert "output_attentions" in status and "temperature" in status and "q·k" in status, status
    w = attention.extract(loader.get_loaded("tiny-deberta"), TEXT).main.weights.astype(np.float64)[1, 2]
    P.until(lambda: P.heatmap_z(page).shape == w.shape, what="the DeBERTa heatmap")
    np.testing.assert_allclose(P.heatmap_z(page), w, atol=1e-3)
    P.no_console_errors(page)


def test_refused_model_shows_the_reason(page):
    P.open_page(page, text=TEXT)
    P.select(page, ids.MODEL, "broken-oss")
    status = P.until(lambda: (t := P.text_of(page, ids.STATUS)) and "broken-oss" in t and t, what="the refusal")
    assert "differs from the model's own eager attention" in status, status
    assert "Traceback" not in status
    from serving import health

    assert "differs" in health.health()[0]["models"]["unavailable"]["broken-oss"]
