"""fedbandwidth: measure, predict and plot the bytes federated learning moves.

The package is import-light on purpose: the modules that Ray actors load
(``client_app``) import neither torch nor pandas.
"""

__version__ = "0.1.0"
