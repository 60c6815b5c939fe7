"""The gateway: one login, fan-out to the three regional nodes, one signed report.

Not built yet; the nodes it will call are in :mod:`nodes`, the contract in ``protos/``.
"""
