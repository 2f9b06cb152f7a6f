"""
CAISO OASIS itself: its rules and its answers, with no service in sight.

Trading days and request windows (L{harbour.oasis.requests}), the answer
classifier (L{harbour.oasis.classify}), the publications log reader
(L{harbour.oasis.publications}), and the one HTTP client every request to
OASIS goes through (L{harbour.oasis.client}).

May import: L{harbour.errors}, L{harbour.interfaces}, L{harbour.config}
(the values it reads).  Never a service, the store or AMP.
"""
