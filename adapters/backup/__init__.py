"""Backup, restore and the restore drill (``akte backup``, ``akte restore``).

A backup is a directory: ``manifest.json`` (what was saved, from where, the log's head,
the sha256 of every file) beside the copies of the stores. :mod:`.manifest` reads and
writes the manifest, :mod:`.take` takes a backup of a running store, :mod:`.restore`
restores one into an empty store, :mod:`.drill` restores into a scratch place and checks
the result. docs/operations/backup.md explains the order of the copies.
"""
