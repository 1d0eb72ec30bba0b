"""Search-space-generic NAS training parts: the margin subnet sampler, ranking losses,
lambda schedules, teacher priors and the sandwich + ranking training step.

Nothing here knows the Track 1 space: every piece talks to a ``SearchSpace`` (sample,
encode, distance, cost, build) and to a supernet through ``set_arch``.
"""
