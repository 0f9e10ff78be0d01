"""How good a ranking or a search is: statistics (``stats``: bootstrap intervals, rank
correlations, paired tests), ranking metrics and ground-truth files (``ranking``), and the
ranking of architectures by a trained supernet (``rank``).
"""
