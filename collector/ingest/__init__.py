"""Ingest: judge each message (schema, signature, key validity, topic), recompute calibrated
values, quarantine what is refused; the MQTT consumer.
"""
