"""Read models of the appointment desk: the day's appointments, held slots and the
figures of scarcity (waitlists, next free slot)."""
