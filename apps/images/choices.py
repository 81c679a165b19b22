"""Images have no enumerated fields: references are free-form but normalised (see reference.py)."""
