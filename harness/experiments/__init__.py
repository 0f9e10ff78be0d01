"""Whole experiments, as the commands run them and as Python calls: a comparison of methods
(``compare``, with its one-shot part in ``oneshot_compare``), supernet training, ranking and
search (``supernets``) and stand-alone training of a list of architectures (``standalone_runs``).
"""
