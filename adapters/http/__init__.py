"""The HTTP interface; build it with :func:`adapters.bootstrap.build_app`."""
