"""The lectures' numbered section headings, for tests that check a cited section exists."""
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def lecture_headings() -> dict[int, list[tuple[str, str]]]:
    """{chapter number: [(section number, heading text), ...]} from each lecture's '## N. Heading' lines."""
    headings = {}
    for path in (ROOT / "notebooks").glob("0[0-9]_*.ipynb"):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        headings[int(path.name[:2])] = re.findall(r"^## (\d+)\. (.+)$", text, re.M)
    return headings
