"""Size of BertViz's head_view HTML for a text, with all-MiniLM-L6-v2's real attentions.

BertViz is NOT a dependency of the dashboard (not in requirements*.txt). This script installs it
on demand into its own virtual environment, bench/out/venv-bertviz (ignored by git), which sees
the main venv's packages (torch, transformers) through a .pth file, so nothing in .venv changes:

    pip install --no-deps bertviz==1.4.1      (its declared deps torch/transformers are already there;
    pip install ipython                         head_view imports IPython.display)

    python bench/bertviz_size.py "some text"     # prints the byte count of head_view(...).data
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / "bench" / "out" / "venv-bertviz"
BERTVIZ = "bertviz==1.4.1"

_GENERATE = r'''
import json, sys
from transformers import AutoModel, AutoTokenizer
from bertviz import head_view
folder, text_file, out_file = sys.argv[1:4]
text = open(text_file, encoding="utf-8").read()
tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
model = AutoModel.from_pretrained(folder, attn_implementation="eager", local_files_only=True).eval()
enc = tok(text, return_tensors="pt")
import torch
with torch.inference_mode():
    attention = model(**enc, output_attentions=True).attentions
tokens = tok.convert_ids_to_tokens(enc["input_ids"][0])
html = head_view(attention, tokens, html_action="return").data
open(out_file, "w", encoding="utf-8").write(html)
import bertviz
print(json.dumps({"tokens": len(tokens), "bytes": len(html.encode("utf-8")),
                  "bertviz": getattr(bertviz, "__version__", "1.4.1")}))
'''


def _python() -> Path:
    return VENV / "bin" / "python"


def ensure_bertviz(log=print) -> Path:
    """Create bench/out/venv-bertviz with bertviz + IPython (once); returns its python."""
    py = _python()
    stamp = VENV / ".installed"
    if py.exists() and stamp.exists() and stamp.read_text() == BERTVIZ:
        return py
    log(f"bertviz_size: installing {BERTVIZ} into {VENV} (once; not a project dependency)")
    VENV.parent.mkdir(parents=True, exist_ok=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", str(VENV)], check=True)
    # see the main venv's packages (torch, transformers, tokenizers) without copying them
    main_site = sysconfig.get_paths()["purelib"]
    new_site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                              check=True, capture_output=True, text=True).stdout.strip()
    Path(new_site, "attn_main_venv.pth").write_text(main_site + "\n")
    pip = [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-input"]
    subprocess.run(pip + ["--no-deps", BERTVIZ], check=True)
    subprocess.run(pip + ["ipython"], check=True)
    stamp.write_text(BERTVIZ)
    return py


def head_view_bytes(text: str, keep_html: str | None = None) -> dict:
    """{"tokens", "bytes"} of BertViz head_view HTML for `text` with all-MiniLM-L6-v2."""
    sys.path.insert(0, str(ROOT))
    from models import registry

    folder = registry.resolve_location(registry.get_spec(registry.DEFAULT_MODEL))
    py = ensure_bertviz()
    with tempfile.TemporaryDirectory(prefix="attn-bertviz-") as tmp:
        text_file = Path(tmp, "text.txt")
        text_file.write_text(text, encoding="utf-8")
        out_file = keep_html or str(Path(tmp, "head_view.html"))
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        out = subprocess.run([str(py), "-c", _GENERATE, str(folder), str(text_file), out_file],
                             check=True, capture_output=True, text=True, env=env, timeout=600)
        return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    print(json.dumps(head_view_bytes(sys.argv[1] if len(sys.argv) > 1 else "The cat sat on the mat.")))
