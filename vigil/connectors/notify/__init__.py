"""Notification channels and the event shape they send."""
