"""Layer 4, routing: where each command goes (one server, replicas, Sentinel, Cluster), and
the sync and async runners that drive operations through it."""
