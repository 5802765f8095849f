"""MeterTrace: metered, traceable primary energy data for product carbon footprints."""

__version__ = "0.1.0"
