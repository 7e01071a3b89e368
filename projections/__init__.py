"""Read models of the event log: how they are declared and kept up to date, and the read
models themselves, one module per question.

The machinery: :mod:`projections.projection` (declaring a read model: tables, rows,
totals, handlers), :mod:`projections.engine` (applying the log batch by batch, with the
SQL of :mod:`projections.table_sql`), :mod:`projections.positions` and
:mod:`projections.status` (how far each read model has got), :mod:`projections.storage`
(what the engine needs of the views store and the event log), :mod:`projections.errors`,
:mod:`projections.selection` (choosing and grouping read models) and
:mod:`projections.paging` (the queries' pages and filters).

The read models, by whom they serve: :mod:`projections.worklists` (caseworkers),
:mod:`projections.appointments` (the appointment desk), :mod:`projections.audit`
(auditors) and :mod:`projections.figures` (the head of office and the team leads);
:mod:`projections.read_models` lists every one a runner follows.
"""
