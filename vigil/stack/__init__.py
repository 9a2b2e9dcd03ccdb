"""The embedded stack: the KRaft broker, child processes, the roles they run, their supervisor."""
