"""The HTTP interface; build it with :func:`adapters.http.app.create_app`."""
