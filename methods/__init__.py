"""Built-in search methods; importing this package registers them."""

from methods import aging_evolution, random_search, reinforce
from methods.aging_evolution import AgingEvolution
from methods.random_search import RandomSearch
from methods.reinforce import Reinforce, ReinforceLSTM

__all__ = ["AgingEvolution", "RandomSearch", "Reinforce", "ReinforceLSTM", "aging_evolution", "random_search", "reinforce"]
