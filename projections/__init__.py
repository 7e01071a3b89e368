"""Read models of the event log: the projection engine and the caseworkers' worklists.

:mod:`projections.engine` keeps read models up to date batch by batch;
:mod:`projections.worklists` lists the worklists, one module per question.
"""
