"""Read models of figures: the yearly statistics and report, the workload per caseworker,
and the what-if replay's scratch read model."""
