"""The website builder's transforms (book/build.py), on small hand-made notebooks: no build needed."""
import importlib.util
import json
import os
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("book_build", ROOT / "book" / "build.py")
B = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(B)

PNG = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure size 640x480 with 1 Axes>"}


def _cell(outputs, id_="c1", metadata=None):
    return {"cell_type": "code", "id": id_, "metadata": metadata or {}, "source": "x", "outputs": outputs,
            "execution_count": 1}


def _nb(cells, widgets=None):
    meta = {"kernelspec": {"name": "python3"}}
    if widgets is not None:
        meta["widgets"] = {B.WIDGET_STATE: {"state": widgets, "version_major": 2, "version_minor": 0}}
    return {"cells": cells, "metadata": meta, "nbformat": 4, "nbformat_minor": 5}


def _view(model_id):
    return {"output_type": "display_data", "metadata": {},
            "data": {B.WIDGET_VIEW: {"model_id": model_id, "version_major": 2, "version_minor": 0},
                     "text/plain": "VBox(children=(HTML(value='<b>Weight sweep</b>'),))"}}


def _tqdm_state():
    return {"bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_txt", "IPY_MODEL_prog"]}},
            "txt": {"model_name": "HTMLModel", "state": {"value": "MSE: 100%"}},
            "prog": {"model_name": "FloatProgressModel", "state": {"value": 60, "max": 60}}}


def _explorer_state(outputs):
    return {"box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_row", "IPY_MODEL_out"]}},
            "row": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_sl"]}},
            "sl": {"model_name": "SelectionSliderModel", "state": {"_options_labels": ["a", "b"]}},
            "out": {"model_name": "OutputModel", "state": {"outputs": outputs}}}


def test_stderr_and_progress_bars_leave_nothing():
    nb = _nb([_cell([{"output_type": "stream", "name": "stderr", "text": "UserWarning: something\n"},
                     _view("bar"),
                     {"output_type": "stream", "name": "stdout", "text": "epoch  10%|#  | 1/10\repoch 100%|##| 10/10\nfinal loss 0.1\n"}])],
             widgets=_tqdm_state())
    out = B.clean_notebook(nb, name="t")["cells"][0]["outputs"]
    assert out == [{"output_type": "stream", "name": "stdout", "text": "final loss 0.1\n"}]


def test_explorer_becomes_its_figures_and_a_note():
    shown = [{"output_type": "display_data", "metadata": {}, "data": dict(PNG)},
             {"output_type": "stream", "name": "stdout", "text": "PSNR: 14.1\n"},
             {"output_type": "stream", "name": "stderr", "text": "warning\n"}]
    nb = _nb([_cell([_view("box")])], widgets=_explorer_state(shown))
    cleaned = B.clean_notebook(nb, name="t")
    out = cleaned["cells"][0]["outputs"]
    assert [o.get("data", {}).get("image/png") for o in out][:1] == ["iVBORw0KGgo="]
    assert out[1]["text"] == "PSNR: 14.1\n"
    assert "interactive in JupyterLab" in out[-1]["data"]["text/markdown"]
    assert len(out) == 3  # the stderr inside the widget is dropped too
    assert "widgets" not in cleaned["metadata"]          # no widget JavaScript is loaded for the page
    assert all(B.WIDGET_VIEW not in o.get("data", {}) for o in out)


def test_widget_without_stored_state_leaves_the_note_not_its_repr():
    out = B.clean_notebook(_nb([_cell([_view("gone")])]), name="t")["cells"][0]["outputs"]
    assert len(out) == 1 and "interactive in JupyterLab" in out[0]["data"]["text/markdown"]
    assert "VBox(" not in json.dumps(out)


