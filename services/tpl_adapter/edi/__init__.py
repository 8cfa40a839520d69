"""EDI X12 with the 3PL: writing 940s and 997s, reading 997, 945, 846 and 944 files."""
