"""``python -m fedbandwidth`` runs the command line (fedbandwidth.cli, the top layer, started by name)."""

import runpy

runpy.run_module("fedbandwidth.cli", run_name="__main__", alter_sys=True)
