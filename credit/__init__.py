"""The pure domain core shared by the nodes and the gateway.

Identifiers, regions, domains and catalogues, report profiles, the report window and the
reporting rules. Plain functions over frozen dataclasses: no network, no database, no
environment. Data (catalogues, profiles) ships as TOML inside the package.
"""
