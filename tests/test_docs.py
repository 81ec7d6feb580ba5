"""Every ```python block in docs/ and the README runs, page by page, in a fresh working directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BLOCK = re.compile(r"^```python\n(.*?)^```", re.DOTALL | re.MULTILINE)
PAGES = [p for p in sorted([*ROOT.glob("docs/**/*.md"), ROOT / "README.md"]) if BLOCK.search(p.read_text())]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_on_the_page_run(page: Path, tmp_path: Path) -> None:
    blocks = BLOCK.findall(page.read_text())
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for number, block in enumerate(blocks, start=1):
            code = compile(block, f"{page.relative_to(ROOT)} (block {number})", "exec")
            exec(code, namespace)
    finally:
        os.chdir(cwd)
