"""The edge agent: polls meters on a gateway and publishes signed readings."""
