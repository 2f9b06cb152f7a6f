"""
The control port and everything that speaks AMP.

The command classes shared by server and clients
(L{harbour.amp.commands}), the control server (L{harbour.amp.server}),
the client and its remote bus (L{harbour.amp.client}), and a worker's link
to its hub (L{harbour.amp.hub}).

May import: L{harbour.errors}, L{harbour.interfaces}, L{harbour.bus},
L{harbour.store.tasks} (task states), L{harbour.services.pausing} (the
C{paused} topic, announced when a pause changes).  The server talks to the
daemon only through L{harbour.interfaces.IDaemon}, never to a service
directly.
"""
