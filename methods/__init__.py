"""The built-in search methods, one module each.

Black-box searchers (ask/tell on any benchmark): random search, REINFORCE (per-edge and
LSTM), aging evolution, SPOS evolution, predictor-guided search (BANANAS-style). One-shot methods (a supernet training policy plus a
search stage): SPOS, FairNAS, GreedyNAS, DARTS. The harness finds them through the entry
points in ``pyproject.toml``, exactly as it finds a plug-in's, and never imports this package.
"""
