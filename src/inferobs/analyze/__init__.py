"""Turning records into answers: operating summaries now; costs and drift to come."""
