"""Thin front ends over the library: ``cli`` (the ``digitrec`` command), ``server`` (one port: the REST API
of ``api`` and the page of ``page``), ``engine`` (recognition off the event loop), ``limits``."""
