"""The node contract as the gateway and peer nodes use it: the wire format, the node
client, the change-feed follower, on-behalf-of assertions, TLS and RPC plumbing."""
