"""One router per capability; each reads what it needs from ``app.state`` (see api.app)."""
