"""Read models for auditors: who did what on which case file, and who read which."""
