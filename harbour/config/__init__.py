"""
The configuration: what the TOML files may say, and watching them.

The schema (L{harbour.config.schema}: topic classes that validate when
built, and the loader that reports every problem of a directory with its
file and line) and the watcher service (L{harbour.config.watcher}: inotify,
then publishing each changed topic on the bus).

May import: L{harbour.errors}, L{harbour.interfaces}, and
L{harbour.oasis.catalogue} (data that imports nothing of harbour's), whose
limits decide a report's window.  Nothing else: every other part depends on
the topics, not the reverse.
"""
