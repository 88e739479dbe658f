"""The day's stages, one module each; `engine/core.py` documents their order."""
