"""Monitoring: performance, drift, alert rules, reports and the alert outbox."""
