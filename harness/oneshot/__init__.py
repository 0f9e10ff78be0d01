"""Weight-sharing (one-shot) NAS on real images, all PyTorch.

``method``: the one-shot method contract (a supernet training policy plus a search stage).
``data`` / ``augment``: datasets decoded once into a checksummed cache, NB201's splits, batches.
``network`` / ``supernet``: the NB201 network and its weight-sharing supernet.
``training``: the supernet training loop with checkpoints and exact resume (helped by
``precision``, ``averaging``, ``allocator``; ``monitor`` ranks a sample during training).
``scoring``: architectures scored with inherited weights; ``supernet_search``: a searcher
run against a trained supernet. ``standalone``: architectures trained from scratch.

Importing this package imports nothing; its modules import torch.
"""
