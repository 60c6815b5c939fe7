"""Infrastructure both services share: databases and migrations, group commit, work off
the event loop, the audit-log storage, settings."""
