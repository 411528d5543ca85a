"""dashboard/urlstate.py: the view <-> the URL's query string."""
from urllib.parse import parse_qs

from dashboard import urlstate
from dashboard.urlstate import MEAN, ViewState, decode, encode

NAMES = ["all-MiniLM-L6-v2", "tiny-gpt2"]


def test_round_trip_keeps_every_field():
    s = ViewState(model="tiny-gpt2", text="Hello  wörld 👋\nsecond line & more=1?",
                  text_pair="B side", layer=4, head=MEAN, block="self:AB", metric="sink",
                  temperature=2.0, query=7)
    assert decode(encode(s), NAMES) == s
    s2 = ViewState(model="all-MiniLM-L6-v2", text="x", layer=0, head=11, block="cross", query=None)
    assert decode(encode(s2), NAMES) == s2


def test_empty_query_gives_the_default_view():
    s = decode("", NAMES)
    assert (s.model, s.text, s.layer, s.head, s.block, s.metric, s.temperature) == (
        urlstate.DEFAULT_MODEL, urlstate.DEFAULT_TEXT, urlstate.DEFAULT_LAYER, urlstate.DEFAULT_HEAD, None,
        "entropy", 1.0)
    assert s.query == urlstate.DEFAULT_QUERY  # "it" of the default sentence
    assert decode(None, NAMES) == s and decode("?", NAMES) == s
    assert decode("?text=Other", NAMES).query is None  # the default query only fits the default text


def test_unknown_keys_are_ignored():
    s = decode("?model=tiny-gpt2&text=Hi&evil=1&__proto__=x&layer=2", NAMES)
    assert (s.model, s.text, s.layer) == ("tiny-gpt2", "Hi", 2)
    assert s.problems == ()


def test_bad_numbers_fall_back_to_defaults():
    s = decode("?layer=abc&head=-3&t=nan&q=1e9", NAMES)
    assert s.layer == urlstate.DEFAULT_LAYER and s.head == urlstate.DEFAULT_HEAD
    assert s.temperature == 1.0 and s.query is None
    s = decode("?layer=99999&head=2.5&t=100&metric=<script>&block=self;drop", NAMES)
    assert s.layer == urlstate.DEFAULT_LAYER and s.head == urlstate.DEFAULT_HEAD
    assert s.temperature == 1.0 and s.metric == "entropy" and s.block is None
    assert decode("?head=MEAN&t=0.5", NAMES).head == MEAN
    assert decode("?t=0.5", NAMES).temperature == 0.5


def test_unknown_model_falls_back_and_says_so():
    s = decode("?model=/etc/passwd&text=hi", NAMES)
    assert s.model == NAMES[0]
    assert "Unknown model '/etc/passwd'" in s.problems[0]


def test_huge_text_is_capped_and_nul_removed():
    s = decode("?" + "text=" + "a" * 100_000 + "%00b", NAMES)
    assert len(s.text) == urlstate.MAX_TEXT_CHARS and "\x00" not in s.text
    assert decode("?text=%20%20", NAMES).text == urlstate.DEFAULT_TEXT  # blank -> default
    many = "&".join(f"k{i}=v" for i in range(500))
    assert decode("?" + many, NAMES).text == urlstate.DEFAULT_TEXT  # too many fields: ignored


def test_encode_stays_under_the_server_request_line_limit():
    for text in ("word " * 2000, "猫" * 3000, "a b" * 1000):
        q = encode(ViewState(text=text, text_pair="second " * 500))
        assert len(q) <= urlstate.MAX_QUERY_CHARS
        back = parse_qs(q[1:])["text"][0]
        assert text.startswith(back) and len(back) > 100
        assert "cut=1" in q and "only the beginning" in decode(q, NAMES).problems[0]
    short = encode(ViewState(text="short"))
    assert "cut=" not in short and decode(short, NAMES).problems == ()


def test_encode_writes_only_non_defaults_beyond_model_text_layer_head():
    q = encode(ViewState(text="Hi", query=None))
    assert parse_qs(q[1:]) == {"model": [urlstate.DEFAULT_MODEL], "text": ["Hi"], "layer": ["3"], "head": ["1"]}


def test_colour_scale_adapt_and_pruning_mask_round_trip():
    """Issue 15: the colour scale, the adapted-colours switch and the pruning mask are in the link."""
    mask = [[1] * 12 for _ in range(6)]
    mask[0][1] = mask[5][11] = 0
    p = urlstate.mask_param(mask)
    assert p == "6x12:800000000000000002" and urlstate.mask_from_param(p) == mask
    s = urlstate.encode(urlstate.ViewState(color="viridis", adapt=False, prune=p))
    v = urlstate.decode(s)
    assert (v.color, v.adapt, v.prune) == ("viridis", False, p)
    plain = urlstate.decode(urlstate.encode(urlstate.ViewState()))
    assert (plain.color, plain.adapt, plain.prune) == ("accent", True, None)
    assert urlstate.mask_param([[1, 1], [1, 1]]) is None  # nothing pruned: not written
    for bad in ("6x12:zz", "6x12:8", "0x0:0", "999x999:" + "f" * 10, "6x12:" + "f" * 19, None, 5):
        assert urlstate.mask_from_param(bad) is None
    v = urlstate.decode("?color=<script>&adapt=maybe&prune=6x12:xyz")
    assert v.color == "accent" and v.adapt is True and v.prune is None and v.problems
