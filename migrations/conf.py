"""peewee-migrate configuration: which database plain ``pw_migrate`` uses.

``--database URL`` wins, then ``DATABASE_URL``, then chatdb's embedded server
(unless ``CHATDB_EMBEDDED=0``).
"""

import sys

from chatdb.cli.pw_migrate import database_for

DATABASE = database_for(sys.argv)
