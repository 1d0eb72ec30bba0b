"""Architecture search on a trained supernet: regularised evolution and random search under cost bounds (``track1 search``)."""
