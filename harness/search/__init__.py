"""Black-box search: the searcher contract and registry (``searcher``), what a query returns and
what answers it (``benchmark``), benchmark specs (``benchmark_specs``), one run of a searcher
against a benchmark (``run``) and a grid of runs in a process pool (``grid``).
"""
