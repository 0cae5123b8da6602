"""The study report of a search: one self-contained HTML page (``search report``).

:mod:`search.results.study` computes what the page says (from the run folder's files);
:mod:`search.report.page` draws it, with plotly.js inlined so that it opens offline.
"""

from search.report.page import render_page, write_page

__all__ = ["render_page", "write_page"]
