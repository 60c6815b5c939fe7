"""Access: accounts and sessions, logins and their throttle, signing keys, trusted peers,
audit checkpoints exchanged with them, and grants. The role rules themselves are in
:mod:`credit.policy`."""
