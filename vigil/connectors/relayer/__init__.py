"""The relayer's side effects: its signing keys, kept sealed, and the signatures made with them."""
