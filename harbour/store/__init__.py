"""
Redis, and what harbour keeps in it.

The connection (L{harbour.store.connection}) to where C{--redis} says
(L{harbour.store.address}; a Sentinel service's master is found by
L{harbour.store.sentinel}), the embedded redis-server
(L{harbour.store.server}), the task store with its Lua scripts
(L{harbour.store.tasks}, scripts in C{lua/}), its in-memory twin
(L{harbour.store.memory}), the politeness limiter
(L{harbour.store.politeness}) and a hub's lease on its Redis and prefix
(L{harbour.store.lease}).

May import: L{harbour.errors}, L{harbour.interfaces}, L{harbour.oasis}
(requests are what tasks are made of).  Never a service or AMP.
"""
