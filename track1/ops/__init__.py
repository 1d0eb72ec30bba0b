"""Generic op layer: thin dynamic ops that slice full-size weights, conv geometry, the tiny-map conv."""