def test_widget_reference_cycles_terminate():
    state = {"a": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_b"]}},
             "b": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_a"]}}}
    out = B.clean_notebook(_nb([_cell([_view("a")])], widgets=state), name="t")["cells"][0]["outputs"]
    assert len(out) == 1


def test_error_output_stops_the_build_naming_the_cell():
    nb = _nb([_cell([{"output_type": "error", "ename": "AssertionError", "evalue": "gap", "traceback": []}],
                    id_="w4-sweep")])
    with pytest.raises(B.BookError, match=r"04\.ipynb, cell 0 \(id w4-sweep\).*AssertionError: gap"):
        B.clean_notebook(nb, name="04.ipynb")


@pytest.mark.parametrize("text", [
    "ValueError: Unpaired files in /tmp/tmpey_nvjjd/low without a partner",
    "saved to /home/alice/course/out.png", "/root/.cache/x", "C:\\Users\\bob\\x", "/work/main/build",
    "/Users/carol/x.png",
])
def test_machine_paths_stop_the_build(text):
    nb = _nb([_cell([{"output_type": "stream", "name": "stdout", "text": text + "\n"}])])
    with pytest.raises(B.BookError, match="relative or neutral name"):
        B.clean_notebook(nb, name="00.ipynb")


@pytest.mark.parametrize("text", ["low/0.png and high/0.png", "a ratio 3/4", "https://example.org/tmp/x",
                                  "lowlight_course/data/images.py"])
def test_ordinary_text_is_kept(text):
    nb = _nb([_cell([{"output_type": "stream", "name": "stdout", "text": text + "\n"}])])
    assert B.clean_notebook(nb, name="t")["cells"][0]["outputs"][0]["text"] == text + "\n"


def test_undrawn_figure_stops_the_build():
    nb = _nb([_cell([{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                      "data": {"text/plain": "<Figure size 780x300 with 3 Axes>"}}])])
    with pytest.raises(B.BookError, match="MPLBACKEND"):
        B.clean_notebook(nb, name="t")
    drawn = _nb([_cell([{"output_type": "display_data", "metadata": {}, "data": dict(PNG)}])])
    assert B.clean_notebook(drawn, name="t")["cells"][0]["outputs"][0]["data"]["image/png"]


def test_alt_text_comes_from_the_source_notebook_by_cell_id():
    alt = {"image": {"alt": "Four panels: the dark input, the output, the target and the error map."}}
    executed = _nb([_cell([{"output_type": "display_data", "metadata": {}, "data": dict(PNG)}], id_="a"),
                    _cell([{"output_type": "display_data", "metadata": {}, "data": dict(PNG)}], id_="b")])
    source = _nb([_cell([], id_="a", metadata={"mystnb": alt}), _cell([], id_="b")])
    cleaned = B.clean_notebook(executed, name="t", source=source)
    assert cleaned["cells"][0]["metadata"]["mystnb"] == alt
    assert B.figures_without_alt(cleaned) == ["cell 1 (id b)"]
    assert executed["cells"][0]["metadata"] == {}  # the input is not modified


def test_alt_text_table_fills_missing_alt_and_rejects_unknown_cells():
    executed = _nb([_cell([{"output_type": "display_data", "metadata": {}, "data": dict(PNG)}], id_="a")])
    cleaned = B.clean_notebook(executed, name="t", alt={"a": "A line chart of the loss."})
    assert cleaned["cells"][0]["metadata"]["mystnb"]["image"]["alt"] == "A line chart of the loss."
    with pytest.raises(B.BookError, match=r"describes cells \['gone'\] that t does not have"):
        B.clean_notebook(executed, name="t", alt={"gone": "x"})


def test_alt_text_table_names_only_cells_that_exist():
    """Every entry of book/alt_text.json names an existing notebook and cell (renamed cells caught early)."""
    table = json.loads(B.ALT_TEXT.read_text())
    for nb_name, alts in table.items():
        ids = {c.get("id") for c in json.loads((ROOT / nb_name).read_text())["cells"]}
        assert set(alts) <= ids, f"{nb_name}: no cells {sorted(set(alts) - ids)}"
        assert all(len(a) > 40 and a.endswith(".") for a in alts.values()), nb_name


def test_count_figures_counts_image_outputs_not_cells():
    nb = _nb([_cell([{"output_type": "display_data", "metadata": {}, "data": dict(PNG)},
                     {"output_type": "stream", "name": "stdout", "text": "x\n"},
                     {"output_type": "display_data", "metadata": {}, "data": {"image/svg+xml": "<svg/>"}}])])
    assert B.count_figures(nb) == 2


def test_solution_pages_are_titled_as_solutions():
    nb = _nb([{"cell_type": "markdown", "id": "t", "metadata": {}, "source": ["# Exercise 4 · Balancing\n", "Exercise text"]},
              {"cell_type": "markdown", "id": "u", "metadata": {}, "source": "# Exercise 4 again"}])
    B.retitle_solution(nb)
    assert nb["cells"][0]["source"] == "# Solution 4 · Balancing\nExercise text"
    assert nb["cells"][1]["source"] == "# Exercise 4 again"


def test_landing_page_drops_jupyterlab_advice_and_adds_the_toc():
    index = ("# Title\n\nStart here. (In JupyterLab, right-click this file and choose *Open With > Markdown "
             "Preview*.)\n\n## Course map\n")
    page = B.landing_page(index, {"Lectures": ["00_a", "01_b"], "Solutions": [], "About": ["credits"]})
    assert "JupyterLab" not in page and "Start here." in page
    assert "```{toctree}\n:caption: Lectures\n:hidden:\n:maxdepth: 1\n\n00_a\n01_b\n```" in page
    assert ":caption: Solutions" not in page and ":caption: About" in page
    row = B.landing_page("| [1 · MSE](01_mse.ipynb) | q | `01_mse_and_psnr` |\n",
                         {"Exercises": ["exercises/01_mse_and_psnr"]})
    assert "| [`01_mse_and_psnr`](exercises/01_mse_and_psnr.ipynb) |" in row


def _course(tmp_path):
    root = tmp_path / "course"
    for folder in ("notebooks", "solutions", "exercises"):
        (root / folder).mkdir(parents=True)
        (root / folder / "01_x.ipynb").write_text(json.dumps(_nb([_cell([])])))
    (root / "notebooks" / "index.md").write_text("# Course\n")
    (root / "docs").mkdir()
    (root / "docs" / "CREDITS.md").write_text("# Credits\n")
    return root


def test_stale_copies_names_missing_older_and_figureless_copies(tmp_path):
    root = _course(tmp_path)
    run = tmp_path / "run"
    assert any("missing" in r for r in B.stale_copies(run, root))
    for folder in ("notebooks", "solutions"):
        (run / folder).mkdir(parents=True)
        (run / folder / "01_x.ipynb").write_text(json.dumps(_nb([_cell([])])))
    (run / "timings.json").write_text(json.dumps({"profile": "smoke"}))
    assert B.stale_copies(run, root, profile="smoke") == []
    assert B.stale_copies(run, root, profile="cpu") == [f"{run}/timings.json says profile 'smoke', not 'cpu'"]
    old = time.time() - 3600
    os.utime(run / "solutions" / "01_x.ipynb", (old, old))
    assert B.stale_copies(run, root, solutions=False) == []
    assert B.stale_copies(run, root) == [f"{run / 'solutions' / '01_x.ipynb'} is older than solutions/01_x.ipynb"]
    (run / "notebooks" / "01_x.ipynb").write_text(json.dumps(_nb([_cell([{
        "output_type": "display_data", "metadata": {}, "data": {"text/plain": "<Figure size 640x480 with 1 Axes>"}}])])))
    assert any("MPLBACKEND=Agg" in r for r in B.stale_copies(run, root, solutions=False))


def test_stage_lays_out_lectures_blank_exercises_solutions_and_credits(tmp_path):
    root = _course(tmp_path)
    run = tmp_path / "run"
    for folder in ("notebooks", "solutions"):
        (run / folder).mkdir(parents=True)
        (run / folder / "01_x.ipynb").write_text(json.dumps(_nb([_cell([
            {"output_type": "stream", "name": "stdout", "text": f"ran {folder}\n"}])])))
    src = tmp_path / "src"
    assert B.stage(run, src, root, alt_text=None) == []
    assert sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()) == [
        "01_x.ipynb", "conf.py", "credits.md", "exercises/01_x.ipynb", "index.md", "manifest.json",
        "solutions/01_x.ipynb"]
    assert json.loads((src / "manifest.json").read_text()) == {
        "01_x": {"part": "Lectures", "figures": 0}, "exercises/01_x": {"part": "Exercises", "figures": 0},
        "solutions/01_x": {"part": "Solutions", "figures": 0}}
    assert "ran notebooks" in (src / "01_x.ipynb").read_text()
    assert json.loads((src / "exercises" / "01_x.ipynb").read_text())["cells"][0]["outputs"] == []
    assert "solutions/01_x" in (src / "index.md").read_text()
    B.stage(run, src, root, solutions=False, alt_text=None)
    assert not (src / "solutions").exists() and "solutions/01_x" not in (src / "index.md").read_text()
    (run / "notebooks" / "01_x.ipynb").unlink()
    with pytest.raises(B.BookError, match="is missing: run `lowlight-course run --solutions"):
        B.stage(run, src, root, alt_text=None)


def test_missing_mathjax_names_the_install_command(tmp_path):
    with pytest.raises(B.BookError, match="npm install --prefix build/npm mathjax@3"):
        B.install_mathjax(tmp_path / "nowhere", tmp_path / "site")
