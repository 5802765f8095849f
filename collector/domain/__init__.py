"""The collector's domain: pure logic, no I/O."""
