"""NAS-Bench-201 on CIFAR-10: the space, its networks, the supernet, ground truth, bench.

The bench measures what Track 1 cannot (its ground truth is private): how well a
supernet ranks archs against real stand-alone accuracies.
"""
