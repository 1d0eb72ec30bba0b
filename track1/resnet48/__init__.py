"""The Track 1 wing: the ResNet-48 search space, its supernet, costs, the official list and the organisers' weights."""
