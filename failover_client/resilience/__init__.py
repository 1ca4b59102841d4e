"""What keeps a call answering when a provider misbehaves, beyond retry and failover themselves:
load balancing within a group (:mod:`.balance`), hedged attempts (:mod:`.hedge`), cancelling a
blocked attempt's sockets (:mod:`.cancel`) and client-side rate limits (:mod:`.ratelimit`).
The circuit breaker and its shared stores are :mod:`failover_client.health`."""
