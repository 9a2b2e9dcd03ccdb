"""Stream processing: Kafka plumbing, the Faust app, ingesters."""
