"""
The daemon's services, the servers of the original design.

The manifest (L{harbour.services.manifest}: which requests exist, no I/O),
the publications follower (L{harbour.services.publications}), work
(L{harbour.services.work}: tasks follow the manifest, revisions are
applied), downloads (L{harbour.services.download}, with file handling in
L{harbour.services.files} and a directory's storage id in
L{harbour.services.storage}) and the hub's view of its workers
(L{harbour.services.workers}).  Only work, download and the operator's
retry change task states.

May import: everything but L{harbour.amp.server}, L{harbour.service} and
L{harbour.testing}.  Services meet through the bus and the interfaces.
"""
