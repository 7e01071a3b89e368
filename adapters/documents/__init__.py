"""The document store (uploaded and scanned files) and what works on it.

* :mod:`adapters.documents.store`: the interface, its errors and shared behaviour;
* :mod:`adapters.documents.directory` and :mod:`adapters.documents.postgres`: the backends
  (:func:`adapters.bootstrap.document_store_for` picks one);
* :mod:`adapters.documents.inspection`: what a file is, by its bytes;
* :mod:`adapters.documents.sweep`: removing stored files no event references.
"""

from __future__ import annotations

from adapters.documents.store import DocumentStore

__all__ = ["DocumentStore"]
