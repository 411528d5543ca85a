"""Project-wide pytest set-up.

(a) Offline model hub: set before anything imports huggingface_hub/transformers,
    whose constants read these variables at import time.
(b) dash.testing's browser fixtures (dash_duo, dash_br, dash_duo_mp) run Debian's
    real headless Chromium:
      * browser binary + flags come from the ``pytest_setup_options`` hook below.
        dash/testing/plugin.py calls ``config.hook.pytest_setup_options()`` for every
        browser fixture and dash/testing/browser.py ``_get_wd_options`` uses the
        first returned ``Options`` object, then adds its own flags
        (--headless, --no-sandbox, goog:loggingPrefs browser=SEVERE, ...).
      * the driver: selenium 4.2 (pinned by dash[testing]) has no selenium-manager;
        ``webdriver.Chrome(options=...)`` runs ``chromedriver`` from PATH. We put a
        private dir holding only a ``chromedriver -> /usr/bin/chromedriver`` symlink
        first on PATH, so nothing else on PATH can win and nothing is downloaded.
(c) ``--headless`` is in pytest.ini's addopts, so no display is ever needed.
"""

import os

for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TOKENIZERS_PARALLELISM": "false",
}.items():
    os.environ.setdefault(_k, _v)

# (d) Determinism: the same op gives the same bits run after run in this process, and a fixed
#     thread count keeps reductions split the same way whatever the machine's core count.
#     Tests still never compare two *different* computations bit for bit (CPUs differ in
#     float kernels); see README "Tests".
try:
    import torch  # noqa: E402

    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.set_num_threads(int(os.environ.get("ATTN_TEST_TORCH_THREADS", "2")))
except ImportError:  # pragma: no cover - torch is in requirements.txt
    pass

import shutil  # noqa: E402
import tempfile  # noqa: E402

import pytest  # noqa: E402

CHROMIUM = os.environ.get("ATTN_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ATTN_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",  # we run as root
    "--disable-gpu",
    "--disable-dev-shm-usage",
    # no outside network here: keep Chromium from trying (and logging failures)
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
)

# fixtures of dash.testing that start a browser; tests using them get @browser
_BROWSER_FIXTURES = {"dash_duo", "dash_br", "dash_duo_mp", "dashr", "dashjl"}

_state = {"config": None, "tmp": None, "old_path": None}


def pytest_configure(config):
    _state["config"] = config
    tmp = tempfile.mkdtemp(prefix="attn-pytest-chromium-")
    _state["tmp"] = tmp
    shim = os.path.join(tmp, "driver-bin")
    os.mkdir(shim)
    os.symlink(CHROMEDRIVER, os.path.join(shim, "chromedriver"))
    _state["old_path"] = os.environ.get("PATH", "")
    os.environ["PATH"] = shim + os.pathsep + _state["old_path"]


def pytest_unconfigure(config):
    if _state["old_path"] is not None:
        os.environ["PATH"] = _state["old_path"]
    if _state["tmp"]:
        shutil.rmtree(_state["tmp"], ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _BROWSER_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.browser)


def pytest_setup_options():
    """dash.testing hook: ChromeOptions for Debian's headless Chromium.

    Called once per browser fixture, so each test gets a fresh Options object and
    a fresh, empty --user-data-dir.
    """
    config = _state["config"]
    if config is not None and config.getoption("webdriver", "Chrome") != "Chrome":
        return None  # let dash.testing build its default Firefox options
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"missing {', '.join(missing)}: install Debian's chromium and "
            "chromium-driver (bash scripts/test.sh does it)",
            pytrace=False,
        )

    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    for arg in CHROMIUM_ARGS:
        options.add_argument(arg)
    profile = tempfile.mkdtemp(prefix="profile-", dir=_state["tmp"])
    options.add_argument(f"--user-data-dir={profile}")
    return options
