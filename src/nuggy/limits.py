"""Input limits shared by every front end (no imports: the CLI reads them for its help)."""

#: Default limit on decoded pixels (guards against decompression bombs): 100 MP. The one default
#: of the CLI, the Python API, the HTTP API and the web app; NUGGY_MAX_PIXELS or each front
#: end's option changes it.
DEFAULT_MAX_PIXELS = 100_000_000
#: Smallest width and height of an image to cut out (the pipeline's filters need 2×2).
MIN_SIDE = 2
