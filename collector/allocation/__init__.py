"""Allocation, pure: counters, topology, energy per batch and medium, uncertainty, conversions. No
I/O.
"""
