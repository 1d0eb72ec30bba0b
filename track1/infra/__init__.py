"""Infrastructure under every other layer: atomic files, resumable logs, checkpoints,
user errors and messages, the console, paths, hardware facts, torchrun set-up, process
groups and typed config sections. Nothing here knows NAS, a search space or a pipeline."""
