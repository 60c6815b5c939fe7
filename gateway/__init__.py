"""The gateway: one login, fan-out to the three regional nodes, one signed report.

See docs/gateway.md. The pure parts (merge, document, signing, codes) live in
:mod:`credit`; this package holds the edges: HTTP and gRPC front doors, the fan-out
client, the registry, accounts and keys.
"""
