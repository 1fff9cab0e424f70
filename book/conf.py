"""Sphinx configuration of the course website (Sphinx + MyST-NB + sphinx-book-theme).

``book/build.py`` copies this file into the staged source folder (``build/book-src/``) and runs
Sphinx there; nothing here executes a notebook (the pages show the outputs of executed copies).
Everything the pages load is served by the site itself: MathJax 3 from ``mathjax/`` (copied next
to the pages by build.py, outside ``_static/``), no CDN, no web fonts, no widget JavaScript.
"""
project = "Losses for low-light image enhancement"
author = "lowlight-course contributors"
copyright = "lowlight-course contributors (MIT)"

extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "**.ipynb_checkpoints"]

# MyST: $...$ and $$...$$ formulas, as in the notebooks.
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# MyST-NB: show stored outputs, never execute; no widget JavaScript from a CDN (build.py replaces
# widget outputs with static figures); kernel warnings (stderr) are removed by build.py and here.
nb_execution_mode = "off"
nb_output_stderr = "remove"
nb_ipywidgets_js = {}
nb_merge_streams = True

# MathJax 3 served from the site (build.py copies mathjax/es5 to <site>/mathjax/). Sphinx resolves
# a relative mathjax_path against _static/, hence the "../".
mathjax_path = "../mathjax/tex-chtml.js"

html_theme = "sphinx_book_theme"
html_title = "Losses for low-light image enhancement"
html_static_path = []
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": True,
    "use_fullscreen_button": False,
    "use_repository_button": False,
    "home_page_in_toc": True,
    "show_navbar_depth": 1,
    "navigation_with_keys": False,
}
html_show_sourcelink = False
html_copy_source = False
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]
