"""Run the code of docs/usage.md (and README.md once it has code) as a user would.

Conventions for the documents:

* ```python blocks run top to bottom in one namespace, in an empty folder;
* ```console blocks: each line starting with ``$ cvxnn`` runs through
  :func:`cvxnn.cli.commands.main` and must exit with 0; other lines are sample output;
* other blocks (```bash for installation, plain ```) are not run;
* a block right after ``<!-- docs-test: requires NAME -->`` is skipped when
  NAME (``fast``: the compiled solver, or an importable module such as
  ``torch``) is not available.
"""

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

from cvxnn.cli.commands import main
from cvxnn.estimators import fast_available

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = ["docs/usage.md", "README.md"]
BLOCK = re.compile(
    r"(?:<!--\s*docs-test:\s*requires\s+(?P<req>[\w.]+)\s*-->\s*\n)?"
    r"^```(?P<lang>\w*)[^\n]*\n(?P<code>.*?)^```\s*$",
    re.MULTILINE | re.DOTALL,
)


def code_blocks(text):
    """(language, code, requirement or None) of each fenced block of ``text``."""
    return [(m["lang"], m["code"], m["req"]) for m in BLOCK.finditer(text)]


def available(requirement):
    if requirement is None:
        return True
    if requirement == "fast":
        return fast_available()
    return importlib.util.find_spec(requirement) is not None


def run_console(code):
    for line in code.splitlines():
        if line.startswith("$ "):
            argv = shlex.split(line[2:])
            assert argv[0] == "cvxnn", f"only cvxnn commands can run: {line}"
            assert main(argv[1:]) == 0, f"command failed: {line}"


def test_block_parser():
    text = ("a\n```python\nx = 1\n```\n<!-- docs-test: requires torch -->\n"
            "```console\n$ cvxnn --help\nout\n```\n```bash\npip\n```\n")
    assert code_blocks(text) == [("python", "x = 1\n", None),
                                 ("console", "$ cvxnn --help\nout\n", "torch"),
                                 ("bash", "pip\n", None)]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_document_runs(document, tmp_path, monkeypatch):
    path = ROOT / document
    if not path.exists():
        pytest.skip(f"{document} does not exist yet")
    blocks = [b for b in code_blocks(path.read_text()) if b[0] in ("python",
                                                                   "console")]
    if not blocks:
        pytest.skip(f"{document} has no python or console blocks")
    pytest.importorskip("matplotlib").use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__docs__"}
    for i, (lang, code, requirement) in enumerate(blocks):
        if not available(requirement):
            continue
        if lang == "python":
            exec(compile(code, f"{document}[block {i}]", "exec"), namespace)
        else:
            run_console(code)
