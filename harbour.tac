# -*- mode: python -*-
"""
harbour as a .tac file: C{twistd -ny harbour.tac}.

Configured by environment variables named after the options of
C{twistd harbour}: HARBOUR_CONFIG_DIR, HARBOUR_DATA_DIR, HARBOUR_REDIS,
HARBOUR_REDIS_PASSWORD_FILE, HARBOUR_PREFIX, HARBOUR_AMP, HARBOUR_TOKEN_FILE,
HARBOUR_HTTP, HARBOUR_ROLE and HARBOUR_HUB; and HARBOUR_REDIS_PASSWORD, the
--redis password if neither the URL nor the file gives one.  A part that
cannot start makes the process exit 1, as with C{twistd harbour}; so does
a mistake in the variables, or a data directory another hub holds, said
in one line.
"""

import atexit
import os

from twisted.application.service import Application
from twisted.internet import reactor
from twisted.python.usage import UsageError

from harbour.collector import tune_collector
from harbour.errors import ConfigurationError
from harbour.service import Options, build, exit_if_failed, options_from_environment

options = Options()
try:
    options.parseOptions(options_from_environment(os.environ))
    service = build(reactor, options)
except (UsageError, ConfigurationError) as e:
    # One line and exit 1, as from twistd harbour: twistd prints a traceback
    # before an exception from a .tac file, but not before SystemExit.
    raise SystemExit(f"harbour: {e}") from None
application = Application("harbour")
service.setServiceParent(application)
atexit.register(exit_if_failed, service)
tune_collector()
