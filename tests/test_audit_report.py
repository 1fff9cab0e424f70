"""AuditReport renderings and the CLI's exit statuses."""
import json
import os
import subprocess
import sys

import pytest

from lowlight_course import audit
from lowlight_course.audit import AuditReport, AuditRow
from lowlight_course.audit import examples as E
from lowlight_course.cli import main


def test_renderings():
    r = audit(E.article_combined, quick=True)
    md = r.to_markdown()
    assert md.count("\n| ") == len(r) + 1 and "FAIL" in md and "Chapter 3" in md
    d = json.loads(r.to_json())
    assert d["passed"] is False and len(d["rows"]) == len(r) and d["counts"]["fail"] == len(r.failures)
    html = r._repr_html_()
    assert html.count("<tr>") == len(r) + 1 and "&lt;" not in r.loss_name
    assert "quick audit" in r.summary() and f"{r.elapsed:.1f} s" in r.summary()


def test_row_validation_and_lookup():
    with pytest.raises(ValueError, match="verdict"):
        AuditRow("x", "plateaus", 1.0, "ok")
    with pytest.raises(ValueError, match="source"):
        AuditRow("x", "colour", 1.0, "pass")
    rep = AuditReport([AuditRow("x", "plateaus", float("nan"), "fail")])
    assert json.loads(rep.to_json())["rows"][0]["measured"] == "nan"
    with pytest.raises(KeyError, match="probes"):
        rep["y"]
    AuditReport([AuditRow("x", "plateaus", 1.0, "pass")]).raise_for_failures()  # nothing to raise


@pytest.fixture
def losses_dir(tmp_path, monkeypatch):
    (tmp_path / "mylosses.py").write_text(
        "import torch\n"
        "from lowlight_course.losses import SSIMLoss\n"
        "def good(pred, target):\n    return {'l1': 0.16 * (pred - target).abs().mean(),\n"
        "                                  'ssim': 0.84 * (1 - __import__('lowlight_course.losses', fromlist=['ssim']).ssim(pred, target))}\n"
        "def bad(pred, target):\n    return float(((pred - target) ** 2).mean())\n"
        "NUMBER = 3\n")
    (tmp_path / "broken_import.py").write_text("raise ImportError('needs a thing')\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_cli_exit_statuses(losses_dir, capsys):
    assert main(["audit", "mylosses:good", "--quick", "--json", "r.json", "--html", "r.html"]) == 0
    assert json.loads((losses_dir / "r.json").read_text())["passed"] is True
    assert "<table>" in (losses_dir / "r.html").read_text()
    assert main(["audit", "mylosses:bad", "--quick"]) == 1
    capsys.readouterr()
    for ref, words in [("nosuchmodule:f", "no module named"), ("mylosses:missing", "no attribute"),
                       ("mylosses:NUMBER", "not a loss"), ("mylosses", "package.module:name"),
                       ("broken_import:x", "importing 'broken_import' failed"),
                       ("lowlight_course.losses:ssim_nope", "no attribute")]:
        assert main(["audit", ref, "--quick"]) == 2, ref
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and words in err, err


def test_cli_model_and_entry_point(losses_dir):
    assert main(["audit", "mylosses:good", "--quick", "--model", "mylosses:NUMBER"]) == 2
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "lowlight_course.cli", "audit", "mylosses:bad", "--quick"],
                       capture_output=True, text=True, env=env, cwd=losses_dir, timeout=120)
    assert p.returncode == 1 and "Python number" not in p.stderr and "fail" in p.stdout


def test_every_origin_names_a_real_section():
    """Each row's threshold origin 'Chapter N, section M (heading)' must exist in that chapter."""
    import re

    from _lectures import lecture_headings

    headings = lecture_headings()
    rows = [r for loss in (E.article_combined, E.article_mse_ssim, E.course_l1_ssim) for r in audit(loss, quick=True)]
    cited = {m for r in rows for m in re.findall(r"Chapter (\d+), section (\d+) \(([^)]+)\)", r.origin)}
    assert len(cited) >= 8
    for chap, sec, title in cited:
        assert any(n == sec and h.startswith(title) for n, h in headings[int(chap)]), (chap, sec, title)
