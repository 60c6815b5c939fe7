"""Objections and credit repair, filed with and decided at the node that owns the record."""
