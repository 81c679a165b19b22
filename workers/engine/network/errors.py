class NetworkError(Exception):
    """A network request the engine refuses, with a message meant for the user."""
