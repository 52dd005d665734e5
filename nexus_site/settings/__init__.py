"""Settings package: base.py holds everything; local.py and test.py change only what they must."""
