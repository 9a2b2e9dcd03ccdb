"""Avro schemas, the topic catalogue, Confluent wire framing and the schema registry."""
