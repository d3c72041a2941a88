"""Tickets: every finding above tolerance opens one ticket with a named owner and a deadline."""
