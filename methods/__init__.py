"""Built-in search methods; importing this package registers them.

Tabular (black-box) searchers: random search, REINFORCE (per-edge and LSTM), aging
evolution, SPOS evolution. One-shot methods (a supernet training policy plus a search
stage): SPOS, FairNAS, GreedyNAS, DARTS; they are registered lazily, so listing methods or
running tabular ones never imports torch.
"""

from harness.searcher import SEARCHERS
from methods import aging_evolution, random_search, reinforce, spos_evolution
from methods.aging_evolution import AgingEvolution
from methods.random_search import RandomSearch
from methods.reinforce import Reinforce, ReinforceLSTM
from methods.spos_evolution import SposEvolution

ONE_SHOT = {"spos": "methods.spos:SPOS", "fairnas": "methods.fairnas:FairNAS",
            "greedynas": "methods.greedynas:GreedyNAS", "darts": "methods.darts:DARTS"}
for _name, _target in ONE_SHOT.items():
    if _name not in SEARCHERS:
        SEARCHERS.add_lazy(_name, _target, tabular=False)

__all__ = ["ONE_SHOT", "AgingEvolution", "RandomSearch", "Reinforce", "ReinforceLSTM", "SposEvolution",
           "aging_evolution", "random_search", "reinforce", "spos_evolution"]
