"""Metrology: device registry, gateway keys, calibration certificates (JSON and DCC XML),
calibration sets.
"""
