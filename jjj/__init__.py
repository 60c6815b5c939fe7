"""The ``jjj`` command: runs nodes, loads and seeds data, and the demo federation."""
