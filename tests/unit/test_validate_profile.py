"""callbacks/validate.profile_store: the research card's profile store passes only in the shape the
server writes (a forged object was a KeyError in the profile grids: tests/server/test_fuzz.py)."""
from __future__ import annotations

from callbacks.validate import profile_store
from models.profile import MEASURES


def good():
    return {"key": "k", "model": "m", "corpus": "c", "n": 3, "tokens_mean": 12.5, "seconds": 1.0,
            "layers": 2, "heads": 3, "mean": {m: [[0.1, 0.2, 0.3], [0.4, 0.5, float("nan")]] for m in MEASURES},
            "roles": [["sink", "mixed", "self"], ["mixed", "mixed", "previous-token"]]}


def test_the_server_shape_passes():
    assert profile_store(good()) is not None


def test_forged_profiles_are_no_value():
    forged = [None, "x", [], {}, {"request": "x", "summary": {}}, {"mean": "x"}]
    for change in ({"mean": {"first": [[1]]}}, {"roles": [["a"]]}, {"model": 5}, {"n": "3"},
                   {"mean": {m: [[1, 2], [3]] for m in MEASURES}}, {"mean": {m: [["a", "b", "c"]] * 2 for m in MEASURES}}):
        forged.append(dict(good(), **change))
    for v in forged:
        assert profile_store(v) is None, v
