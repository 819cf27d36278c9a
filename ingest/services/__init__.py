from .processing import *  # noqa: F401,F403  (the split into modules follows)
