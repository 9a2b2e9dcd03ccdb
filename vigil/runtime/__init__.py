"""The embedded runtime: the KRaft broker, child processes and their supervisor."""
